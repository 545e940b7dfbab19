import type { Deps } from '../lib/runtime';
import { lambdaEntry } from '../lib/runtime';
import { subscriberServices } from '../lib/subscriber/services';
import { messageRoute } from '../lib/subscriber/ws-route';

/** unsubscribe route: remove the subscription. */
export const createHandler = (deps: Deps) => messageRoute(deps, subscriberServices(deps), 'unsubscribe');

export const handler = lambdaEntry(createHandler);
