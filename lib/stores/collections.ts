import { BatchGetCommand, QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { COLLECTION_ATTRIBUTE, INDEX } from '../schema';
import type { ItemRecord } from './items';

/**
 * Reads a collection's members (lib/collections.ts) from the items table: their topics from the
 * `byCollection` index (KEYS_ONLY, ascending topic order), then their state with a strongly
 * consistent BatchGetItem, at most 100 keys per call (DynamoDB's limit).
 *
 * Why not project the state into the index: a GSI read is eventually consistent, so a member's
 * seq there can lag a write that fan-out already skipped for this subscriber (its subscription row
 * did not exist yet), leaving the client behind until the member's next change. The consistent
 * read after the subscription row is written closes that window for every member the index
 * lists; only a member created within the index's propagation delay can be missing (it arrives
 * with its next change). KEYS_ONLY also means item updates, which leave both keys as they are,
 * cost no index write.
 */

export const BATCH_GET_LIMIT = 100;

export interface CollectionStoreOptions {
  readonly itemsTable: string;
  readonly maxAttempts?: number;
  readonly baseDelayMs?: number;
}

export class UnprocessedReadsError extends Error {
  readonly code = 'unprocessed_reads';
  constructor(readonly remaining: number) {
    super(`${remaining} item reads still unprocessed after retries`);
    this.name = 'UnprocessedReadsError';
  }
}

export class CollectionStore {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly opts: CollectionStoreOptions,
  ) {}

  /**
   * The first `cap` member topics of `collection` in topic order, and whether it has more than
   * `cap` members. Only names (≤ cap × 256 characters): callers read the state with `getMany`
   * a chunk at a time, so a large collection is never held in memory whole.
   */
  async memberTopics(collection: string, cap: number): Promise<{ topics: string[]; truncated: boolean }> {
    const topics: string[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const r = await this.doc.send(
        new QueryCommand({
          TableName: this.opts.itemsTable,
          IndexName: INDEX.itemsByCollection,
          KeyConditionExpression: '#c = :c',
          ExpressionAttributeNames: { '#c': COLLECTION_ATTRIBUTE },
          ExpressionAttributeValues: { ':c': collection },
          // One past the cap tells "exactly cap members" from "more than cap".
          Limit: cap + 1 - topics.length,
          ExclusiveStartKey: start,
        }),
      );
      for (const it of r.Items ?? []) topics.push(String(it.topic));
      start = r.LastEvaluatedKey;
    } while (start && topics.length <= cap);
    const truncated = topics.length > cap;
    if (truncated) topics.length = cap;
    return { topics, truncated };
  }

  /** Consistent reads of `topics` (≤ 100), returned in the order given; missing rows are left out. */
  async getMany(topics: readonly string[]): Promise<ItemRecord[]> {
    if (topics.length === 0) return [];
    if (topics.length > BATCH_GET_LIMIT) throw new Error(`getMany: ${topics.length} keys; BatchGetItem takes at most ${BATCH_GET_LIMIT}`);
    const table = this.opts.itemsTable;
    const maxAttempts = this.opts.maxAttempts ?? 6;
    const base = this.opts.baseDelayMs ?? 25;
    const found = new Map<string, ItemRecord>();
    let keys: Record<string, unknown>[] = topics.map((topic) => ({ topic }));
    for (let attempt = 1; keys.length > 0; attempt++) {
      const out = await this.doc.send(
        new BatchGetCommand({
          RequestItems: {
            [table]: { Keys: keys, ConsistentRead: true, ProjectionExpression: '#t, #s, #d, #ts', ExpressionAttributeNames: { '#t': 'topic', '#s': 'seq', '#d': 'data', '#ts': 'ts' } },
          },
        }),
      );
      for (const it of out.Responses?.[table] ?? []) {
        const topic = String(it.topic);
        found.set(topic, { topic, seq: Number(it.seq ?? 0), data: it.data ?? null, ts: Number(it.ts ?? 0) });
      }
      // Throttling or the 16 MB response limit hand keys back; retry them with full jitter.
      keys = (out.UnprocessedKeys?.[table]?.Keys ?? []) as Record<string, unknown>[];
      if (keys.length === 0) break;
      if (attempt >= maxAttempts) throw new UnprocessedReadsError(keys.length);
      await sleep(Math.random() * base * 2 ** attempt);
    }
    return topics.flatMap((t) => {
      const it = found.get(t);
      return it ? [it] : [];
    });
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
