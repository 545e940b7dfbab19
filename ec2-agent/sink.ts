import type { Logger } from '../lib/log';
import { backoffDelay, sleep } from '../lib/retry';
import type { Metrics } from './metrics';

/**
 * The optional HTTP sink (seed 000's data lake, which received a POST per message): records
 * are buffered and POSTed as JSON arrays of up to `batchSize`, every `flushMs` or as soon as a
 * batch is full, one request at a time so the sink sees them in order. 429, 5xx and network
 * errors are retried with exponential backoff; other 4xx are not (the batch would never be
 * accepted). The buffer is bounded: when full the OLDEST record is dropped and counted
 * (`sinkDropped`), keeping memory flat while the sink is down. The Authorization value is sent,
 * never logged.
 */

export interface SinkRecord {
  readonly socketId: string;
  readonly platformID: string;
  readonly internalID: string;
  readonly topic: string;
  readonly ts: number;
  readonly receivedAt: number;
  readonly data: unknown;
}

export interface HttpSinkOptions {
  readonly url: string;
  readonly authorization?: string;
  readonly batchSize: number;
  readonly flushMs: number;
  readonly retries: number;
  readonly bufferSize: number;
  readonly backoffBaseMs: number;
  readonly requestTimeoutMs?: number;
  readonly metrics: Metrics;
  readonly log: Logger;
}

export class HttpSink {
  private buffer: SinkRecord[] = [];
  private timer?: NodeJS.Timeout;
  private flushing?: Promise<void>;
  private readonly abort = new AbortController();
  private stopped = false;

  constructor(private readonly opts: HttpSinkOptions) {}

  get buffered(): number {
    return this.buffer.length;
  }

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.opts.flushMs);
  }

  enqueue(rec: SinkRecord): void {
    if (this.stopped) {
      // Nothing would send it any more (a socket retiring while the agent stops).
      this.opts.metrics.inc('sinkDropped');
      return;
    }
    if (this.buffer.length >= this.opts.bufferSize) {
      this.buffer.shift();
      this.opts.metrics.inc('sinkDropped');
    }
    this.buffer.push(rec);
    if (this.buffer.length >= this.opts.batchSize) void this.flush();
  }

  /** Sends everything buffered, batch by batch. Concurrent calls share one flush. */
  flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    const run = (async () => {
      while (this.buffer.length && !this.abort.signal.aborted) {
        const batch = this.buffer.splice(0, this.opts.batchSize);
        await this.post(batch);
      }
    })();
    // Cleared after the assignment, never inside the body: with an empty buffer the body ends
    // synchronously, and clearing there would leave a settled promise behind that every later
    // flush returned without posting.
    this.flushing = run;
    const clear = () => {
      if (this.flushing === run) this.flushing = undefined;
    };
    run.then(clear, clear);
    return run;
  }

  private async post(batch: SinkRecord[]): Promise<void> {
    const body = JSON.stringify(batch);
    for (let attempt = 0; ; attempt++) {
      let retryable = true;
      let reason: string;
      try {
        const res = await fetch(this.opts.url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            ...(this.opts.authorization ? { authorization: this.opts.authorization } : {}),
          },
          body,
          signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.opts.requestTimeoutMs ?? 10_000)]),
        });
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) {
          this.opts.metrics.inc('sinkPosted', batch.length);
          return;
        }
        reason = `HTTP ${res.status}`;
        retryable = res.status === 429 || res.status >= 500;
      } catch (err) {
        reason = (err as Error).message;
      }
      this.opts.metrics.inc('sinkErrors');
      if (!retryable || attempt >= this.opts.retries || this.abort.signal.aborted) {
        this.opts.metrics.inc('sinkDropped', batch.length);
        this.opts.log.warn('sink batch dropped', { records: batch.length, reason, attempts: attempt + 1 });
        return;
      }
      await sleep(backoffDelay(attempt, { baseMs: this.opts.backoffBaseMs, maxMs: 30_000, jitter: 'equal' }), this.abort.signal);
    }
  }

  /**
   * Stops the timer and makes a last attempt to send what is buffered, within `timeoutMs`.
   * Whatever is still buffered then is dropped and counted (`sinkDropped`), as is anything
   * enqueued afterwards.
   */
  async stop(timeoutMs = 2000): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    let t: NodeJS.Timeout | undefined;
    await Promise.race([this.flush(), new Promise<void>((r) => (t = setTimeout(r, timeoutMs)))]);
    clearTimeout(t);
    this.abort.abort();
    await this.flushing; // the batch in flight is counted by post() (sent, or dropped on the abort)
    if (this.buffer.length) {
      this.opts.metrics.inc('sinkDropped', this.buffer.length);
      this.opts.log.warn('sink stopped with records unsent', { records: this.buffer.length });
      this.buffer = [];
    }
  }
}
