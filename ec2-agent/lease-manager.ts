import type { Logger } from '../lib/log';
import type { LeaseTable } from '../lib/upstream/leases';
import type { UpstreamCounters, UpstreamRow, UpstreamStatus } from '../lib/upstream/row';
import type { Metrics } from './metrics';
import { Ticker } from './ticker';

/**
 * The leases this agent holds, renewed every `renewMs`. A socket is used only while its lease
 * is provably ours: when a renewal is refused (another agent took it, or it is no longer desired
 * open) or the lease runs out unrenewed (DynamoDB unreachable, the event loop stalled), `onLost`
 * fires and the caller drops the socket at once. With renewMs < leaseMs / 3 a healthy agent
 * renews at least twice before its lease could expire, so a live owner never loses a lease to
 * expiry, and an agent that cannot renew stops using the socket before another may claim it.
 * (This assumes agents' clocks agree to well within a renew period, which NTP on EC2 gives.)
 */

export interface LeaseManagerOptions {
  readonly table: LeaseTable;
  readonly agentId: string;
  readonly leaseMs: number;
  readonly renewMs: number;
  readonly clock: () => number;
  readonly metrics: Metrics;
  readonly log: Logger;
}

export interface LeaseHooks {
  /** Counter deltas to add to the row with the renewal; restored if the write fails. */
  takeDeltas(socketId: string): Partial<UpstreamCounters>;
  restoreDeltas(socketId: string, deltas: Partial<UpstreamCounters>): void;
  onLost(socketId: string, why: 'refused' | 'expired'): void;
}

export class LeaseManager {
  private readonly held = new Map<string, { expiresAt: number }>();
  private readonly ticker: Ticker;
  private hooks?: LeaseHooks;

  constructor(private readonly opts: LeaseManagerOptions) {
    this.ticker = new Ticker('lease renew', opts.renewMs, () => this.renewAll(), opts.log);
  }

  setHooks(h: LeaseHooks): void {
    this.hooks = h;
  }

  get size(): number {
    return this.held.size;
  }

  has(socketId: string): boolean {
    return this.held.has(socketId);
  }

  ids(): string[] {
    return [...this.held.keys()];
  }

  /** Claims the socket; the row as claimed, or undefined when it is not ours to take. */
  async claim(socketId: string): Promise<UpstreamRow | undefined> {
    const now = this.opts.clock();
    const row = await this.opts.table.claim(socketId, this.opts.agentId, now, this.opts.leaseMs);
    if (row) {
      this.held.set(socketId, { expiresAt: now + this.opts.leaseMs });
      this.opts.metrics.inc('leasesClaimed');
    }
    return row;
  }

  /** Stops tracking without a write (the row was already released or failed elsewhere). */
  forget(socketId: string): void {
    this.held.delete(socketId);
  }

  async release(socketId: string, status: UpstreamStatus): Promise<void> {
    const deltas = this.hooks?.takeDeltas(socketId) ?? {};
    this.held.delete(socketId);
    const ok = await this.opts.table.release(socketId, this.opts.agentId, this.opts.clock(), status, deltas);
    if (ok) this.opts.metrics.inc('leasesReleased');
  }

  async fail(socketId: string, reason: string): Promise<void> {
    const deltas = this.hooks?.takeDeltas(socketId) ?? {};
    this.held.delete(socketId);
    await this.opts.table.fail(socketId, this.opts.agentId, this.opts.clock(), reason, deltas);
  }

  start(): void {
    this.ticker.start();
  }

  stop(): Promise<void> {
    return this.ticker.stop();
  }

  private lost(socketId: string, why: 'refused' | 'expired'): void {
    if (!this.held.delete(socketId)) return;
    this.opts.metrics.inc('leasesLost');
    this.opts.log.warn('lease lost; dropping the socket', { socketId, why });
    this.hooks?.onLost(socketId, why);
  }

  async renewAll(): Promise<void> {
    await Promise.all(
      this.ids().map(async (socketId) => {
        const lease = this.held.get(socketId);
        if (!lease) return;
        const now = this.opts.clock();
        if (now >= lease.expiresAt) return this.lost(socketId, 'expired');
        const deltas = this.hooks?.takeDeltas(socketId) ?? {};
        try {
          const ok = await this.opts.table.renew(socketId, this.opts.agentId, now, this.opts.leaseMs, deltas);
          if (!this.held.has(socketId)) return;
          if (ok) lease.expiresAt = now + this.opts.leaseMs;
          else this.lost(socketId, 'refused');
        } catch (err) {
          this.hooks?.restoreDeltas(socketId, deltas);
          this.opts.log.warn('lease renewal failed', { socketId, err });
          // The next renewal would come too late to prove ownership: stop using it now.
          if (this.opts.clock() + this.opts.renewMs >= lease.expiresAt) this.lost(socketId, 'expired');
        }
      }),
    );
  }
}
