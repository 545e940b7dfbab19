import { deliver, type RetryPolicy } from '../delivery/deliver';
import type { Sender } from '../delivery/sender';

/**
 * Reply to one connection (`POST /publish {"connectionId"}`), typically an application answering
 * an application action. API Gateway's 410 means the socket is gone: its rows are removed (the
 * client missed $disconnect's cleanup or has not been pruned yet) and the caller learns
 * `reached: false`.
 */
export async function sendToConnection(
  connectionId: string,
  frame: string,
  deps: { sender: Sender; removeConnections(ids: readonly string[]): Promise<unknown>; retry?: RetryPolicy },
): Promise<{ reached: boolean }> {
  const outcome = await deliver(deps.sender, connectionId, () => frame, deps.retry);
  if (outcome === 'gone') await deps.removeConnections([connectionId]);
  if (outcome === 'ok' || outcome === 'gone') return { reached: outcome === 'ok' };
  throw new Error(`reply to connection ${connectionId} failed: ${outcome}`);
}
