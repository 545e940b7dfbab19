import type { Deps } from '../lib/runtime';
import { lambdaEntry } from '../lib/runtime';
import { disconnect } from '../lib/subscriber/disconnect';
import { subscriberServices } from '../lib/subscriber/services';

/** WebSocket $disconnect: remove the connection and its subscriptions. */
export const createHandler = (deps: Deps) => {
  const services = subscriberServices(deps);
  return async (event: { requestContext: { connectionId: string } }) => {
    await disconnect(event.requestContext.connectionId, services, deps.clock());
    return { statusCode: 200 };
  };
};

export const handler = lambdaEntry(createHandler);
