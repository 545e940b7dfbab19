import { GetCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { batchDelete, type DeleteRequest } from '../stores/batch-delete';
import type { SubscriptionStore } from '../stores/subscriptions';

/**
 * Removes a connection and every subscription row it owns: on $disconnect, and when a delivery
 * answers 410 Gone (the socket vanished without $disconnect, which API Gateway does not
 * guarantee to call).
 *
 * The topics come from the connection row (strongly consistent) united with the `byConnection`
 * index (which also finds rows whose connection row is already gone, but may lag a fresh write).
 */
/** What a removed connection was: presence announces leaves and records lastSeen from it. */
export interface RemovedConnection {
  readonly connectionId: string;
  /** Absent when the connection row was already gone (another cleanup has handled it). */
  readonly userId?: string;
  readonly lastSeen?: number;
  readonly topics: readonly string[];
}

export async function removeConnections(
  doc: DynamoDBDocumentClient,
  tables: { connections: string },
  subscriptions: SubscriptionStore,
  connectionIds: readonly string[],
  opts: {
    concurrency?: number;
    /** Runs once the rows are read, before they are deleted (presence records lastSeen, so "offline" is never seen without it). */
    beforeDelete?: (removing: RemovedConnection[]) => Promise<void>;
    /** Runs after the delete (presence announces leaves). */
    onRemoved?: (removed: RemovedConnection[]) => Promise<void>;
  } = {},
): Promise<number> {
  const requests: DeleteRequest[] = [];
  const removed: RemovedConnection[] = [];
  const queue = [...new Set(connectionIds)];
  const worker = async () => {
    for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
      const [row, indexed] = await Promise.all([
        doc.send(
          new GetCommand({
            TableName: tables.connections,
            Key: { connectionId: id },
            ConsistentRead: true,
            ProjectionExpression: 'topics, userId, lastSeen',
          }),
        ),
        subscriptions.topicsOf(id),
      ]);
      const fromRow = row.Item?.topics instanceof Set ? [...(row.Item.topics as Set<string>)] : [];
      const topics = [...new Set([...fromRow, ...indexed])];
      for (const topic of topics) requests.push({ table: subscriptions.table, key: { topic, connectionId: id } });
      requests.push({ table: tables.connections, key: { connectionId: id } });
      const it = row.Item;
      removed.push({
        connectionId: id,
        ...(typeof it?.userId === 'string' ? { userId: it.userId } : {}),
        ...(it?.lastSeen !== undefined ? { lastSeen: Number(it.lastSeen) } : {}),
        topics,
      });
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? 8, queue.length) }, worker));
  if (opts.beforeDelete) await opts.beforeDelete(removed);
  await batchDelete(doc, requests);
  // After the delete: a leave is announced only once the rows are gone, so the last of a user's
  // connections to go always finds no other (presence-events.ts).
  if (opts.onRemoved) await opts.onRemoved(removed);
  return requests.length;
}
