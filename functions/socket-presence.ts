import type { Deps } from '../lib/runtime';
import { lambdaEntry } from '../lib/runtime';
import { subscriberServices } from '../lib/subscriber/services';
import { messageRoute } from '../lib/subscriber/ws-route';

/** presence route: who is subscribed to a topic (users and connection counts), for a connection allowed that topic. */
export const createHandler = (deps: Deps) => messageRoute(deps, subscriberServices(deps), 'presence');

export const handler = lambdaEntry(createHandler);
