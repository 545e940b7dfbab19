import type { Logger } from '../lib/log';
import type { Fence, LeaseTable } from '../lib/upstream/leases';
import type { UpstreamRow } from '../lib/upstream/row';
import type { Metrics } from './metrics';
import { Ticker } from './ticker';

/**
 * The ownership audit: every `auditMs` the agent reads which sockets the table still shows as its
 * own, and stops running those it should not. It is the backstop for the two ways a socket can
 * stop being this agent's without the agent writing anything:
 *
 * - a DELETE whose close command was lost (never delivered, or the agent was busy or restarting)
 *   on an IDLE socket: an active one finds out at its next counter write (`unwanted`), an idle
 *   one writes nothing, and ownership is renewed per agent, not per socket;
 * - a takeover (the socket names another owner or epoch).
 *
 * And the one way a socket can be this agent's in the table without running here: an orphan. A
 * claim transaction that committed but whose answer was lost (a timeout, a reset connection), or
 * a release that did not go through, leaves a row owned by this agent's live epoch that no other
 * agent may claim while the heartbeat lives, and that this agent does not know it holds. The
 * audit adopts it: a socket the index lists under this epoch, not run or being claimed here in
 * two passes in a row (so a claim or release still in flight is never mistaken for one), is read
 * consistently and dialled like a claim, or released to another agent when there is no room.
 *
 * It only reads. One Query of the byDesiredLease index for `desired = open AND leaseExpiresAt =
 * <my epoch>` (KEYS_ONLY: a deleted socket, no longer desired open, and a taken-over one, under
 * another epoch, both drop out of it), paged; then one consistent BatchGetItem per 100 for the
 * held sockets the answer lacks, because the index is eventually consistent and a socket claimed
 * a moment ago may not be in it yet. Only what that read confirms is acted on. Normally nothing is
 * missing, so a pass costs the Query alone (see docs/deploy.md for read units).
 */

/**
 * What the agent does with a held socket, from its row read consistently: the audit's judgement,
 * and the claims' when their rows are read back for the dials (LeaseManager.claimedRows).
 */
export type AuditVerdict = 'keep' | 'unwanted' | 'refused';

/**
 * `refused`: the row names another owner or epoch (taken over, or failed and unowned): cut at
 * once, another agent may hold it. `unwanted`: still ours but no longer desired open (or the row
 * is gone): nobody else may claim it, so it gets a clean close and is released as closed.
 */
export function auditVerdict(row: UpstreamRow | undefined, fence: Fence): AuditVerdict {
  if (row && (row.owner !== fence.owner || row.leaseExpiresAt !== fence.epoch)) return 'refused';
  if (!row || row.desired !== 'open') return 'unwanted';
  return 'keep';
}

export interface OwnershipAuditOptions {
  readonly table: LeaseTable;
  readonly auditMs: number;
  /** This agent's live fence; undefined between a heartbeat expiry and the next life (no pass then). */
  readonly fence: () => Fence | undefined;
  /** The sockets this agent runs (dialled; those still being claimed are not audited yet). */
  readonly held: () => readonly string[];
  /** Run or being claimed here (a socket of neither kind that the table says is ours is an orphan). */
  readonly busy: (socketId: string) => boolean;
  /** Stops running the socket (SocketSupervisor.onLost: `unwanted` closes 1000 and releases as closed). */
  readonly onLost: (socketId: string, why: Exclude<AuditVerdict, 'keep'>) => void;
  /** Runs orphans of `epoch` (SocketSupervisor.adopt); how many were dialled. */
  readonly adopt: (socketIds: readonly string[], epoch: number) => Promise<number>;
  readonly metrics: Metrics;
  readonly log: Logger;
}

export class OwnershipAudit {
  private readonly ticker: Ticker;
  /** Orphans seen in the last pass (and its epoch): adopted if the next pass finds them still unrun. */
  private suspects: { epoch: number; ids: Set<string> } = { epoch: -1, ids: new Set() };

  constructor(private readonly opts: OwnershipAuditOptions) {
    this.ticker = new Ticker('ownership audit', opts.auditMs, async () => void (await this.runOnce()), opts.log);
  }

  start(): void {
    this.ticker.start();
  }

  stop(): Promise<void> {
    return this.ticker.stop();
  }

  /** One pass; the ids it stopped. */
  async runOnce(): Promise<string[]> {
    const fence = this.opts.fence();
    if (!fence) return [];
    // Also with nothing held: an agent whose only socket is an orphan holds nothing (one empty
    // KEYS_ONLY Query per pass otherwise, half a read unit).
    const owned = await this.opts.table.ownedBy(fence.epoch, Infinity);
    const stopped = await this.audit(fence, new Set(owned));
    await this.adoptOrphans(fence, owned);
    this.opts.metrics.inc('audits'); // completed passes
    return stopped;
  }

  private async adoptOrphans(fence: Fence, owned: readonly string[]): Promise<void> {
    const unrun = owned.filter((id) => !this.opts.busy(id));
    const before = this.suspects.epoch === fence.epoch ? this.suspects.ids : new Set<string>();
    const orphans = unrun.filter((id) => before.has(id));
    this.suspects = { epoch: fence.epoch, ids: new Set(unrun.filter((id) => !before.has(id))) };
    if (!orphans.length) return;
    this.opts.log.warn('audit: sockets owned by this agent but not running here; adopting them', { sockets: orphans.length, epoch: fence.epoch });
    this.opts.metrics.inc('auditAdopted', orphans.length);
    await this.opts.adopt(orphans, fence.epoch);
  }

  private async audit(fence: Fence, indexed: ReadonlySet<string>): Promise<string[]> {
    const held = this.opts.held();
    const missing = held.filter((id) => !indexed.has(id));
    if (!missing.length) return [];
    const rows = new Map((await this.opts.table.readRows(missing)).map((r) => [r.socketId, r]));
    // A new life began meanwhile (the heartbeat lapsed): the old life's sockets are already dropped.
    if (this.opts.fence()?.epoch !== fence.epoch) return [];
    const stillHeld = new Set(this.opts.held()); // closed by a command meanwhile: nothing to do
    const stopped: string[] = [];
    for (const id of missing) {
      const row = rows.get(id);
      const verdict = auditVerdict(row, fence);
      if (verdict === 'keep' || !stillHeld.has(id)) continue;
      this.opts.log.info(verdict === 'unwanted' ? 'audit: socket no longer desired open; closing it' : 'audit: socket owned elsewhere; cutting it', {
        socketId: id,
        desired: row?.desired ?? null,
        owner: row?.owner ?? null,
      });
      this.opts.metrics.inc('auditClosed');
      this.opts.onLost(id, verdict);
      stopped.push(id);
    }
    return stopped;
  }
}
