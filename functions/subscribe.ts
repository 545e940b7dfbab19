import type { Deps } from '../lib/runtime';
import { lambdaEntry } from '../lib/runtime';
import { subscriberServices } from '../lib/subscriber/services';
import { messageRoute } from '../lib/subscriber/ws-route';

/** subscribe route: authorise the topic, add the subscription, send the snapshot or the missed events. */
export const createHandler = (deps: Deps) => messageRoute(deps, subscriberServices(deps), 'subscribe');

export const handler = lambdaEntry(createHandler);
