import type { Conn } from './conn';
import type { Timers } from './timers';

/**
 * One proactive rotation (before API Gateway's 2-hour cut-off): the new socket `next` is open and
 * resubscribing while `previous` still delivers. The old socket may go once every topic got an
 * answer on the new one (the server has then recorded the subscription, so every later change
 * reaches the new socket or is in the history it replays), or when the overlap ends, whichever
 * comes first. The client owns the sockets; this object only tracks what is still unconfirmed.
 */
export class Rotation {
  private readonly unconfirmed: Set<string>;
  private overlapTimer: unknown;

  constructor(
    readonly next: Conn,
    /** Cleared when the old socket closes by itself during the overlap. */
    public previous: Conn | undefined,
    topics: Iterable<string>,
    private readonly timers: Timers,
    overlapMs: number,
    onOverlapEnd: () => void,
  ) {
    this.unconfirmed = new Set(topics);
    this.overlapTimer = timers.setTimeout(() => {
      this.overlapTimer = undefined;
      onOverlapEnd();
    }, overlapMs);
  }

  /** True once every topic has been answered on the new socket. */
  get confirmed(): boolean {
    return this.unconfirmed.size === 0;
  }

  /** The new socket answered (or refused) `topic`, or the topic was dropped; returns `confirmed`. */
  confirm(conn: Conn, topic: string): boolean {
    if (conn !== this.next) return false;
    this.unconfirmed.delete(topic);
    return this.confirmed;
  }

  stop(): void {
    if (this.overlapTimer !== undefined) this.timers.clearTimeout(this.overlapTimer);
    this.overlapTimer = undefined;
  }
}
