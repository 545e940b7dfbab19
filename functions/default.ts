import type { Deps } from '../lib/runtime';
import { lambdaEntry } from '../lib/runtime';
import { subscriberServices } from '../lib/subscriber/services';
import { messageRoute } from '../lib/subscriber/ws-route';

/** $default route: unknown actions and malformed frames get a coded error. */
export const createHandler = (deps: Deps) => messageRoute(deps, subscriberServices(deps), '$default');

export const handler = lambdaEntry(createHandler);
