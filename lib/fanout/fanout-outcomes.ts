import type { Logger } from '../log';
import { noMetrics, type DeliveryMetrics } from '../metrics';
import { withRetries, type RetryPolicy } from '../delivery/deliver';
import type { EventFields } from '../subscriber/frames';
import type { Limiter } from '../delivery/limiter';
import type { Sender, SendOutcome } from '../delivery/sender';

/**
 * Fan-out's bookkeeping: what each subscriber's final outcome means for the record, for that
 * connection and for the rest of the batch.
 *
 * - ok → delivered. too_large even as a placeholder → dropped (it can never succeed).
 * - 410 gone → the socket is closed: skipped for the rest of the batch, rows removed at the end.
 * - Still failing after its retries (5xx, network, 403, 429), while most others succeed → that
 *   ONE subscriber is forced to resync: DeleteConnection closes its socket, it is skipped for the
 *   rest of the batch and its rows are removed. A client that follows the protocol reconnects and
 *   resubscribes with `sinceSeq`, and history fills what it missed. The record counts as
 *   delivered for everyone else.
 * - Widespread failure (`widespreadFailure`: at least 2 of the record's deliveries and more than
 *   half of them still failing after retries — account-wide throttling, the management API or this
 *   function overloaded) is not one subscriber's fault, and disconnecting them all would add a
 *   reconnect storm to it: the record fails (→ batchItemFailures, Lambda retries the batch from
 *   it) and nobody is resynced.
 * - If DeleteConnection itself keeps failing, the connection's rows are KEPT: removing them while
 *   the socket stays open would silently stop its events; kept, the next record reaches it (or
 *   fails and resyncs it again), and the client's gap detection asks for what it missed.
 */

/** The record fails, instead of resyncing its failed subscribers, when most of its deliveries (and more than one) failed. */
export function widespreadFailure(attempted: number, failed: number): boolean {
  return failed >= 2 && failed * 2 > attempted;
}

// A type, not an interface, so it can be logged as a plain record.
export type FanoutStats = {
  records: number;
  delivered: number;
  gone: number;
  /** Deliveries that still failed after their retries (each one resyncs its connection, unless most of the record's failed). */
  failed: number;
  /** Of `failed`, those whose last answer was 429 (throttled). */
  throttled: number;
  /** Connections closed with DeleteConnection to force a resync (410 on delete counts: already closed). */
  resynced: number;
  /** Connections whose DeleteConnection kept failing (their rows are kept). */
  resyncFailed: number;
  malformed: number;
  skipped: number;
  dropped: number;
  /** Deliveries (counted in `delivered` too) that carried a truncated placeholder instead of the data. */
  truncated: number;
};

export interface BookkeepingDeps {
  readonly sender: Sender;
  readonly limit: Limiter;
  readonly retry: RetryPolicy;
  readonly removeStale: (connectionIds: string[]) => Promise<unknown>;
  readonly log: Logger;
  /** Gets each delivery's publish → delivery latency. */
  readonly metrics?: DeliveryMetrics;
  readonly clock?: () => number;
}

/** One record's outcomes, collected while it is delivered. */
export interface RecordTally {
  readonly event: EventFields;
  attempted: number;
  readonly throttled: string[];
  readonly failed: string[];
}

export class FanoutBookkeeping {
  readonly stats: FanoutStats;
  private readonly gone = new Set<string>();
  private readonly resyncs = new Map<string, Promise<SendOutcome>>();

  constructor(
    private readonly deps: BookkeepingDeps,
    records: number,
  ) {
    this.stats = { records, delivered: 0, gone: 0, failed: 0, throttled: 0, resynced: 0, resyncFailed: 0, malformed: 0, skipped: 0, dropped: 0, truncated: 0 };
  }

  /** Settled for this batch: nothing more is sent to it. */
  skip = (connectionId: string): boolean => this.gone.has(connectionId) || this.resyncs.has(connectionId);

  startRecord(event: EventFields): RecordTally {
    return { event, attempted: 0, throttled: [], failed: [] };
  }

  outcome(tally: RecordTally, id: string, outcome: SendOutcome, truncated: boolean): void {
    tally.attempted++;
    switch (outcome) {
      case 'ok':
        this.stats.delivered++;
        if (truncated) this.stats.truncated++;
        (this.deps.metrics ?? noMetrics).latency((this.deps.clock ?? Date.now)() - tally.event.ts);
        return;
      case 'gone':
        if (!this.gone.has(id)) this.stats.gone++;
        this.gone.add(id);
        return;
      case 'too_large':
        // Even the placeholder was refused (only with a tiny limit): failing the record would only block the topic.
        this.stats.dropped++;
        this.deps.log.error('fanout: event larger than the WebSocket message limit dropped', { topic: tally.event.topic, seq: tally.event.seq });
        return;
      case 'throttled':
        this.stats.failed++;
        this.stats.throttled++;
        tally.throttled.push(id);
        return;
      default:
        this.stats.failed++;
        tally.failed.push(id);
    }
  }

  /** Decides the record: false when it must be retried (widespread failure). Starts the resyncs it calls for. */
  settle(tally: RecordTally): boolean {
    const { topic, seq } = tally.event;
    const failed = [...tally.failed, ...tally.throttled];
    const widespread = widespreadFailure(tally.attempted, failed.length);
    const resync = widespread ? [] : failed;
    for (const id of resync) {
      this.deps.log.warn('fanout: delivery failed after retries; forcing the connection to resync', { topic, seq, connectionId: id });
      this.forceResync(id);
    }
    if (widespread) {
      this.deps.log.warn('fanout: most deliveries of the record failed; the record will be retried', {
        topic,
        seq,
        throttled: tally.throttled.length,
        failed: failed.length,
        attempted: tally.attempted,
      });
    }
    return !widespread;
  }

  private forceResync(id: string): void {
    if (this.resyncs.has(id)) return;
    const p = withRetries(() => this.deps.sender.disconnect(id), this.deps.retry, this.deps.limit);
    this.resyncs.set(id, p);
  }

  /** Waits for the resyncs and removes the rows of every connection that is gone or was closed. */
  async finish(): Promise<void> {
    const remove = [...this.gone];
    for (const [id, p] of this.resyncs) {
      const o = await p;
      if (o === 'ok' || o === 'gone') {
        this.stats.resynced++;
        if (!this.gone.has(id)) remove.push(id);
      } else {
        this.stats.resyncFailed++;
        this.deps.log.error('fanout: DeleteConnection failed; the connection keeps its subscriptions', { connectionId: id, outcome: o });
      }
    }
    if (remove.length === 0) return;
    try {
      await this.deps.removeStale(remove);
    } catch (err) {
      // Not a reason to re-deliver the batch: the next 410 (or TTL) prunes them again.
      this.deps.log.warn('fanout: stale connection cleanup failed', { count: remove.length, err });
    }
  }
}
