import type { ConnectionStore } from '../stores/connections';
import type { SubscriptionStore } from '../stores/subscriptions';

/**
 * unsubscribe: the subscription row goes first (that is what stops fan-out), then the topic
 * leaves the connection row. Unsubscribing a topic the connection does not hold succeeds: the
 * operation is idempotent, so a client can repeat it after a lost reply.
 *
 * `requestedAt` is the frame's arrival time (requestContext.requestTimeEpoch). A subscribe of
 * the same topic that arrived later may have run first (API Gateway runs a connection's route
 * invocations concurrently); its row is newer and stays, and so does the topic on the
 * connection row (see subscriptions.ts and below). Returns whether the subscription was removed.
 */
export async function unsubscribe(
  connectionId: string,
  topic: string,
  deps: { connections: ConnectionStore; subscriptions: SubscriptionStore },
  requestedAt?: number,
): Promise<boolean> {
  const removed = await deps.subscriptions.delete(topic, connectionId, requestedAt);
  if (!removed) return false;
  await deps.connections.removeTopic(connectionId, topic);
  // A newer subscribe may have written its row between our delete and our removeTopic (its
  // addTopic ran before our delete, so our removeTopic undid it). Look again, with a consistent
  // read, AFTER removeTopic: if a row is there now, put the topic back. Together with the re-add
  // subscribe does after its put, a subscription row never outlives its topic on the connection
  // row, whatever the interleaving (test/integration/subscriber/subscribe-race.test.ts).
  if (await deps.subscriptions.exists(topic, connectionId)) await deps.connections.ensureTopic(connectionId, topic);
  return true;
}
