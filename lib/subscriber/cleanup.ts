import { GetCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { batchDelete, type DeleteRequest } from './batch-delete';
import type { SubscriptionStore } from './subscriptions';

/**
 * Removes a connection and every subscription row it owns: on $disconnect, and when a delivery
 * answers 410 Gone (the socket vanished without $disconnect, which API Gateway does not
 * guarantee to call).
 *
 * The topics come from the connection row (strongly consistent) united with the `byConnection`
 * index (which also finds rows whose connection row is already gone, but may lag a fresh write).
 */
export async function removeConnections(
  doc: DynamoDBDocumentClient,
  tables: { connections: string },
  subscriptions: SubscriptionStore,
  connectionIds: readonly string[],
  opts: { concurrency?: number } = {},
): Promise<number> {
  const requests: DeleteRequest[] = [];
  const queue = [...new Set(connectionIds)];
  const worker = async () => {
    for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
      const [row, indexed] = await Promise.all([
        doc.send(new GetCommand({ TableName: tables.connections, Key: { connectionId: id }, ConsistentRead: true, ProjectionExpression: 'topics' })),
        subscriptions.topicsOf(id),
      ]);
      const fromRow = row.Item?.topics instanceof Set ? [...(row.Item.topics as Set<string>)] : [];
      for (const topic of new Set([...fromRow, ...indexed])) requests.push({ table: subscriptions.table, key: { topic, connectionId: id } });
      requests.push({ table: tables.connections, key: { connectionId: id } });
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? 8, queue.length) }, worker));
  await batchDelete(doc, requests);
  return requests.length;
}
