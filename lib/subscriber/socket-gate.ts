import type { ConnectionRow, ConnectionStore } from '../stores/connections';
import { SubscriberError } from './errors';
import type { BucketRate } from './rate-limit';

/**
 * What a publish or an application action from the socket passes first: the connection must be
 * registered (its row holds who sent the frame and what they may do) and must have a token in
 * its bucket. A refused frame writes nothing and queues nothing.
 */
export class RateLimitedError extends SubscriberError {
  constructor(readonly retryAfterMs: number) {
    super('rate_limited', `this connection sends publishes and actions faster than its rate; retry in ${retryAfterMs} ms`, 429);
    this.name = 'RateLimitedError';
  }
}

/** `authorize` runs before a token is spent: a forbidden frame is refused however slowly it is sent. */
export async function admitDataFrame(
  connectionId: string,
  deps: { connections: ConnectionStore; rate: BucketRate },
  authorize: (row: ConnectionRow) => void = () => {},
): Promise<ConnectionRow> {
  const row = await deps.connections.get(connectionId);
  if (!row) throw new SubscriberError('not_connected', 'the connection is not registered (closed or expired)', 410);
  authorize(row);
  const taken = await deps.connections.takeToken(row, deps.rate);
  if (!taken.ok) throw new RateLimitedError(taken.retryAfterMs);
  return row;
}
