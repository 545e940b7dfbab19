import type { ConnectionStore } from '../stores/connections';
import { deliver, type RetryPolicy } from '../delivery/deliver';
import { createLimiter } from '../delivery/limiter';
import type { Sender } from '../delivery/sender';

/**
 * Send-to-user (seed 001): one frame to every live connection of a user, found through the
 * `byUser` index. Connections that answer 410 are pruned. Returns how many were reached, pruned
 * and failed, and of the failed how many were still throttled (429) at the end: the delivery metrics.
 */
export async function sendToUser(
  userId: string,
  frame: string,
  deps: {
    connections: ConnectionStore;
    sender: Sender;
    removeConnections(ids: readonly string[]): Promise<unknown>;
    concurrency: number;
    retry?: RetryPolicy;
  },
): Promise<{ connections: number; reached: number; gone: number; failed: number; throttled: number }> {
  const ids = await deps.connections.liveIdsOfUser(userId);
  const limit = createLimiter(deps.concurrency);
  const outcomes = await Promise.all(ids.map((id) => deliver(deps.sender, id, () => frame, deps.retry, limit)));
  const gone = ids.filter((_, i) => outcomes[i] === 'gone');
  if (gone.length) await deps.removeConnections(gone);
  const reached = outcomes.filter((o) => o === 'ok').length;
  const throttled = outcomes.filter((o) => o === 'throttled').length;
  return { connections: ids.length, reached, gone: gone.length, failed: ids.length - reached - gone.length, throttled };
}
