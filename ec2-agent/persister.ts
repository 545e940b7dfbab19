import type { Logger } from '../lib/log';
import type { Limiter } from '../lib/delivery/limiter';
import { ClaimTakenError, GuardFailedError, WriteConflictError, type ItemStore, type WriteClaim, type WriteGuard } from '../lib/stores/items';
import { worstCaseEventBytes } from '../lib/subscriber/frames';
import { backoffDelay, sleep } from '../lib/retry';
import type { DecodedFrame } from './frames';
import { InvalidDataError } from '../lib/stores/json-data';

/**
 * Writes one socket's messages to its topic, in arrival order, one at a time: the agent is the
 * topic's single writer, so it passes the last seq it wrote and ItemStore skips the read (on a
 * conflict — another writer, or the previous owner after a failover — ItemStore re-reads).
 * Each item update reaches subscribers through the items stream and fan-out.
 *
 * The queue is bounded: when DynamoDB falls behind an upstream that floods, the OLDEST waiting
 * messages are dropped and counted (the items table holds the latest state, so the newest
 * values are the ones worth keeping).
 *
 * Only deliverable messages are stored: one whose worst-case event frame on this topic (the
 * same measure POST /publish applies, lib/subscriber/frames.ts) exceeds `maxEventBytes` — API
 * Gateway's 128 KB WebSocket message limit — is dropped and counted. Stored, it would be dropped
 * by fan-out while its seq is taken, and subscribers would see a gap they can never fill. The
 * limit is far below DynamoDB's 400 KB item limit, so it covers that too.
 */

export interface PersisterOptions {
  readonly items: ItemStore;
  readonly topic: string;
  /** Checked in each write's transaction: this agent still owns the socket. */
  readonly guard?: WriteGuard;
  /** The largest event frame subscribers can be sent (config subscriber.maxMessageBytes). */
  readonly maxEventBytes: number;
  readonly queueSize: number;
  readonly retries: number;
  readonly backoffBaseMs: number;
  readonly onPersisted: (seq: number) => void;
  readonly onDropped: (reason: string) => void;
  /** A redundant socket's message the other slot's agent already persisted (its dedupe row exists). */
  readonly onDuplicate?: () => void;
  readonly onError: (err: unknown) => void;
  /**
   * Shared by every socket's persister: bounds the agent's message writes in flight, so they
   * wait here, in memory, rather than in the DynamoDB client's connection pool, where the
   * heartbeat would queue behind them (see SocketSupervisor).
   */
  readonly limit?: Limiter;
  readonly log: Logger;
}

export class Persister {
  private readonly queue: { frame: DecodedFrame; dedupe?: WriteClaim }[] = [];
  private running?: Promise<void>;
  private lastSeq: number | undefined;
  private stopped = false;
  private readonly abort = new AbortController();

  constructor(private readonly opts: PersisterOptions) {}

  get pending(): number {
    return this.queue.length;
  }

  /**
   * `dedupe` (redundant sockets): the dedupe row written in the message's own transaction, on
   * the condition that no live row holds its key; two agents racing with the same message
   * cannot both persist it.
   */
  enqueue(frame: DecodedFrame, dedupe?: WriteClaim): void {
    if (this.stopped) return;
    const problem = this.undeliverable(frame.data);
    if (problem) {
      this.opts.onDropped(problem);
      return;
    }
    if (this.queue.length >= this.opts.queueSize) {
      this.queue.shift();
      this.opts.onDropped('persist queue full');
    }
    this.queue.push({ frame, dedupe });
    this.running ??= this.run().finally(() => {
      this.running = undefined;
    });
  }

  /** Why `data` cannot be delivered on this topic (no content, only sizes), or undefined. */
  private undeliverable(data: unknown): string | undefined {
    const bytes = worstCaseEventBytes(this.opts.topic, data);
    return bytes > this.opts.maxEventBytes ? `too large: its event frame would be ${bytes} bytes; the limit is ${this.opts.maxEventBytes}` : undefined;
  }

