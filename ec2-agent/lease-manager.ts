import type { Logger } from '../lib/log';
import type { LeaseTable, RenewOutcome } from '../lib/upstream/leases';
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
 *
 * Expiry does not depend on the renew loop: every lease has its own local timer, set to one
 * renew period before the table's `leaseExpiresAt` (the margin covers clock skew and the time
 * to cut the socket), and re-armed by each confirmed renewal. So a renewal that hangs — a
 * half-open connection to DynamoDB, which the SDK does not time out by default — cannot keep a
 * socket in use after another agent may have claimed it. Renewals are also bounded: each one is
 * aborted, and treated as unconfirmed, when it has not answered by the lease's local deadline
 * or within one renew period, so the renew loop itself never stalls behind one call.
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

export type LostReason = 'refused' | 'expired' | 'unwanted';

export interface LeaseHooks {
  /**
   * Counter deltas to add to the row with the renewal; given back (restoreDeltas) unless the
   * renewal is confirmed, so they ride on the next write as this socket's owner.
   */
  takeDeltas(socketId: string): Partial<UpstreamCounters>;
  restoreDeltas(socketId: string, deltas: Partial<UpstreamCounters>): void;
  /**
   * The lease is gone or unprovable: `expired` (not confirmed in time), `refused` (not ours any
   * more), or `unwanted` (still ours, but no longer desired open: a DELETE; nobody else may
   * claim it while it is desired closed, so a clean close is safe).
   */
  onLost(socketId: string, why: LostReason): void;
}

interface Lease {
  /** The table's leaseExpiresAt as last confirmed. */
  expiresAt: number;
  timer?: NodeJS.Timeout;
}

export class LeaseManager {
  private readonly held = new Map<string, Lease>();
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
      this.drop(socketId);
      const lease: Lease = { expiresAt: now + this.opts.leaseMs };
      this.held.set(socketId, lease);
      this.arm(socketId, lease);
      this.opts.metrics.inc('leasesClaimed');
    }
    return row;
  }

  /** When the socket must be out of use: one renew period before the table lets others claim it. */
  private deadline(lease: Lease): number {
    return lease.expiresAt - this.opts.renewMs;
  }

  /** (Re)sets the lease's local expiry timer; it fires lost('expired') whatever else is in flight. */
  private arm(socketId: string, lease: Lease): void {
    clearTimeout(lease.timer);
    const delay = Math.max(0, this.deadline(lease) - this.opts.clock());
    lease.timer = setTimeout(() => {
      if (this.held.get(socketId) === lease) this.lost(socketId, 'expired');
    }, delay);
  }

  /** Stops tracking a lease and its timer. True when it was held. */
  private drop(socketId: string): boolean {
    const lease = this.held.get(socketId);
    if (!lease) return false;
    clearTimeout(lease.timer);
    this.held.delete(socketId);
    return true;
  }

  /** Stops tracking without a write (the row was already released or failed elsewhere). */
  forget(socketId: string): void {
    this.drop(socketId);
  }

  async release(socketId: string, status: UpstreamStatus): Promise<void> {
    const deltas = this.hooks?.takeDeltas(socketId) ?? {};
    this.drop(socketId);
    const ok = await this.opts.table.release(socketId, this.opts.agentId, this.opts.clock(), status, deltas);
    if (ok) this.opts.metrics.inc('leasesReleased');
  }

  async fail(socketId: string, reason: string): Promise<void> {
    const deltas = this.hooks?.takeDeltas(socketId) ?? {};
    this.drop(socketId);
    await this.opts.table.fail(socketId, this.opts.agentId, this.opts.clock(), reason, deltas);
  }

  start(): void {
    this.ticker.start();
  }

  /**
   * Stops renewing. The local expiry timers keep running: the leases are still held until the
   * caller releases them (agent shutdown closes and releases every socket right after).
   */
  stop(): Promise<void> {
    return this.ticker.stop();
  }

  /** Drops every lease's local timer without a write (agent shutdown, after the releases). */
  clear(): void {
    for (const id of this.ids()) this.drop(id);
  }

  private lost(socketId: string, why: LostReason): void {
    if (!this.drop(socketId)) return;
    this.opts.metrics.inc('leasesLost');
    this.opts.log.warn('lease lost; dropping the socket', { socketId, why });
    this.hooks?.onLost(socketId, why);
  }

  async renewAll(): Promise<void> {
    await Promise.all(this.ids().map((socketId) => this.renewOne(socketId)));
  }

  private async renewOne(socketId: string): Promise<void> {
    const lease = this.held.get(socketId);
    if (!lease) return;
    const now = this.opts.clock();
    if (now >= this.deadline(lease)) return this.lost(socketId, 'expired');
    const deltas = this.hooks?.takeDeltas(socketId) ?? {};
    // Only a confirmed renewal wrote the deltas. `refused` and `unwanted` are condition
    // failures, which write nothing, so the deltas go back: with `unwanted` the release that
    // follows carries them to the row. An unconfirmed renewal (timeout, abort, network error)
    // may or may not have landed; the deltas go back too, so a count can be added twice but is
    // never lost (an UpdateExpression ADD is not idempotent, and DynamoDB offers no way to ask
    // afterwards whether one write was applied).
    // Bounded by the local deadline (an answer after it could not save the lease anyway) and by
    // one renew period (so the next tick is not held up). The abort frees the HTTP request; the
    // race settles even if a layer below ignores the abort.
    const limitMs = Math.max(1, Math.min(this.opts.renewMs, this.deadline(lease) - now));
    const abort = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        abort.abort();
        reject(new RenewTimeoutError(limitMs));
      }, limitMs);
    });
    let outcome: RenewOutcome;
    try {
      outcome = await Promise.race([
        this.opts.table.renew(socketId, this.opts.agentId, now, this.opts.leaseMs, deltas, { abortSignal: abort.signal }),
        timedOut,
      ]);
    } catch (err) {
      // Unconfirmed: the write may or may not have landed. The local timer still stands, so the
      // lease is given up at its deadline unless a later renewal is confirmed first.
      this.hooks?.restoreDeltas(socketId, deltas);
      this.opts.log.warn('lease renewal failed', { socketId, err });
      return;
    } finally {
      clearTimeout(timer);
    }
    // Restored before onLost, so the release a loss may lead to carries them.
    if (outcome !== 'renewed') this.hooks?.restoreDeltas(socketId, deltas);
    if (this.held.get(socketId) !== lease) return; // expired or released meanwhile
    if (outcome === 'renewed') {
      lease.expiresAt = now + this.opts.leaseMs;
      this.arm(socketId, lease);
    } else this.lost(socketId, outcome);
  }
}

export class RenewTimeoutError extends Error {
  readonly code = 'renew_timeout';
  constructor(ms: number) {
    super(`lease renewal did not answer within ${ms} ms`);
    this.name = 'RenewTimeoutError';
  }
}
