import type { _Record as StreamRecord } from '@aws-sdk/client-dynamodb-streams';

/**
 * The event source mapping's ParallelizationFactor (1–10) for one shard: Lambda processes up to
 * N batches of a shard at once, routing each record by a hash of its partition key to one of N
 * lanes, so records of one key stay in order while different keys proceed concurrently. A lane's
 * retries (batchItemFailures, bisection, the DLQ) hold only that lane: one throttled topic no
 * longer delays the shard's other topics.
 *
 * The reader pushes records as it reads them; each lane takes up to `batchSize` of its own
 * queued records per invocation. Reading stops while `batchSize × N` records wait (the mapping's
 * read-ahead is bounded too), so memory stays bounded when the handler falls behind.
 */

export const MIN_PARALLELIZATION_FACTOR = 1;
export const MAX_PARALLELIZATION_FACTOR = 10;

export function checkParallelizationFactor(n: number): number {
  if (!Number.isInteger(n) || n < MIN_PARALLELIZATION_FACTOR || n > MAX_PARALLELIZATION_FACTOR) {
    throw new RangeError(
      `parallelizationFactor must be an integer from ${MIN_PARALLELIZATION_FACTOR} to ${MAX_PARALLELIZATION_FACTOR} (the event source mapping's bounds), got ${n}`,
    );
  }
  return n;
}

/**
 * The string a record's lane is chosen by: the named key attribute's value (a table's hash key,
 * as Lambda partitions by it), or every key attribute when no name is given.
 */
export function partitionKeyOf(record: StreamRecord, hashKey?: string): string {
  const keys = (record.dynamodb?.Keys ?? {}) as Record<string, unknown>;
  if (hashKey !== undefined) return JSON.stringify(keys[hashKey] ?? null);
  return JSON.stringify(Object.keys(keys).sort().map((k) => [k, keys[k]]));
}

/** FNV-1a (32 bit): cheap, stable across runs and processes, spreads short keys evenly enough. */
export function laneOf(key: string, lanes: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % lanes;
}

export interface ShardLanesOptions {
  /** N, the parallelization factor (1–10). */
  readonly lanes: number;
  /** Most records one lane hands to one invocation. */
  readonly batchSize: number;
  /** One invocation (with its retries) for a lane's batch; a lane runs one at a time. */
  readonly run: (records: StreamRecord[]) => Promise<unknown>;
  /** See partitionKeyOf. */
  readonly hashKey?: string;
}

export class ShardLanes {
  private readonly queues: StreamRecord[][];
  private readonly busy: boolean[];
  private queued = 0;
  private inFlight = 0;
  /** Each returns true once its condition held (and it resolved). */
  private waiters: (() => boolean)[] = [];
  private closed = false;
  private readonly lanes: number;
  private readonly batchSize: number;

  constructor(private readonly opts: ShardLanesOptions) {
    this.lanes = checkParallelizationFactor(opts.lanes);
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${opts.batchSize}`);
    this.batchSize = opts.batchSize;
    this.queues = Array.from({ length: this.lanes }, () => []);
    this.busy = Array.from({ length: this.lanes }, () => false);
  }

  push(records: readonly StreamRecord[]): void {
    // A read that was in flight when the lanes closed: dropped like the queued ones.
    if (this.closed) return;
    for (const r of records) {
      const lane = this.lanes === 1 ? 0 : laneOf(partitionKeyOf(r, this.opts.hashKey), this.lanes);
      this.queues[lane].push(r);
      this.queued += 1;
    }
    for (let lane = 0; lane < this.lanes; lane++) this.kick(lane);
  }

  /** Resolves once fewer than `batchSize × N` records wait (the reader's back-pressure). */
  room(): Promise<void> {
    return this.until(() => this.closed || this.queued < this.batchSize * this.lanes);
  }

  /**
   * Resolves once every pushed record has been handled; after close(), once the batches in flight
   * have finished (the queued ones were dropped). A stack stopping waits here, so a handler never
   * runs on after the tables and emulators it calls are gone.
   */
  idle(): Promise<void> {
    return this.until(() => this.queued === 0 && this.inFlight === 0);
  }

  /** Stops starting new batches; batches in flight finish. */
  close(): void {
    this.closed = true;
    this.queued -= this.queues.reduce((n, q) => n + q.length, 0);
    for (const q of this.queues) q.length = 0;
    this.notify();
  }

  private kick(lane: number): void {
    if (this.closed || this.busy[lane] || this.queues[lane].length === 0) return;
    const batch = this.queues[lane].splice(0, this.batchSize);
    this.queued -= batch.length;
    this.busy[lane] = true;
    this.inFlight += 1;
    this.notify();
    // `run` reports its own errors (the poller logs them); a rejection here must not stall the lane.
    void this.opts.run(batch).catch(() => {}).finally(() => {
      this.busy[lane] = false;
      this.inFlight -= 1;
      this.kick(lane);
      this.notify();
    });
  }

  private until(cond: () => boolean): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const check = () => {
        if (!cond()) return false;
        resolve();
        return true;
      };
      this.waiters.push(check);
    });
  }

  private notify(): void {
    const waiting = this.waiters;
    this.waiters = [];
    for (const w of waiting) if (!w()) this.waiters.push(w);
  }
}
