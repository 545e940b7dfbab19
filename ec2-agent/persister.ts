import type { Logger } from '../lib/log';
import { WriteConflictError, type ItemStore } from '../lib/stores/items';
import { backoffDelay, sleep } from './backoff';
import type { DecodedFrame } from './frames';

/**
 * Writes one socket's messages to its topic, in arrival order, one at a time: the agent is the
 * topic's single writer, so it passes the last seq it wrote and ItemStore skips the read (on a
 * conflict — another writer, or the previous owner after a failover — ItemStore re-reads).
 * Each item update reaches subscribers through the items stream and fan-out.
 *
 * The queue is bounded: when DynamoDB falls behind an upstream that floods, the OLDEST waiting
 * messages are dropped and counted (the items table holds the latest state, so the newest
 * values are the ones worth keeping).
 */

/** DynamoDB's item limit is 400 KB and items + history are written together; keep clear of it. */
export const MAX_PERSIST_BYTES = 350 * 1024;

export interface PersisterOptions {
  readonly items: ItemStore;
  readonly topic: string;
  readonly queueSize: number;
  readonly retries: number;
  readonly backoffBaseMs: number;
  readonly onPersisted: (seq: number) => void;
  readonly onDropped: (reason: string) => void;
  readonly onError: (err: unknown) => void;
  readonly log: Logger;
}

export class Persister {
  private readonly queue: DecodedFrame[] = [];
  private running?: Promise<void>;
  private lastSeq: number | undefined;
  private stopped = false;
  private readonly abort = new AbortController();

  constructor(private readonly opts: PersisterOptions) {}

  get pending(): number {
    return this.queue.length;
  }

  enqueue(frame: DecodedFrame): void {
    if (this.stopped) return;
    if (frame.bytes > MAX_PERSIST_BYTES) {
      this.opts.onDropped(`message of ${frame.bytes} bytes exceeds ${MAX_PERSIST_BYTES}`);
      return;
    }
    if (this.queue.length >= this.opts.queueSize) {
      this.queue.shift();
      this.opts.onDropped('persist queue full');
    }
    this.queue.push(frame);
    this.running ??= this.run().finally(() => {
      this.running = undefined;
    });
  }

  private async run(): Promise<void> {
    while (this.queue.length) {
      const frame = this.queue[0];
      await this.writeOne(frame);
      this.queue.shift();
    }
  }

  private async writeOne(frame: DecodedFrame): Promise<void> {
    let data = frame.data;
    for (let attempt = 0; ; attempt++) {
      try {
        const rec = await this.opts.items.write(this.opts.topic, data, { ts: frame.ts, expectedSeq: this.lastSeq });
        this.lastSeq = rec.seq;
        this.opts.onPersisted(rec.seq);
        return;
      } catch (err) {
        this.lastSeq = undefined; // re-read on the next try
        if (err instanceof WriteConflictError && attempt < this.opts.retries) continue;
        // A value the document client or DynamoDB refuses (unsafe integers, empty map keys…)
        // will never succeed as is; its text still can.
        if (isUnstorable(err) && frame.text !== undefined && data !== frame.text) {
          this.opts.log.warn('message not storable as JSON; storing its text', { topic: this.opts.topic, err });
          data = frame.text;
          continue;
        }
        this.opts.onError(err);
        if (attempt >= this.opts.retries || this.stopped || isUnstorable(err)) {
          this.opts.onDropped(`persist failed: ${(err as Error).message}`);
          return;
        }
        await sleep(backoffDelay(attempt, this.opts.backoffBaseMs, 10 * this.opts.backoffBaseMs + 1000), this.abort.signal);
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
}

function isUnstorable(err: unknown): boolean {
  const e = err as { name?: string; message?: string };
  return e?.name === 'ValidationException' || /MAX_SAFE_INTEGER|NumberValue|Unsupported type passed|empty string/i.test(e?.message ?? '');
}
