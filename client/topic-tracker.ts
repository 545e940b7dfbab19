import type { EventMessage, SnapshotMessage, SubscribedMessage } from '../lib/protocol/frames';

/**
 * Per-topic resume and dedupe state: the part of the client that turns the server's
 * at-least-once, possibly reordered delivery into "every change exactly once, in order".
 *
 * Why reordering happens at all: on a (re)subscribe the server first writes the subscription row
 * and then replays history after `sinceSeq`; a change committed in between is also fanned out
 * live, and the live copy can overtake the replay. A rotation (two sockets subscribed at once)
 * and fan-out retries produce duplicates. So the tracker
 *  - drops every event or snapshot whose seq is ≤ the last one delivered,
 *  - holds events that arrive ahead of a gap in a small reorder buffer and releases them as soon
 *    as the gap is filled,
 *  - reports `needsResync()` while a gap stays open, so the connection can re-request the missing
 *    range (`subscribe` with `sinceSeq`); the server answers with history or a `reset` snapshot.
 *
 * Reset snapshots: `reset: true` means "history no longer covers your gap; this is the state now".
 *  - seq > last: delivered (reset) and becomes the new resume point; buffered events at or below
 *    it are dropped, the ones above it are released in order.
 *  - seq = last: the application already holds exactly this state; dropped as a duplicate.
 *  - seq < last: the topic's counter went backwards on the server (item deleted and re-created,
 *    local stack restarted with empty tables). Our position refers to a numbering that no longer
 *    exists, so the snapshot is delivered and the buffer cleared. This is the one case where the
 *    delivered seq decreases; the application can tell from `reset: true`.
 * A plain (non-reset) snapshot only answers a subscribe without `sinceSeq`; it is delivered when
 * nothing has been delivered yet or when it is newer than what was delivered.
 */

/**
 * `truncated`: the server could not send this state/change (over API Gateway's 128 KB message
 * limit); `data` is null but the seq is real and counts like any other, so no gap opens.
 */
export type Delivery =
  | { kind: 'snapshot'; topic: string; seq: number; data: unknown; ts?: number; reset: boolean; truncated?: true }
  | { kind: 'event'; topic: string; seq: number; data: unknown; ts?: number; latencyMs?: number; truncated?: true };

export interface TopicTrackerOptions {
  /** Events held while waiting for a gap to fill; beyond it the buffer is dropped and a resync forced. */
  maxBuffered?: number;
}

export class TopicTracker {
  private last: number | undefined;
  private readonly pending = new Map<number, EventMessage>();
  /** Highest seq the server told us exists (from `subscribed`); above `last` means events are owed. */
  private owed: number | undefined;
  private overflowed = false;
  private readonly maxBuffered: number;
  /** Frames dropped because their seq was already delivered (at-least-once made safe). */
  duplicates = 0;

  constructor(
    readonly topic: string,
    opts: TopicTrackerOptions = {},
  ) {
    this.maxBuffered = opts.maxBuffered ?? 1000;
  }

  /** The last seq delivered to the application; the `sinceSeq` of the next (re)subscribe. */
  get lastSeq(): number | undefined {
    return this.last;
  }

  get buffered(): number {
    return this.pending.size;
  }

  /** True while changes are known to be missing: a gap before buffered events, or owed events. */
  needsResync(): boolean {
    if (this.overflowed || this.pending.size > 0) return true;
    return this.owed !== undefined && this.last !== undefined && this.owed > this.last;
  }

  /** True once after the reorder buffer overflowed: resync at once rather than after a delay. */
  takeOverflow(): boolean {
    const o = this.overflowed;
    this.overflowed = false;
    return o;
  }

  accept(msg: SnapshotMessage | EventMessage | SubscribedMessage): Delivery[] {
    if (msg.type === 'subscribed') {
      if (msg.seq !== undefined) this.owed = Math.max(this.owed ?? 0, msg.seq);
      return [];
    }
    if (msg.type === 'snapshot') return this.acceptSnapshot(msg);
    return this.acceptEvent(msg);
  }

  private acceptSnapshot(msg: SnapshotMessage): Delivery[] {
    const reset = msg.reset === true;
    if (this.last !== undefined) {
      if (msg.seq === this.last || (!reset && msg.seq < this.last)) {
        this.duplicates += 1;
        return [];
      }
      if (msg.seq < this.last) {
        // Counter went backwards (see the class comment): the old numbering is void.
        this.pending.clear();
        this.owed = undefined;
      }
    }
    this.last = msg.seq;
    if (this.owed !== undefined && this.owed <= msg.seq) this.owed = undefined;
    for (const s of [...this.pending.keys()]) if (s <= msg.seq) this.pending.delete(s);
    const out: Delivery[] = [
      { kind: 'snapshot', topic: this.topic, seq: msg.seq, data: msg.data, ts: msg.ts, reset, ...(msg.truncated ? { truncated: true as const } : {}) },
    ];
    return out.concat(this.release());
  }

  private acceptEvent(msg: EventMessage): Delivery[] {
    if ((this.last !== undefined && msg.seq <= this.last) || this.pending.has(msg.seq)) {
      this.duplicates += 1;
      return [];
    }
    this.pending.set(msg.seq, msg);
    if (this.last === undefined) {
      // No snapshot yet (a live event overtook the subscribe answer): hold it until the snapshot says where we are.
      return this.checkOverflow();
    }
    const out = this.release();
    return out.length > 0 ? out : this.checkOverflow();
  }

  /** Delivers buffered events that continue the sequence without a gap. */
  private release(): Delivery[] {
    const out: Delivery[] = [];
    if (this.last === undefined) return out;
    for (let next = this.pending.get(this.last + 1); next; next = this.pending.get(this.last + 1)) {
      this.pending.delete(next.seq);
      this.last = next.seq;
      out.push({
        kind: 'event',
        topic: this.topic,
        seq: next.seq,
        data: next.data,
        ts: next.ts,
        latencyMs: next.latencyMs,
        ...(next.truncated ? { truncated: true as const } : {}),
      });
    }
    if (this.owed !== undefined && this.last >= this.owed) this.owed = undefined;
    return out;
  }

  private checkOverflow(): Delivery[] {
    if (this.pending.size > this.maxBuffered) {
      // Memory stays bounded; everything dropped here is re-sent by the resync (history or reset).
      this.pending.clear();
      this.overflowed = true;
    }
    return [];
  }
}
