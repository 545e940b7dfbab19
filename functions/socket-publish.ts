import type { Deps } from '../lib/runtime';
import { lambdaEntry } from '../lib/runtime';
import { subscriberServices } from '../lib/subscriber/services';
import { messageRoute } from '../lib/subscriber/ws-route';

/** publish route: publish from the socket, the same write as POST /publish, rate-limited per connection. */
export const createHandler = (deps: Deps) => messageRoute(deps, subscriberServices(deps), 'publish');

export const handler = lambdaEntry(createHandler);
