import {
  DescribeStreamCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  ExpiredIteratorException,
  TrimmedDataAccessException,
  type DynamoDBStreamsClient,
  type _Record as StreamRecord,
  type Shard,
} from '@aws-sdk/client-dynamodb-streams';
import { invokeLambda, type AnyHandler } from '../lambda/invoke';
import type { Logger } from '../../lib/log';
import { checkParallelizationFactor, ShardLanes } from './shard-lanes';
import { backoffDelay, sleep } from '../../lib/retry';
import { toLambdaStreamEvent } from './stream-event';

/**
 * Reads a DynamoDB stream and invokes a handler with batches shaped like the Lambda event
 * source mapping's, with its semantics:
 * - shards are read in order, one batch in flight per shard; a child shard starts after its
 *   parent is exhausted, so per-key order holds across shard splits;
 * - `batchItemFailures` (ReportBatchItemFailures): the batch is retried from the earliest failed
 *   record; an identifier that names no record of the batch fails the whole batch, as in AWS;
 * - a thrown error retries the batch, bisecting it when `bisectOnError` is set;
 * - after `maxRetryAttempts` the remaining records go to `onFailure` (the DLQ) and the shard
 *   moves on, so one poison record never blocks the stream;
 * - `parallelizationFactor` N: a shard's records are split by partition key hash into N lanes
 *   processed concurrently, each in order (shard-lanes.ts); retries hold only their lane.
 */

export interface StreamPollerOptions {
  readonly streams: DynamoDBStreamsClient;
  readonly streamArn: string;
  readonly handler: AnyHandler;
  readonly functionName?: string;
  readonly batchSize?: number;
  /** Concurrent batches per shard, 1–10 (the mapping's ParallelizationFactor); default 1. */
  readonly parallelizationFactor?: number;
  /** The stream table's hash key: records are assigned to lanes by its value (default: all key attributes). */
  readonly partitionKey?: string;
  readonly maxRetryAttempts?: number;
  readonly bisectOnError?: boolean;
  /** Pause between polls of an idle shard (Lambda polls each shard about 4 times a second). */
  readonly idlePollMs?: number;
  readonly startingPosition?: 'TRIM_HORIZON' | 'LATEST';
  readonly retryBaseMs?: number;
  readonly onFailure?: (failure: StreamFailure) => Promise<void>;
  readonly log?: Logger;
  readonly region?: string;
}

export interface StreamFailure {
  readonly reason: 'RetryAttemptsExhausted';
  readonly firstSequenceNumber: string;
  readonly lastSequenceNumber: string;
  readonly batchSize: number;
  readonly shardId: string;
  readonly streamArn: string;
  readonly error?: string;
}

export interface StreamPollerStats {
  invocations: number;
  records: number;
  retries: number;
  failedToDlq: number;
}

export class StreamPoller {
  readonly stats: StreamPollerStats = { invocations: 0, records: 0, retries: 0, failedToDlq: 0 };
  private stopped = false;
  private readonly started = new Set<string>();
  private readonly finished = new Set<string>();
  private readonly running = new Set<Promise<void>>();
  private discoverTimer: NodeJS.Timeout | undefined;
  private readonly shardLanes = new Set<ShardLanes>();
  /** Aborted by stop(): cuts every idle poll and retry backoff short. */
  private readonly stopping = new AbortController();

  constructor(private readonly opts: StreamPollerOptions) {
    if (opts.parallelizationFactor !== undefined) checkParallelizationFactor(opts.parallelizationFactor);
  }

