import { BatchWriteCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

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
    let pending: Record<string, { DeleteRequest: { Key: Record<string, unknown> } }[]> = {};
    for (const r of requests.slice(i, i + BATCH_WRITE_LIMIT)) {
      (pending[r.table] ??= []).push({ DeleteRequest: { Key: r.key } });
    }
    for (let attempt = 1; Object.keys(pending).length > 0; attempt++) {
      const out = await doc.send(new BatchWriteCommand({ RequestItems: pending }));
      pending = (out.UnprocessedItems ?? {}) as typeof pending;
      const left = Object.values(pending).reduce((n, l) => n + l.length, 0);
      if (left === 0) break;
      if (attempt >= maxAttempts) throw new UnprocessedDeletesError(left);
      await sleep(Math.random() * base * 2 ** attempt);
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
