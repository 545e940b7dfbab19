import { BatchWriteCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { retryUnprocessed } from '../retry';

/**
 * Deletes keys with BatchWriteItem: at most 25 requests per call (DynamoDB's limit), and the
 * `UnprocessedItems` DynamoDB hands back under throttling retried with exponential backoff and
 * jitter. Throws if items are still unprocessed after `maxAttempts`.
 */

export interface DeleteRequest {
  readonly table: string;
  readonly key: Record<string, unknown>;
}

export const BATCH_WRITE_LIMIT = 25;

export class UnprocessedDeletesError extends Error {
  readonly code = 'unprocessed_deletes';
  constructor(readonly remaining: number) {
    super(`${remaining} deletes still unprocessed after retries`);
    this.name = 'UnprocessedDeletesError';
  }
}

export async function batchDelete(
  doc: DynamoDBDocumentClient,
  requests: readonly DeleteRequest[],
  opts: { maxAttempts?: number; baseDelayMs?: number } = {},
): Promise<void> {
  const maxAttempts = opts.maxAttempts ?? 6;
  const base = opts.baseDelayMs ?? 25;
  for (let i = 0; i < requests.length; i += BATCH_WRITE_LIMIT) {
    const left = await retryUnprocessed(requests.slice(i, i + BATCH_WRITE_LIMIT), (pending) => deleteOnce(doc, pending), {
      attempts: maxAttempts,
      backoff: { baseMs: base },
    });
    if (left.length > 0) throw new UnprocessedDeletesError(left.length);
  }
}

/** One BatchWriteItem call; returns the requests DynamoDB handed back unprocessed. */
async function deleteOnce(doc: DynamoDBDocumentClient, requests: readonly DeleteRequest[]): Promise<DeleteRequest[]> {
  const items: Record<string, { DeleteRequest: { Key: Record<string, unknown> } }[]> = {};
  for (const r of requests) (items[r.table] ??= []).push({ DeleteRequest: { Key: r.key } });
  const out = await doc.send(new BatchWriteCommand({ RequestItems: items }));
  return Object.entries(out.UnprocessedItems ?? {}).flatMap(([table, list]) => list.map((w) => ({ table, key: w.DeleteRequest!.Key! })));
}