  async start(): Promise<void> {
    await this.discover(true);
    const loop = () => {
      if (this.stopped) return;
      this.discoverTimer = setTimeout(() => {
        this.discover(false)
          .catch((err) => this.opts.log?.warn('stream discovery failed', { err }))
          .finally(loop);
      }, 1000);
    };
    loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.discoverTimer);
    for (const l of this.shardLanes) l.close();
    this.stopping.abort();
    await Promise.allSettled([...this.running]);
  }

  private async discover(initial: boolean) {
    const shards: Shard[] = [];
    let start: string | undefined;
    do {
      const d = await this.opts.streams.send(
        new DescribeStreamCommand({ StreamArn: this.opts.streamArn, ExclusiveStartShardId: start }),
      );
      shards.push(...(d.StreamDescription?.Shards ?? []));
      start = d.StreamDescription?.LastEvaluatedShardId;
    } while (start);
    const known = new Set(shards.map((s) => s.ShardId!));
    for (const s of shards) {
      const id = s.ShardId!;
      if (this.started.has(id)) continue;
      // A child waits for its parent, unless the parent has aged out of the stream.
      if (s.ParentShardId && known.has(s.ParentShardId) && !this.finished.has(s.ParentShardId)) continue;
      this.started.add(id);
      // LATEST only applies to shards open when we start; shards born later are read from their start.
      const position = initial ? (this.opts.startingPosition ?? 'TRIM_HORIZON') : 'TRIM_HORIZON';
      const p = this.runShard(id, position).catch((err) => this.opts.log?.error('stream shard reader failed', { shardId: id, err }));
      this.running.add(p);
      void p.finally(() => this.running.delete(p));
    }
  }

  private async runShard(shardId: string, position: 'TRIM_HORIZON' | 'LATEST') {
    const { streams, streamArn } = this.opts;
    let iterator: string | undefined = (
      await streams.send(new GetShardIteratorCommand({ StreamArn: streamArn, ShardId: shardId, ShardIteratorType: position }))
    ).ShardIterator;
    let lastSeq: string | undefined;
    const batchSize = this.opts.batchSize ?? 100;
    const lanes = new ShardLanes({
      lanes: this.opts.parallelizationFactor ?? 1,
      batchSize,
      hashKey: this.opts.partitionKey,
      run: (records) => this.deliver(shardId, records).catch((err) => this.opts.log?.error('stream batch delivery failed', { shardId, err })),
    });
    this.shardLanes.add(lanes);
    while (!this.stopped && iterator) {
      await lanes.room();
      if (this.stopped) break;
      let records: StreamRecord[];
      try {
        const r = await streams.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: batchSize }));
        records = r.Records ?? [];
        iterator = r.NextShardIterator;
      } catch (err) {
        if (err instanceof ExpiredIteratorException || err instanceof TrimmedDataAccessException) {
          // Iterators expire after 15 minutes; resume after the last record we handled.
          iterator = (
            await streams.send(
              new GetShardIteratorCommand({
                StreamArn: streamArn,
                ShardId: shardId,
                ...(lastSeq ? { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: lastSeq } : { ShardIteratorType: 'TRIM_HORIZON' }),
              }),
            )
          ).ShardIterator;
          continue;
        }
        throw err;
      }
      if (records.length === 0) {
        if (iterator) await sleep(this.opts.idlePollMs ?? 100, this.stopping.signal);
        continue;
      }
      // Read position, not processed position: records handed to the lanes are in memory.
      lastSeq = records[records.length - 1].dynamodb?.SequenceNumber;
      lanes.push(records);
    }
    // A child shard starts only after every record of its parent was handled (per-key order).
    await lanes.idle();
    this.shardLanes.delete(lanes);
    this.finished.add(shardId);
  }

  /** One batch through the handler, with partial-failure retries, bisection and the DLQ. */
  private async deliver(shardId: string, batch: StreamRecord[]) {
    const maxAttempts = this.opts.maxRetryAttempts ?? 3;
    const queue: { records: StreamRecord[]; attempts: number }[] = [{ records: batch, attempts: 0 }];
    while (queue.length && !this.stopped) {
      const item = queue.shift()!;
      const { records } = item;
      let failedFrom: number | undefined;
      let error: string | undefined;
      let threw = false;
      try {
        this.stats.invocations += 1;
        const result = (await invokeLambda(this.opts.handler, toLambdaStreamEvent(records, this.opts.streamArn, this.opts.region), {
          functionName: this.opts.functionName ?? 'stream-consumer',
        })) as { batchItemFailures?: { itemIdentifier?: string }[] } | undefined;
        const failures = result?.batchItemFailures ?? [];
        if (failures.length) {
          const indexes = failures.map((f) => records.findIndex((r) => r.dynamodb?.SequenceNumber === f.itemIdentifier));
          // An empty or unknown identifier makes Lambda treat the whole batch as failed.
          failedFrom = indexes.some((i) => i < 0) ? 0 : Math.min(...indexes);
          error = 'batchItemFailures';
        }
      } catch (err) {
        threw = true;
        failedFrom = 0;
        error = (err as Error)?.message ?? String(err);
        this.opts.log?.warn('stream handler failed', { shardId, err });
      }
      if (failedFrom === undefined) {
        this.stats.records += records.length;
        continue;
      }
      this.stats.records += failedFrom;
      const rest = records.slice(failedFrom);
      const attempts = item.attempts + 1;
      if (attempts > maxAttempts) {
        this.stats.failedToDlq += rest.length;
        await this.opts.onFailure?.({
          reason: 'RetryAttemptsExhausted',
          firstSequenceNumber: rest[0].dynamodb!.SequenceNumber!,
          lastSequenceNumber: rest[rest.length - 1].dynamodb!.SequenceNumber!,
          batchSize: rest.length,
          shardId,
          streamArn: this.opts.streamArn,
          error,
        });
        continue;
      }
      this.stats.retries += 1;
      await sleep(backoffDelay(attempts - 1, { baseMs: this.opts.retryBaseMs ?? 50, maxMs: 2000, jitter: 'equal' }), this.stopping.signal);
      if (threw && (this.opts.bisectOnError ?? true) && rest.length > 1) {
        const mid = Math.ceil(rest.length / 2);
        queue.unshift({ records: rest.slice(0, mid), attempts }, { records: rest.slice(mid), attempts });
      } else {
        queue.unshift({ records: rest, attempts });
      }
    }
  }
}