  private async run(): Promise<void> {
    while (this.queue.length) {
      const { frame, dedupe } = this.queue[0];
      await this.writeOne(frame, dedupe);
      this.queue.shift();
    }
  }

  private async writeOne(frame: DecodedFrame, dedupe?: WriteClaim): Promise<void> {
    let data = frame.data;
    for (let attempt = 0; ; attempt++) {
      try {
        const write = () => this.opts.items.write(this.opts.topic, data, { ts: frame.ts, expectedSeq: this.lastSeq, guard: this.opts.guard, claim: dedupe });
        // Stopped (discarded) while waiting for its turn: never sent.
        const rec = this.opts.limit ? await this.opts.limit(async () => (this.stopped ? undefined : write())) : await write();
        if (!rec) {
          this.opts.onDropped('stopped before it was written');
          return;
        }
        this.lastSeq = rec.seq;
        this.opts.onPersisted(rec.seq);
        return;
      } catch (err) {
        this.lastSeq = undefined; // re-read on the next try
        // Another agent owns the socket now: this message is theirs to lose, never to overwrite.
        if (err instanceof ClaimTakenError) {
          this.opts.onDuplicate?.();
          return;
        }
        if (err instanceof GuardFailedError) {
          this.opts.onDropped('lease lost: another agent owns this socket');
          return;
        }
        // Not once stopped: a conflict after discard() is most likely the new owner's write, and
        // retrying would store this older message over it.
        if (err instanceof WriteConflictError && attempt < this.opts.retries && !this.stopped) continue;
        // A value the document client or DynamoDB refuses (unsafe integers, empty map keys…)
        // will never succeed as is; its text still can.
        if (isUnstorable(err) && frame.text !== undefined && data !== frame.text) {
          // As a JSON string the text can be longer than the parsed value (escapes).
          const problem = this.undeliverable(frame.text);
          if (problem) {
            this.opts.onDropped(problem);
            return;
          }
          this.opts.log.warn('message not storable as JSON; storing its text', { topic: this.opts.topic, err });
          data = frame.text;
          continue;
        }
        this.opts.onError(err);
        if (attempt >= this.opts.retries || this.stopped || isUnstorable(err)) {
          this.opts.onDropped(`persist failed: ${(err as Error).message}`);
          return;
        }
        await sleep(backoffDelay(attempt, { baseMs: this.opts.backoffBaseMs, maxMs: 10 * this.opts.backoffBaseMs + 1000, jitter: 'equal' }), this.abort.signal);
        // Stopped during the backoff (the abort cuts it short): no further attempt.
        if (this.stopped) {
          this.opts.onDropped(`persist failed: ${(err as Error).message}`);
          return;
        }
      }
    }
  }

  /** Waits until the queue is empty, at most `timeoutMs`; then stops accepting messages. */
  async drain(timeoutMs: number): Promise<void> {
    const running = this.running;
    if (running) {
      let t: NodeJS.Timeout | undefined;
      await Promise.race([running, new Promise<void>((r) => (t = setTimeout(r, timeoutMs)))]);
      clearTimeout(t);
    }
    this.stopped = true;
    this.abort.abort();
  }

  /**
   * Stops at once: every waiting message is dropped and counted (`onDropped(reason)`), new ones
   * are refused, and the write in flight (a DynamoDB request cannot be recalled) is neither
   * retried nor followed by another. For a socket another agent now owns: that agent writes the
   * topic's newer messages, and draining ours after them would put older data back on the item.
   * Resolves when the write in flight has settled.
   */
  async discard(reason: string): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    // While running, the queue's head is the message being written; run() removes it after.
    const dropped = this.queue.splice(this.running ? 1 : 0);
    for (let i = 0; i < dropped.length; i++) this.opts.onDropped(reason);
    await this.running;
  }
}

function isUnstorable(err: unknown): boolean {
  if (err instanceof InvalidDataError) return true; // ItemStore's own check (lib/stores/json-data.ts)
  const e = err as { name?: string; message?: string };
  return e?.name === 'ValidationException' || /MAX_SAFE_INTEGER|NumberValue|Unsupported type passed|empty string/i.test(e?.message ?? '');
}
