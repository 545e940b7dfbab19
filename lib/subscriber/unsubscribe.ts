import type { ConnectionStore } from './connections';
import type { SubscriptionStore } from './subscriptions';

/**
 * unsubscribe: the subscription row goes first (that is what stops fan-out), then the topic
 * leaves the connection row. Unsubscribing a topic the connection does not hold succeeds: the
 * operation is idempotent, so a client can repeat it after a lost reply.
 */
export async function unsubscribe(
  connectionId: string,
  topic: string,
  deps: { connections: ConnectionStore; subscriptions: SubscriptionStore },
): Promise<void> {
  await deps.subscriptions.delete(topic, connectionId);
  await deps.connections.removeTopic(connectionId, topic);
}
