import type { Logger } from '../lib/log';

/**
 * Runs `fn` every `ms`, never two at once: a tick that is still running when the next one is
 * due makes the next one wait (setInterval would stack them up behind a slow DynamoDB call).
 * `stop()` resolves after the running tick, if any, has finished.
 */
export class Ticker {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = true;

  constructor(
    private readonly name: string,
    private readonly ms: number,
    private readonly fn: () => Promise<void>,
    private readonly log: Logger,
  ) {}

  start(opts: { immediate?: boolean } = {}): void {
    this.stopped = false;
    this.schedule(opts.immediate ? 0 : this.ms);
  }

  private schedule(delay: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.fn()
        .catch((err) => this.log.error(`${this.name} tick failed`, { err }))
        .finally(() => {
          this.running = undefined;
          this.schedule(this.ms);
        });
    }, delay);
  }

  /** Runs a tick now (tests, and "reconcile right after start"); waits for one in flight first. */
  async runNow(): Promise<void> {
    if (this.running) await this.running;
    await this.fn();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }
}
