import { API_GATEWAY_MESSAGE_LIMIT } from '../config';
import type { Logger } from '../log';
import { noMetrics, type DeliveryMetrics } from '../metrics';
import { DEFAULT_RETRY, reportingTo, type RetryPolicy } from '../delivery/deliver';
import { FanoutBookkeeping, type FanoutStats } from './fanout-outcomes';
import { deliverTopic, type TopicRecord } from './fanout-record';
import { createAdaptiveLimiter, createLimiter, type Limiter } from '../delivery/limiter';
import type { Sender } from '../delivery/sender';
import { parseStreamRecord, type StreamRecordLike } from './stream-record';

/**
 * Fan-out of one items-stream batch (DESIGN §4), in three parts as a batch processor is:
 * the record handler (fanout-record.ts), the outcome bookkeeping (fanout-outcomes.ts: 410 →
 * prune, one failing subscriber → forced resync, most deliveries failing → the record fails) and
 * the batch response here.
 *
 * - Per-topic order, per subscriber: each subscriber gets a topic's records one after the other,
 *   in its own lane, so a slow subscriber delays only itself (fanout-record.ts); topics run side
 *   by side.
 * - Every management API request of the batch goes through one limiter, so the number in flight
 *   never exceeds `concurrency` (the keep-alive socket pool); a retry's backoff holds no slot. The
 *   limiter is adaptive (limiter.ts, AIMD): it grows while requests wait on the round trip and
 *   cuts when a window's 429 share shows the quota, so one invocation approaches the account's
 *   `@connections` quota without a 429 storm, while random 429s do not hold it down.
 * - One delivery takes at most the retry budget (`retry.budgetMs`, 2 s by default); a subscriber
 *   whose delivery failed is resynced and skipped for the rest of the batch, so it holds its own
 *   lane that long once per batch and never holds the other subscribers at all.
 * - A record fails only for what is not one subscriber's fault: its subscribers cannot be read,
 *   or most of its deliveries failed. Later records of that topic then wait (they would
 *   overtake it) and the earliest failed record's SequenceNumber is reported in
 *   `batchItemFailures`: Lambda re-delivers the batch from there; subscribers that already got a
 *   record drop it by seq (at-least-once, DESIGN §3).
 */

export interface FanoutDeps {
  /** Live subscriber connection ids of a topic, page by page. */
  readonly subscribers: (topic: string) => AsyncIterable<string[]>;
  readonly sender: Sender;
  readonly removeStale: (connectionIds: string[]) => Promise<unknown>;
  readonly clock: () => number;
  readonly log: Logger;
  /** In-flight management API calls: the ceiling of the adaptive limiter, or the fixed size with `adaptive: false`. */
  readonly concurrency: number;
  /** Adaptive concurrency (default true); false keeps `concurrency` in flight whatever the answers (the former behaviour). */
  readonly adaptive?: boolean;
  readonly retry?: RetryPolicy;
  /** Largest frame API Gateway accepts; default 128 KB. */
  readonly maxMessageBytes?: number;
  /** Records of one topic in flight at once (default 32). */
  readonly window?: number;
  /** Delivery metrics (lib/metrics.ts), written once per batch. */
  readonly metrics?: DeliveryMetrics;
}

const DEFAULT_WINDOW = 32;

export interface FanoutResult {
  readonly batchItemFailures: { itemIdentifier: string }[];
  readonly stats: FanoutStats;
  /** What the adaptive limiter did (absent with `adaptive: false`): its highest and last limit, its 429 decreases. */
  readonly concurrency?: { readonly peak: number; readonly last: number; readonly decreases: number };
}

export async function fanout(records: readonly StreamRecordLike[], deps: FanoutDeps): Promise<FanoutResult> {
  let limit: Limiter;
  let sender = deps.sender;
  const adaptive = deps.adaptive === false ? undefined : createAdaptiveLimiter({ max: deps.concurrency });
  if (!adaptive) limit = createLimiter(deps.concurrency);
  else {
    limit = adaptive.run;
    sender = reportingTo(adaptive, deps.sender);
  }
  const retry = deps.retry ?? DEFAULT_RETRY;
  const metrics = deps.metrics ?? noMetrics;
  const book = new FanoutBookkeeping({ sender, limit, retry, removeStale: deps.removeStale, log: deps.log, metrics, clock: deps.clock }, records.length);
  const byTopic = groupByTopic(records, deps, book);
  const ctx = {
    subscribers: deps.subscribers,
    sender,
    limit,
    retry,
    maxBytes: deps.maxMessageBytes ?? API_GATEWAY_MESSAGE_LIMIT,
    clock: deps.clock,
    log: deps.log,
    book,
    window: deps.window ?? DEFAULT_WINDOW,
  };

  const failed = (await Promise.all([...byTopic.values()].map((list) => deliverTopic(list, ctx)))).filter((r) => r !== undefined);
  await book.finish();
  reportBatch(metrics, book.stats);

  failed.sort((a, b) => a.index - b.index);
  const first = failed[0];
  return {
    batchItemFailures: first ? [{ itemIdentifier: first.sequenceNumber }] : [],
    stats: book.stats,
    ...(adaptive ? { concurrency: { peak: adaptive.peak, last: adaptive.limit, decreases: adaptive.decreases } } : {}),
  };
}

/** One set of counters per batch (latencies were recorded per delivery); 0s included so graphs show quiet batches. */
function reportBatch(metrics: DeliveryMetrics, stats: FanoutStats): void {
  metrics.count('records', stats.records);
  metrics.count('deliveries', stats.delivered);
  metrics.count('gone', stats.gone);
  metrics.count('failed', stats.failed);
  metrics.count('throttled', stats.throttled);
  metrics.count('resyncs', stats.resynced);
  metrics.flush();
}

/** Parses the batch; malformed records are logged and skipped so they never block the shard. */
function groupByTopic(records: readonly StreamRecordLike[], deps: FanoutDeps, book: FanoutBookkeeping): Map<string, TopicRecord[]> {
  const byTopic = new Map<string, TopicRecord[]>();
  const now = deps.clock();
  records.forEach((rec, index) => {
    const p = parseStreamRecord(rec, now);
    if (p.kind === 'malformed') {
      book.stats.malformed++;
      deps.log.error('fanout: malformed stream record skipped', { sequenceNumber: p.sequenceNumber, reason: p.reason });
      return;
    }
    if (p.kind === 'skip') {
      book.stats.skipped++;
      return;
    }
    let list = byTopic.get(p.event.topic);
    if (!list) byTopic.set(p.event.topic, (list = []));
    list.push({ index, sequenceNumber: p.sequenceNumber, event: p.event });
  });
  return byTopic;
}
