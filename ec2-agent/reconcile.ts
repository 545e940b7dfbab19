import type { Logger } from '../lib/log';
import type { LeaseTable } from '../lib/upstream/leases';
import { Ticker } from './ticker';

/**
 * Every `reconcileMs`: find sockets that are desired open and whose lease has expired (never
 * claimed, released, or their agent died) and try to take as many as capacity allows. This is
 * what makes lost commands and dead instances harmless: within one lease period plus one
 * reconcile interval a live agent holds every desired-open socket.
 */
export class ReconcileLoop {
  private readonly ticker: Ticker;

  constructor(
    private readonly opts: {
      readonly table: LeaseTable;
      readonly reconcileMs: number;
      readonly clock: () => number;
      /** Free capacity right now. */
      readonly room: () => number;
      readonly open: (socketId: string) => Promise<unknown>;
      readonly log: Logger;
    },
  ) {
    this.ticker = new Ticker('reconcile', opts.reconcileMs, () => this.runOnce(), opts.log);
  }

  start(): void {
    this.ticker.start({ immediate: true });
  }

  stop(): Promise<void> {
    return this.ticker.stop();
  }

  async runOnce(): Promise<void> {
    const room = this.opts.room();
    if (room <= 0) return;
    const ids = await this.opts.table.claimable(this.opts.clock(), room);
    for (const id of ids) {
      if (this.opts.room() <= 0) break;
      try {
        await this.opts.open(id);
      } catch (err) {
        this.opts.log.warn('reconcile could not open a socket', { socketId: id, err });
      }
    }
  }
}
