import type { Deps } from '../lib/runtime';
import { lambdaEntry } from '../lib/runtime';
import { subscriberServices } from '../lib/subscriber/services';
import { messageRoute } from '../lib/subscriber/ws-route';

/** ping route: answer pong, refresh lastSeen and the TTL. */
export const createHandler = (deps: Deps) => messageRoute(deps, subscriberServices(deps), 'ping');

export const handler = lambdaEntry(createHandler);
