import { createHash } from 'node:crypto';
import { GetCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { isLive } from './dynamo';
import type { WriteClaim } from './items';

/**
 * Idempotency keys for topic writes: a publish retried after its response was lost (a timeout, a
 * reset connection) must not become a second event under a new seq.
 *
 * One row per (scope, topic, id) in the idempotency table, written in the SAME transaction as the
 * item update and its history row, on the condition that no live row exists. So either the
 * write and the row both happen or neither does, and a retry finds the row and answers with the
 * first seq without writing anything. Two copies racing each other: one transaction wins, the
 * other fails the row's condition and reads the winner's row.
 *
 * `scope` says who owns the key space (the HTTP publisher's identity, or a socket user for
 * publishes from the socket), so two callers choosing the same id do not collide.
 * The row remembers a fingerprint of the request: the same key with different data is a client
 * bug and is refused rather than answered with the seq of something else.
 * The window is `windowSeconds` from the first write; TTL (`expiresAt`) only deletes rows, up to
 * ~48 h late, so readers and the write condition treat an expired row as absent.
 */

export interface IdempotencyRecord {
  readonly key: string;
  readonly topic: string;
  readonly seq: number;
  readonly ts: number;
  readonly fingerprint: string;
  /** Epoch seconds. */
  readonly expiresAt: number;
}

export interface IdempotencyStoreOptions {
  readonly table: string;
  readonly windowSeconds: number;
  readonly clock: () => number;
}

export class IdempotencyStore {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly opts: IdempotencyStoreOptions,
  ) {}

  get windowSeconds(): number {
    return this.opts.windowSeconds;
  }

  /** The row key: a JSON array, so no choice of scope, topic or id can collide with another. */
  static key(scope: string, topic: string, id: string): string {
    return JSON.stringify([scope, topic, id]);
  }

  /** The live row for `key`, or undefined (absent or past its window). */
  async get(key: string): Promise<IdempotencyRecord | undefined> {
    const r = await this.doc.send(new GetCommand({ TableName: this.opts.table, Key: { key }, ConsistentRead: true }));
    const it = r.Item;
    if (!it || !isLive(it, this.opts.clock())) return undefined;
    return {
      key,
      topic: String(it.topic),
      seq: Number(it.seq),
      ts: Number(it.ts),
      fingerprint: String(it.fingerprint),
      expiresAt: Number(it.expiresAt),
    };
  }

  /** The row to write with the item, refused by DynamoDB while a live row holds the key. */
  claim(key: string, topic: string, fingerprint: string): WriteClaim {
    const now = this.opts.clock();
    return {
      tableName: this.opts.table,
      item: ({ seq, ts }) => ({ key, topic, seq, ts, fingerprint, createdAt: now, expiresAt: Math.floor(now / 1000) + this.opts.windowSeconds }),
      condition: 'attribute_not_exists(#key) OR #exp <= :now',
      names: { '#key': 'key', '#exp': 'expiresAt' },
      values: { ':now': this.nowSeconds() },
    };
  }

  private nowSeconds(): number {
    return Math.floor(this.opts.clock() / 1000);
  }
}

/** A digest of what a request asks to write; equal digests mean "the same request again". */
export function requestFingerprint(parts: unknown): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('base64url');
}
