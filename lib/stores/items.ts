import { randomUUID } from 'node:crypto';
import { GetCommand, QueryCommand, TransactWriteCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { backoffDelay, sleep } from '../retry';
import { isConditionFailed, isLive, queryAll } from './dynamo';
import { collectionOf } from '../collections';
import { COLLECTION_ATTRIBUTE } from '../schema';
import { dataProblem, InvalidDataError, toStorable } from './json-data';

/**
 * The items table (latest state per topic) and the history table (recent changes) written
 * together. Every write moves the topic's `seq` by exactly one and writes the matching history
 * row in the same transaction, so a reader that sees seq N in items can always find rows
 * 1..N in history (until they expire) and resume without a gap.
 *
 * Concurrency is optimistic: the write is conditioned on the seq it read, and a conflicting
 * writer re-reads and retries. A single writer per topic (an upstream socket) passes its last
 * seq and skips the read.
 *
 * Idempotency: every attempt carries its own ClientRequestToken, and the SDK's automatic retries
 * of that attempt resend the same serialised request, hence the same token. If a transaction
 * commits but its response is lost (timeout, reset socket), the SDK's retry would otherwise fail
 * its own `seq = :prev` condition and this loop would write the same data again as seq + 1 (a
 * duplicate event under a new seq). With the token, DynamoDB answers the retry with the original
 * success and changes nothing (tokens are honoured for 10 minutes). A new loop attempt writes a
 * different seq, so it needs a new token (same token + different input =
 * IdempotentParameterMismatchException).
 */

export interface ItemRecord {
  readonly topic: string;
  readonly seq: number;
  readonly data: unknown;
  /** Source timestamp, epoch ms: when the publisher or upstream produced the value. */
  readonly ts: number;
}

export interface HistoryRecord extends ItemRecord {
  readonly expiresAt: number;
}

export interface ItemStoreOptions {
  readonly itemsTable: string;
  readonly historyTable: string;
  readonly historyTtlSeconds: number;
  readonly clock?: () => number;
  readonly maxAttempts?: number;
}

/**
 * A condition on another row that must hold for the write to happen, checked in the same
 * transaction: the upstream agent writes only while its lease row still names it as owner, so
 * a write that was in flight when the lease moved can never land after the new owner's.
 */
export interface WriteGuard {
  readonly tableName: string;
  readonly key: Record<string, unknown>;
  readonly condition: string;
  readonly names?: Record<string, string>;
  readonly values?: Record<string, unknown>;
}

/**
 * A row to put in the same transaction, on a condition (the idempotency key of a publish: see
 * stores/idempotency.ts). Its content depends on the seq the attempt writes.
 */
export interface WriteClaim {
  readonly tableName: string;
  readonly item: (rec: { readonly seq: number; readonly ts: number }) => Record<string, unknown>;
  readonly condition: string;
  readonly names?: Record<string, string>;
  readonly values?: Record<string, unknown>;
}

/** The claim's condition did not hold (another write holds it): nothing was written. */
export class ClaimTakenError extends Error {
  readonly code = 'claim_taken';
  constructor(topic: string) {
    super(`topic ${topic}: the write's claim is held by an earlier write; nothing was written`);
    this.name = 'ClaimTakenError';
  }
}

/** The guard's condition did not hold: nothing was written, and retrying will not help. */
export class GuardFailedError extends Error {
  readonly code = 'guard_failed';
  constructor(topic: string) {
    super(`topic ${topic}: the write guard's condition no longer holds; nothing was written`);
    this.name = 'GuardFailedError';
  }
}

export class WriteConflictError extends Error {
  readonly code = 'write_conflict';
  constructor(topic: string, attempts: number) {
    super(`topic ${topic}: ${attempts} concurrent-write conflicts in a row`);
    this.name = 'WriteConflictError';
  }
}

export interface WriteOptions {
  readonly ts?: number;
  readonly expectedSeq?: number;
  readonly guard?: WriteGuard;
  readonly claim?: WriteClaim;
}

export class ItemStore {
  private readonly clock: () => number;
  /** Per topic, the last write queued through this store (see write). */
  private readonly writing = new Map<string, Promise<void>>();
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly opts: ItemStoreOptions,
  ) {
    this.clock = opts.clock ?? Date.now;
  }

  async get(topic: string): Promise<ItemRecord | undefined> {
    const r = await this.doc.send(new GetCommand({ TableName: this.opts.itemsTable, Key: { topic }, ConsistentRead: true }));
    if (!r.Item) return undefined;
    return { topic, seq: Number(r.Item.seq ?? 0), data: r.Item.data ?? null, ts: Number(r.Item.ts ?? 0) };
  }

  /**
   * Writes a new value for `topic` and returns the record with its new seq.
   * `expectedSeq` (the caller's last known seq) saves the read when there is one writer.
   *
   * Writes of one topic through this store go one after the other, in call order. Concurrent
   * writers of a topic all condition on the same seq, so all but one fail and retry (a read and a
   * transaction each time); under load the retries lengthen every round trip, which makes more of
   * them conflict. One Lambda instance serves one request at a time, so in AWS this queue is
   * always empty; it matters where invocations share a process (the local stack, where publishes
   * of a hot topic spent ~10 attempts each at 100 msg/s) and for the agent. Writers in other
   * processes still conflict and retry as before. `ts` defaults to the call's time, not the
   * queued write's start, so latency figures include the wait.
   */
  write(topic: string, data: unknown, opts: WriteOptions = {}): Promise<ItemRecord> {
    const call = { ...opts, ts: opts.ts ?? this.clock() };
    const before = this.writing.get(topic);
    const mine = before ? before.then(() => this.writeNow(topic, data, call)) : this.writeNow(topic, data, call);
    // The queue's tail never rejects: a failed write does not fail the ones queued behind it.
    const tail: Promise<void> = mine.then(
      () => {},
      () => {},
    );
    this.writing.set(topic, tail);
    void tail.then(() => {
      if (this.writing.get(topic) === tail) this.writing.delete(topic);
    });
    return mine;
  }

  private async writeNow(topic: string, data: unknown, opts: WriteOptions): Promise<ItemRecord> {
    const problem = dataProblem(data);
    if (problem) throw new InvalidDataError(problem);
    const stored = toStorable(data);
    const ts = opts.ts ?? this.clock();
    const claimIndex = opts.guard ? 3 : 2;
    // Written on every write (not only the first): rows that predate collections join their
    // collection's index on their next change.
    const collection = collectionOf(topic);
    // Contention only comes from concurrent publishers of one topic; each retry re-reads.
    const max = this.opts.maxAttempts ?? 20;
    let prev = opts.expectedSeq ?? (await this.get(topic))?.seq ?? 0;
    for (let attempt = 1; ; attempt++) {
      const seq = prev + 1;
      try {
        await this.doc.send(
          new TransactWriteCommand({
            ClientRequestToken: randomUUID(),
            TransactItems: [
              {
                Update: {
                  TableName: this.opts.itemsTable,
                  Key: { topic },
                  UpdateExpression: 'SET #data = :data, #seq = :seq, #ts = :ts, #updatedAt = :now' + (collection ? ', #collection = :collection' : ''),
                  ConditionExpression: prev === 0 ? 'attribute_not_exists(#seq)' : '#seq = :prev',
                  ExpressionAttributeNames: {
                    '#data': 'data',
                    '#seq': 'seq',
                    '#ts': 'ts',
                    '#updatedAt': 'updatedAt',
                    ...(collection ? { '#collection': COLLECTION_ATTRIBUTE } : {}),
                  },
                  ExpressionAttributeValues: {
                    ':data': stored,
                    ':seq': seq,
                    ':ts': ts,
                    ':now': this.clock(),
                    ...(prev === 0 ? {} : { ':prev': prev }),
                    ...(collection ? { ':collection': collection } : {}),
                  },
                },
              },
              {
                Put: {
                  TableName: this.opts.historyTable,
                  Item: { topic, seq, data: stored, ts, expiresAt: Math.floor(this.clock() / 1000) + this.opts.historyTtlSeconds },
                },
              },
              ...(opts.guard
                ? [
                    {
                      ConditionCheck: {
                        TableName: opts.guard.tableName,
                        Key: opts.guard.key,
                        ConditionExpression: opts.guard.condition,
                        ...(opts.guard.names ? { ExpressionAttributeNames: opts.guard.names } : {}),
                        ...(opts.guard.values ? { ExpressionAttributeValues: opts.guard.values } : {}),
                      },
                    },
                  ]
                : []),
              ...(opts.claim
                ? [
                    {
                      Put: {
                        TableName: opts.claim.tableName,
                        Item: opts.claim.item({ seq, ts }),
                        ConditionExpression: opts.claim.condition,
                        ...(opts.claim.names ? { ExpressionAttributeNames: opts.claim.names } : {}),
                        ...(opts.claim.values ? { ExpressionAttributeValues: opts.claim.values } : {}),
                      },
                    },
                  ]
                : []),
            ],
          }),
        );
        return { topic, seq, data, ts };
      } catch (err) {
        // Checked before the seq conflict: when the claim is held, a retry must not write at all.
        if (opts.claim && cancellationCode(err, claimIndex) === 'ConditionalCheckFailed') throw new ClaimTakenError(topic);
        // The guard is the third transaction item; its reason says whether it was the one refused.
        if (opts.guard && cancellationCode(err, 2) === 'ConditionalCheckFailed') throw new GuardFailedError(topic);
        if (!isConditionConflict(err) || attempt >= max) {
          if (isConditionConflict(err)) throw new WriteConflictError(topic, attempt);
          throw err;
        }
        // Another writer moved the seq: re-read and retry after a short jittered pause.
        await sleep(backoffDelay(attempt, { baseMs: 5, maxMs: 100 }));
        prev = (await this.get(topic))?.seq ?? 0;
      }
    }
  }

  /**
   * At most `limit` live history rows with seq in (afterSeq, uptoSeq], in seq order: one Query
   * call, so a replay reads (and holds) one page at a time. Fewer than `limit` rows does not mean
   * the range is exhausted (expired rows are skipped): the caller continues after the last row.
   */
  async historyPage(topic: string, afterSeq: number, uptoSeq: number, limit: number): Promise<HistoryRecord[]> {
    const now = this.clock();
    const r = await this.doc.send(
      new QueryCommand({
        TableName: this.opts.historyTable,
        KeyConditionExpression: '#t = :t AND #s BETWEEN :a AND :b',
        ExpressionAttributeNames: { '#t': 'topic', '#s': 'seq' },
        ExpressionAttributeValues: { ':t': topic, ':a': afterSeq + 1, ':b': uptoSeq },
        ConsistentRead: true,
        Limit: limit,
      }),
    );
    const out: HistoryRecord[] = [];
    for (const it of r.Items ?? []) {
      if (!isLive(it, now)) continue;
      out.push({ topic, seq: Number(it.seq), data: it.data ?? null, ts: Number(it.ts ?? 0), expiresAt: Number(it.expiresAt) });
    }
    return out;
  }

  /**
   * History rows with seq in (afterSeq, uptoSeq], ascending, read page by page; rows past their
   * `expiresAt` are treated as gone even if TTL has not deleted them yet.
   */
  async historySince(topic: string, afterSeq: number, uptoSeq: number): Promise<HistoryRecord[]> {
    const items = await queryAll(this.doc, {
      TableName: this.opts.historyTable,
      KeyConditionExpression: '#t = :t AND #s BETWEEN :a AND :b',
      ExpressionAttributeNames: { '#t': 'topic', '#s': 'seq' },
      ExpressionAttributeValues: { ':t': topic, ':a': afterSeq + 1, ':b': uptoSeq },
      ConsistentRead: true,
    });
    const now = this.clock();
    return items
      .filter((it) => isLive(it, now))
      .map((it) => ({ topic, seq: Number(it.seq), data: it.data ?? null, ts: Number(it.ts ?? 0), expiresAt: Number(it.expiresAt) }));
  }
}

function cancellationCode(err: unknown, index: number): string | undefined {
  const e = err as { name?: string; CancellationReasons?: { Code?: string }[] };
  return e?.name === 'TransactionCanceledException' ? e.CancellationReasons?.[index]?.Code : undefined;
}

function isConditionConflict(err: unknown): boolean {
  if (isConditionFailed(err)) return true;
  const e = err as { name?: string; CancellationReasons?: { Code?: string }[] };
  // TransactionConflict: another transaction on the same item was in flight; retrying is correct.
  return (
    e?.name === 'TransactionCanceledException' &&
    !!e.CancellationReasons?.some((r) => r.Code === 'ConditionalCheckFailed' || r.Code === 'TransactionConflict')
  );
}
