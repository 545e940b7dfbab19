import { API_GATEWAY_MESSAGE_LIMIT } from '../config';
import type { Logger } from '../log';
import { deliver, DEFAULT_RETRY, type RetryPolicy } from './deliver';
import { deliverablePrefix, eventPrefix, finishEvent } from './frames';
import { createLimiter } from './limiter';
import type { Sender, SendOutcome } from './sender';
import { parseStreamRecord, type StreamRecordLike } from './stream-record';

/**
 * Fan-out of one items-stream batch (DESIGN §4).
 *
 * - Per-topic order: a topic's records are delivered one after the other (each record finished
 *   for every subscriber before the next starts), topics run side by side.
 * - Subscribers are read page by page (the next page is fetched while the current one is sent).
 * - Every PostToConnection of the batch goes through one limiter (`concurrency`), so the number
 *   of in-flight requests matches the keep-alive socket pool.
 * - 410 Gone → the connection is remembered as stale, skipped for the rest of the batch, and its
 *   rows are deleted at the end (`removeStale`).
 * - 429/5xx → retried with backoff and jitter (`deliver`); when a record still has a failed
 *   delivery, the record fails, later records of the same topic are not delivered (they would
 *   overtake it), and the earliest failed record's SequenceNumber is reported in
 *   `batchItemFailures`: Lambda re-delivers the batch from there. Subscribers that already got
 *   it receive it again and drop it by seq (at-least-once, DESIGN §3).
 * - An item whose event frame would exceed `maxMessageBytes` (API Gateway's 128 KB message
 *   limit; items may hold 400 KB) goes out as a placeholder without data (`"truncated":true`,
 *   frames.ts), as does an event API Gateway still answers 413 for. Dropping the seq instead
 *   would open a gap that no resync can fill.
 */

export interface FanoutDeps {
  /** Live subscriber connection ids of a topic, page by page. */
  readonly subscribers: (topic: string) => AsyncIterable<string[]>;
  readonly sender: Sender;
  readonly removeStale: (connectionIds: string[]) => Promise<unknown>;
  readonly clock: () => number;
  readonly log: Logger;
  readonly concurrency: number;
  readonly retry?: RetryPolicy;
  /** Largest frame API Gateway accepts; default 128 KB. */
  readonly maxMessageBytes?: number;
}

export interface FanoutResult {
  readonly batchItemFailures: { itemIdentifier: string }[];
  readonly stats: {
    records: number;
    delivered: number;
    gone: number;
    failed: number;
    malformed: number;
    skipped: number;
    dropped: number;
    /** Deliveries (counted in `delivered` too) that carried a truncated placeholder instead of the data. */
    truncated: number;
  };
}

export async function fanout(records: readonly StreamRecordLike[], deps: FanoutDeps): Promise<FanoutResult> {
  const limit = createLimiter(deps.concurrency);
  const retry = deps.retry ?? DEFAULT_RETRY;
  const maxBytes = deps.maxMessageBytes ?? API_GATEWAY_MESSAGE_LIMIT;
  const stats = { records: records.length, delivered: 0, gone: 0, failed: 0, malformed: 0, skipped: 0, dropped: 0, truncated: 0 };
  const gone = new Set<string>();
  const byTopic = new Map<string, { index: number; sequenceNumber: string; event: Parameters<typeof eventPrefix>[0] }[]>();
  const now = deps.clock();

  records.forEach((rec, index) => {
    const p = parseStreamRecord(rec, now);
    if (p.kind === 'malformed') {
      stats.malformed++;
      deps.log.error('fanout: malformed stream record skipped', { sequenceNumber: p.sequenceNumber, reason: p.reason });
      return;
    }
    if (p.kind === 'skip') {
      stats.skipped++;
      return;
    }
    let list = byTopic.get(p.event.topic);
    if (!list) byTopic.set(p.event.topic, (list = []));
    list.push({ index, sequenceNumber: p.sequenceNumber, event: p.event });
  });

  const failedIndexes: { index: number; sequenceNumber: string }[] = [];

  const deliverRecord = async (event: Parameters<typeof eventPrefix>[0]): Promise<boolean> => {
    // Serialised once per record; only latencyMs differs per delivery.
    const { prefix, truncated } = deliverablePrefix(event, maxBytes);
    if (truncated) {
      deps.log.warn('fanout: event larger than the WebSocket message limit sent as a truncated placeholder', { topic: event.topic, seq: event.seq });
    }
    const frame = () => finishEvent(prefix, deps.clock() - event.ts);
    let placeholder: string | undefined;
    const placeholderFrame = () => finishEvent((placeholder ??= eventPrefix(event, { truncated: true })), deps.clock() - event.ts);
    let ok = true;
    const onOutcome = (id: string, outcome: SendOutcome, wasTruncated: boolean) => {
      switch (outcome) {
        case 'ok':
          stats.delivered++;
          if (wasTruncated) stats.truncated++;
          return;
        case 'gone':
          if (!gone.has(id)) stats.gone++;
          gone.add(id);
          return;
        case 'too_large':
          // Even the placeholder was refused (only with a tiny limit): it can never succeed, so
          // failing the record would only block the topic.
          stats.dropped++;
          deps.log.error('fanout: event larger than the WebSocket message limit dropped', { topic: event.topic, seq: event.seq });
          return;
        default:
          stats.failed++;
          ok = false;
          deps.log.warn('fanout: delivery failed after retries', { topic: event.topic, seq: event.seq, connectionId: id, outcome });
      }
    };
    const pages = deps.subscribers(event.topic)[Symbol.asyncIterator]();
    let next = pages.next();
    for (;;) {
      const r = await next;
      if (r.done) break;
      next = pages.next();
      next.catch(() => {}); // awaited on the next turn; don't let it count as unhandled meanwhile
      await Promise.all(
        r.value.map(async (id) => {
          if (gone.has(id)) return;
          const o = await limit(() => deliver(deps.sender, id, frame, retry));
          if (o === 'too_large' && !truncated) {
            // API Gateway counted it larger than we did: the placeholder keeps the seq contiguous.
            deps.log.warn('fanout: event refused as too large, sending a truncated placeholder', { topic: event.topic, seq: event.seq, connectionId: id });
            onOutcome(id, await limit(() => deliver(deps.sender, id, placeholderFrame, retry)), true);
            return;
          }
          onOutcome(id, o, truncated);
        }),
      );
    }
    return ok;
  };

  await Promise.all(
    [...byTopic.values()].map(async (list) => {
      for (const rec of list) {
        let ok: boolean;
        try {
          ok = await deliverRecord(rec.event);
        } catch (err) {
          deps.log.error('fanout: record failed', { topic: rec.event.topic, seq: rec.event.seq, err });
          ok = false;
        }
        if (!ok) {
          // Later records of this topic wait: delivering them now would overtake this one.
          failedIndexes.push(rec);
          return;
        }
      }
    }),
  );

  if (gone.size > 0) {
    try {
      await deps.removeStale([...gone]);
    } catch (err) {
      // Not a reason to re-deliver the batch: the next 410 (or TTL) prunes them again.
      deps.log.warn('fanout: stale connection cleanup failed', { count: gone.size, err });
    }
  }

  failedIndexes.sort((a, b) => a.index - b.index);
  const first = failedIndexes[0];
  return { batchItemFailures: first ? [{ itemIdentifier: first.sequenceNumber }] : [], stats };
}
