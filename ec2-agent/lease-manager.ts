import type { Logger } from '../lib/log';
import type { HeartbeatTable } from '../lib/upstream/heartbeats';
import type { Fence, LeaseTable, WriteOutcome } from '../lib/upstream/leases';
import type { UpstreamCounters, UpstreamRow, UpstreamStatus } from '../lib/upstream/row';
import type { Metrics } from './metrics';
import { Ticker } from './ticker';
import { auditVerdict } from './audit';

/**
 * This agent's ownership: one heartbeat (lib/upstream/heartbeats.ts) renewed every `renewMs`
 * proves the agent alive for `leaseMs`; every socket it claims carries its epoch, and no write
 * per socket is needed to keep it. The agent uses its sockets only while its heartbeat is
 * provably live: one local timer, set to one renew period before the heartbeat's expiry in the
 * table (the margin covers clock skew and the time to cut the sockets) and re-armed by each
 * confirmed heartbeat, fires `onLost(id, 'expired')` for every socket whatever else is in
 * flight — a heartbeat that hangs (a half-open connection to DynamoDB) cannot keep sockets in
 * use after another agent may claim them. With renewMs < leaseMs / 3 a healthy agent beats at
 * least twice before that. (This assumes agents' clocks agree to well within a renew period,
 * which NTP on EC2 gives.)
 *
 * After an expiry the agent starts a new life: a new heartbeat row and epoch. Its old epoch's
 * sockets are claimable by anyone, itself included, through the reconcile loop.
 */

export interface LeaseManagerOptions {
  readonly table: LeaseTable;
  readonly heartbeats: HeartbeatTable;
  readonly agentId: string;
  readonly leaseMs: number;
  readonly renewMs: number;
  readonly clock: () => number;
  readonly metrics: Metrics;
  readonly log: Logger;
}

export type LostReason = 'expired' | 'refused' | 'unwanted';

export interface LeaseHooks {
  /** The counter deltas gathered for the socket, taken (and cleared) to ride on a release or fail. */
  takeDeltas(socketId: string): Partial<UpstreamCounters>;
  /**
   * The socket is gone or unprovable: `expired` (the heartbeat was not confirmed in time),
   * `refused` (not ours any more), or `unwanted` (still ours, but no longer desired open: a
   * DELETE; nobody else may claim it while it is desired closed, so a clean close is safe).
   */
  onLost(socketId: string, why: LostReason): void;
  /** Another agent received a close command for this socket; the table decides (`ensureClosed`). */
  onCloseHint(socketId: string): Promise<void>;
}

export class LeaseManager {
  private readonly held = new Set<string>();
  private readonly ticker: Ticker;
  private hooks?: LeaseHooks;
  /** The live epoch, or undefined between an expiry and the next registration. */
  private epoch?: number;
  /** Local deadline: when every socket must be out of use unless a heartbeat is confirmed. */
  private deadline = 0;
  private timer?: NodeJS.Timeout;
  /** Close hints handled since the last heartbeat: removed from the row by the next one. */
  private handledHints: string[] = [];

  constructor(private readonly opts: LeaseManagerOptions) {
    this.ticker = new Ticker('heartbeat', opts.renewMs, () => this.beat(), opts.log);
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
    return [...this.held];
  }

  /** The owner and epoch this agent's writes are fenced by; undefined while it has no live heartbeat. */
  fence(): Fence | undefined {
    return this.epoch === undefined ? undefined : { owner: this.opts.agentId, epoch: this.epoch };
  }

  /** Registers the heartbeat (the first epoch) and starts beating. */
  async start(): Promise<void> {
    await this.register();
    this.ticker.start();
  }

  private async register(): Promise<void> {
    const now = this.opts.clock();
    const epoch = await this.opts.heartbeats.register(this.opts.agentId, now, this.opts.leaseMs);
    this.epoch = epoch;
    this.handledHints = [];
    this.arm(now);
    this.opts.log.info('heartbeat registered', { epoch });
  }

