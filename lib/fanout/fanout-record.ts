import type { Logger } from '../log';
import { deliver, type RetryPolicy } from '../delivery/deliver';
import type { FanoutBookkeeping, RecordTally } from './fanout-outcomes';
import { deliverablePrefix, eventPrefix, finishEvent, type EventFields } from '../subscriber/frames';
import type { Limiter } from '../delivery/limiter';
import type { Sender } from '../delivery/sender';

/**
 * The record handler of fan-out: a topic's records, each to every current subscriber.
 *
 * Order is kept per subscriber, not per record: each connection has its own lane (a promise
 * chain) in which the topic's records go out one after the other, and lanes run side by side.
 * A subscriber whose retries are slow therefore delays only itself; the others are not kept
 * waiting for it, neither for this record nor for the next. Up to `window` records of a topic
 * are in flight at once, which bounds memory (window × subscribers pending deliveries).
 *
 * A connection whose delivery of record n did not succeed is halted: it gets nothing after n in
 * this batch (it is being resynced, or the record fails and the batch is retried from n), so what
 * it received is always a contiguous run of seqs.
 *
 * An event whose frame would exceed `maxBytes` (API Gateway's 128 KB message limit; items may
 * hold 400 KB) goes out as a placeholder without data (`"truncated":true`, frames.ts), as does an
 * event API Gateway still answers 413 for: dropping the seq would open a gap no resync can fill.
 */

export interface TopicRecord {
  readonly index: number;
  readonly sequenceNumber: string;
  readonly event: EventFields;
}

export interface RecordContext {
  /** Live subscriber connection ids of a topic, page by page. */
  readonly subscribers: (topic: string) => AsyncIterable<string[]>;
  readonly sender: Sender;
  readonly limit: Limiter;
  readonly retry: RetryPolicy;
  readonly maxBytes: number;
  readonly clock: () => number;
  readonly log: Logger;
  readonly book: FanoutBookkeeping;
  /** Records of one topic in flight at once. */
  readonly window: number;
}

/** Delivers a topic's records in order; returns the first record that failed (later ones were not all delivered). */
export async function deliverTopic(records: readonly TopicRecord[], ctx: RecordContext): Promise<TopicRecord | undefined> {
  const lanes = new Map<string, Promise<void>>();
  const halted = new Set<string>();
  const inFlight: Promise<void>[] = [];
  let failed: TopicRecord | undefined;

  for (const rec of records) {
    if (failed) break;
    const tally = ctx.book.startRecord(rec.event);
    let deliveries: Promise<void>[];
    try {
      deliveries = await startRecord(rec.event, tally, ctx, lanes, halted);
    } catch (err) {
      // The subscribers could not be read: not one subscriber's failure.
      ctx.log.error('fanout: record failed', { topic: rec.event.topic, seq: rec.event.seq, err });
      failed = rec;
      break;
    }
    inFlight.push(
      Promise.all(deliveries).then(() => {
        if (!ctx.book.settle(tally) && (!failed || rec.index < failed.index)) failed = rec;
      }),
    );
    if (inFlight.length >= ctx.window) await inFlight.shift();
  }
  await Promise.all(inFlight);
  await Promise.all(lanes.values());
  return failed;
}

/** Queues one record on the lane of each of its subscribers; resolves once every page is queued. */
async function startRecord(
  event: EventFields,
  tally: RecordTally,
  ctx: RecordContext,
  lanes: Map<string, Promise<void>>,
  halted: Set<string>,
): Promise<Promise<void>[]> {
  // Serialised once per record; only latencyMs differs per delivery.
  const { prefix, truncated } = deliverablePrefix(event, ctx.maxBytes);
  if (truncated) {
    ctx.log.warn('fanout: event larger than the WebSocket message limit sent as a truncated placeholder', { topic: event.topic, seq: event.seq });
  }
  const frame = () => finishEvent(prefix, ctx.clock() - event.ts);
  let placeholder: string | undefined;
  const placeholderFrame = () => finishEvent((placeholder ??= eventPrefix(event, { truncated: true })), ctx.clock() - event.ts);

  const one = async (id: string) => {
    if (halted.has(id) || ctx.book.skip(id)) return;
    let o = await deliver(ctx.sender, id, frame, ctx.retry, ctx.limit);
    let sentTruncated = truncated;
    if (o === 'too_large' && !truncated) {
      // API Gateway counted it larger than we did: the placeholder keeps the seq contiguous.
      ctx.log.warn('fanout: event refused as too large, sending a truncated placeholder', { topic: event.topic, seq: event.seq, connectionId: id });
      o = await deliver(ctx.sender, id, placeholderFrame, ctx.retry, ctx.limit);
      sentTruncated = true;
    }
    if (o !== 'ok' && o !== 'too_large') halted.add(id);
    ctx.book.outcome(tally, id, o, sentTruncated);
  };

  const deliveries: Promise<void>[] = [];
  for await (const page of ctx.subscribers(event.topic)) {
    for (const id of page) {
      if (halted.has(id) || ctx.book.skip(id)) continue;
      const lane = (lanes.get(id) ?? Promise.resolve()).then(() => one(id));
      lanes.set(id, lane);
      deliveries.push(lane);
    }
  }
  return deliveries;
}
