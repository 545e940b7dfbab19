import type { CollectionSnapshotMessage, EventMessage } from '../lib/protocol/frames';
import { TopicTracker, type Delivery } from './topic-tracker';

/**
 * A collection subscription (`battery:*`) on the client: one TopicTracker per member, so each
 * member gets the same dedupe, reorder and hold-back rules as a topic of its own.
 *
 * - The snapshot may span several frames (`more`); member events that arrive before its last
 *   frame are held, then applied on top of it (those at or below a member's snapshot seq drop).
 * - A re-subscribe (after a reconnect, or to close a gap) answers with the state again: a
 *   member is delivered only when its seq moved past what was delivered (state-based catch-up).
 * - A member gap that stays open is closed by re-subscribing the collection (`needsResync`).
 */
export interface CollectionSnapshotDelivery {
  /** Members whose state moved (all of them on the first snapshot), by topic. */
  readonly members: Delivery[];
  /** Events held during the snapshot, or released by it, in per-member order. */
  readonly events: Delivery[];
  readonly truncated: boolean;
}

export class CollectionView {
  private readonly members = new Map<string, TopicTracker>();
  /** Member events held while a snapshot is being received; undefined once it is complete. */
  private held: EventMessage[] | undefined = [];
  private frames: CollectionSnapshotMessage[] = [];
  private overflowed = false;

  constructor(
    readonly pattern: string,
    private readonly maxBuffered = 1000,
  ) {}

  /** A subscribe for the collection was sent: hold member events until its snapshot is complete. */
  begin(): void {
    this.held ??= [];
    this.frames = [];
  }

  /** One snapshot frame; returns the deliveries once the last frame (no `more`) arrived. */
  acceptSnapshot(msg: CollectionSnapshotMessage): CollectionSnapshotDelivery | undefined {
    this.frames.push(msg);
    if (msg.more) return undefined;
    const members: Delivery[] = [];
    const events: Delivery[] = [];
    for (const frame of this.frames) {
      for (const it of frame.items) {
        for (const d of this.tracker(it.topic).accept({ type: 'snapshot', topic: it.topic, seq: it.seq, data: it.data, ts: it.ts, ...(it.truncated ? { truncated: true } : {}) })) {
          (d.kind === 'snapshot' ? members : events).push(d);
        }
      }
    }
    this.frames = [];
    const held = this.held ?? [];
    this.held = undefined;
    this.overflowed = false;
    for (const e of held) events.push(...this.tracker(e.topic).accept(e));
    return { members, events, truncated: msg.truncated === true };
  }

  /** A live event of a member. */
  acceptEvent(msg: EventMessage): Delivery[] {
    if (this.held) {
      // Memory stays bounded: past the limit the snapshot being received supersedes them anyway,
      // except for changes after it, which a re-subscribe brings.
      if (this.held.length < this.maxBuffered) this.held.push(msg);
      else this.overflowed = true;
      return [];
    }
    if (!this.members.has(msg.topic)) {
      // A member the snapshot did not list (created after it, or not yet in the server's
      // eventually consistent index): an event carries the member's whole state, so its first one
      // starts the member's sequence rather than waiting for a snapshot that is not coming.
      this.tracker(msg.topic).accept({ type: 'snapshot', topic: msg.topic, seq: msg.seq - 1, data: null });
    }
    return this.tracker(msg.topic).accept(msg);
  }

  /** True while a member has a gap open, or held events were dropped. */
  needsResync(): boolean {
    if (this.overflowed) return true;
    for (const t of this.members.values()) if (t.needsResync()) return true;
    return false;
  }

  /** True once after a member's reorder buffer overflowed: resync at once. */
  takeOverflow(): boolean {
    let o = false;
    for (const t of this.members.values()) o = t.takeOverflow() || o;
    return o;
  }

  /** Last seq delivered per member. */
  lastSeq(topic: string): number | undefined {
    return this.members.get(topic)?.lastSeq;
  }

  private tracker(topic: string): TopicTracker {
    let t = this.members.get(topic);
    if (!t) this.members.set(topic, (t = new TopicTracker(topic, { maxBuffered: this.maxBuffered })));
    return t;
  }
}