  /** Re-arms the local deadline for a heartbeat confirmed as sent at `sentAt`. */
  private arm(sentAt: number): void {
    this.deadline = sentAt + this.opts.leaseMs - this.opts.renewMs;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.expire(), Math.max(0, this.deadline - this.opts.clock()));
  }

  /** Claims the socket (with `from`: takes it over from that expired epoch); the row, or undefined. */
  async claim(socketId: string, from?: number): Promise<UpstreamRow | undefined> {
    const fence = this.fence();
    if (!fence) return undefined;
    const row = await this.opts.table.claim(socketId, fence, this.opts.clock(), from);
    // A claim that answered after the epoch ended belongs to a dead life: the reconcile finds it.
    if (!row || this.epoch !== fence.epoch) return undefined;
    this.held.add(socketId);
    this.opts.metrics.inc('leasesClaimed');
    return row;
  }

  /** Claims many sockets in batches (LeaseTable.claimMany); the ids this life now holds. */
  async claimMany(socketIds: readonly string[], from?: number): Promise<string[]> {
    const fence = this.fence();
    if (!fence || !socketIds.length) return [];
    const ids = await this.opts.table.claimMany(socketIds, fence, this.opts.clock(), from);
    // Answered after the epoch ended: those claims belong to a dead life; the reconcile finds them.
    if (this.epoch !== fence.epoch) return [];
    for (const id of ids) {
      this.held.add(id);
      this.opts.metrics.inc('leasesClaimed');
    }
    return ids;
  }

  /**
   * The rows of sockets this life claimed, read back (consistent) for their dials, split by what
   * the table says now: `ours` (still owned by this life and desired open), `unwanted` (ours,
   * but closed since the claim, or the row is gone: to release) and `lost` (another owner or
   * epoch since: forgotten here).
   */
  async claimedRows(socketIds: readonly string[]): Promise<{ ours: UpstreamRow[]; unwanted: string[]; lost: string[] }> {
    const fence = this.fence();
    const rows = new Map((fence ? await this.opts.table.readRows(socketIds) : []).map((r) => [r.socketId, r]));
    const out = { ours: [] as UpstreamRow[], unwanted: [] as string[], lost: [] as string[] };
    for (const id of socketIds) {
      // The same judgement as the ownership audit's; a life that ended meanwhile holds nothing.
      const verdict = fence && this.epoch === fence.epoch ? auditVerdict(rows.get(id), fence) : 'refused';
      if (verdict === 'keep') out.ours.push(rows.get(id)!);
      else if (verdict === 'unwanted') out.unwanted.push(id);
      else {
        out.lost.push(id);
        this.held.delete(id);
      }
    }
    return out;
  }

  /**
   * Tracks sockets the table shows under `epoch` that this agent did not know it held (orphans,
   * see ec2-agent/audit.ts), so they can be read back, dialled or released like claims. False
   * when `epoch` is no longer this agent's life.
   */
  adopt(socketIds: readonly string[], epoch: number): boolean {
    if (this.epoch !== epoch) return false;
    for (const id of socketIds) this.held.add(id);
    return true;
  }

  /** Stops tracking without a write (the row was already released or failed elsewhere). */
  forget(socketId: string): void {
    this.held.delete(socketId);
  }

  async release(socketId: string, status: UpstreamStatus): Promise<void> {
    const deltas = this.hooks?.takeDeltas(socketId) ?? {};
    const fence = this.fence();
    this.held.delete(socketId);
    if (!fence) return;
    const ok = await this.opts.table.release(socketId, fence, this.opts.clock(), status, deltas);
    if (ok) this.opts.metrics.inc('leasesReleased');
  }

  async fail(socketId: string, reason: string): Promise<void> {
    const deltas = this.hooks?.takeDeltas(socketId) ?? {};
    const fence = this.fence();
    this.held.delete(socketId);
    if (!fence) return;
    await this.opts.table.fail(socketId, fence, this.opts.clock(), reason, deltas);
  }

  /** Adds a socket's counter deltas to its row, fenced; a refusal means the socket is not ours. */
  async addCounters(socketId: string, deltas: Partial<UpstreamCounters>): Promise<WriteOutcome> {
    const fence = this.fence();
    if (!fence || !this.held.has(socketId)) return 'refused';
    return this.opts.table.addCounters(socketId, fence, deltas);
  }

  /**
   * Stops beating. The local deadline still stands: the sockets are held until the caller
   * releases them (agent shutdown closes and releases every socket right after, then `end`).
   */
  stop(): Promise<void> {
    return this.ticker.stop();
  }

  /** Agent shutdown, after the releases: the heartbeat expires now, so nothing left waits for it. */
  async end(): Promise<void> {
    clearTimeout(this.timer);
    const epoch = this.epoch;
    this.epoch = undefined;
    this.held.clear();
    if (epoch !== undefined) await this.opts.heartbeats.expireNow(epoch);
  }

  /** Every socket out of use at once; a new life is registered at the next tick. */
  private expire(): void {
    if (this.epoch === undefined) return;
    this.opts.log.warn('heartbeat not confirmed in time; dropping every socket', { epoch: this.epoch, sockets: this.held.size });
    this.epoch = undefined;
    clearTimeout(this.timer);
    const ids = this.ids();
    this.held.clear();
    for (const id of ids) {
      this.opts.metrics.inc('leasesLost');
      this.hooks?.onLost(id, 'expired');
    }
  }

  /** One heartbeat, bounded like the deadline; or, after an expiry, a new registration. */
  async beat(): Promise<void> {
    if (this.epoch === undefined) {
      try {
        await this.register();
      } catch (err) {
        this.opts.log.warn('heartbeat registration failed', { err });
      }
      return;
    }
    const epoch = this.epoch;
    const now = this.opts.clock();
    if (now >= this.deadline) return this.expire();
    const handled = this.handledHints;
    // Bounded by the local deadline only: an answer after it could not save the sockets anyway,
    // and a slow answer before it (a loaded host, a throttled call) still does. One slow call
    // must not cost every socket of the agent, so it is not cut at one renew period; the next
    // tick simply waits for it. The abort frees the HTTP request; the race settles even if a
    // layer below ignores the abort.
    const limitMs = Math.max(1, this.deadline - now);
    const abort = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        abort.abort();
        reject(new RenewTimeoutError(limitMs));
      }, limitMs);
    });
    let r: Awaited<ReturnType<HeartbeatTable['beat']>>;
    try {
      r = await Promise.race([this.opts.heartbeats.beat(epoch, now, this.opts.leaseMs, handled, { abortSignal: abort.signal }), timedOut]);
    } catch (err) {
      // Unconfirmed: the local deadline still stands, so the sockets are given up at it unless a
      // later heartbeat is confirmed first.
      this.opts.log.warn('heartbeat failed', { err });
      return;
    } finally {
      clearTimeout(timer);
    }
    if (this.epoch !== epoch) return; // expired meanwhile
    if (!r.ok) return this.expire(); // our row says expired: another agent may already claim
    this.opts.metrics.inc('heartbeats');
    this.arm(now);
    this.handledHints = this.handledHints.filter((id) => !handled.includes(id));
    for (const id of r.closeHints) {
      if (handled.includes(id)) continue;
      try {
        await this.hooks?.onCloseHint(id);
        this.handledHints.push(id);
      } catch (err) {
        this.opts.log.warn('close hint not handled; retried at the next heartbeat', { socketId: id, err });
      }
    }
  }
}

export class RenewTimeoutError extends Error {
  readonly code = 'renew_timeout';
  constructor(ms: number) {
    super(`heartbeat did not answer within ${ms} ms`);
    this.name = 'RenewTimeoutError';
  }
}
