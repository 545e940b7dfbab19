import type { Logger } from '../lib/log';
import { createLimiter } from '../lib/delivery/limiter';
import type { HeartbeatTable } from '../lib/upstream/heartbeats';
import type { LeaseTable } from '../lib/upstream/leases';
import { CLAIM_BATCH } from '../lib/upstream/leases';
import { Ticker } from './ticker';

/**
 * Every `reconcileMs`: claim sockets that are desired open and unowned (never claimed,
 * released), then take over the sockets of agents whose heartbeat expired (they died or were
 * cut off), as many as capacity allows. Claims go in batched transactions (up to CLAIM_BATCH
 * sockets each, CLAIM_BATCHES_IN_FLIGHT at once), a wave of CLAIM_WAVE sockets claimed before
 * any of its dials starts; capacity is checked before each batch and the
 * supervisor reserves a batch's room before claiming (claims in flight count as used), so
 * parallel claims never exceed it. This is what makes lost commands and dead instances
 * harmless: within one heartbeat lease plus one reconcile interval a live agent holds every
 * desired-open socket.
 *
 * An expired agent's heartbeat row leaves the index once none of its sockets is left and it
 * has been expired for RETIRE_AFTER_MS (the index is eventually consistent: a socket it missed
 * once is found on a later pass).
 */
export const RETIRE_AFTER_MS = 60_000;

/**
 * Sockets claimed before their dials start. A wave's dials (secret reads, handshakes, status
 * writes) would otherwise compete with its claims for the agent's CPU and DynamoDB's: measured
 * locally, 1,000 claims took 2.2 s overlapped with their dials and 0.8 s before them, and the
 * last socket connected sooner too (1.65 s against 2.48 s). Waves bound the wait before the
 * first dial of a large pass: the next wave is claimed while this one dials.
 */
export const CLAIM_WAVE = 10 * CLAIM_BATCH;

/**
 * Claim transactions in flight at once. DynamoDB Local measured here: one conditional update
 * at a time tops out near 650 claims/s whatever the concurrency; batched transactions reach
 * ~1,700/s with 2–4 in flight, and more adds only contention.
 */
export const CLAIM_BATCHES_IN_FLIGHT = 4;

export class ReconcileLoop {
  private readonly ticker: Ticker;

  constructor(
    private readonly opts: {
      readonly table: LeaseTable;
      readonly heartbeats: HeartbeatTable;
      readonly reconcileMs: number;
      readonly clock: () => number;
      /** Free capacity right now (claims in flight count as used). */
      readonly room: () => number;
      /** This agent's live epoch: its own sockets are not taken over from itself. */
      readonly epoch: () => number | undefined;
      /** This agent holds (or is claiming) the other slot of this redundant socket: it may not take this one. */
      readonly holdsTwin: (socketId: string) => boolean;
      /** How many unowned slots the last pass saw waiting for another agent (their twin is here). */
      readonly onWaiting: (slots: number) => void;
      /**
       * Claims many sockets (with `from`: taken over from that expired epoch); resolves when the
       * claims are answered, `opened` when their dials have started.
       */
      readonly claimMany: (socketIds: readonly string[], from?: number) => Promise<{ readonly dial: () => Promise<unknown> }>;
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
    if (this.opts.room() <= 0) return;
    const now = this.opts.clock();
    const mayTake = (id: string) => !this.opts.holdsTwin(id);
    const unowned = await this.opts.table.claimable(now, this.opts.room(), mayTake);
    this.opts.onWaiting(unowned.length - unowned.filter(mayTake).length);
    await this.claimAll(unowned.filter(mayTake));
    for (const dead of await this.opts.heartbeats.expired(now)) {
      if (dead.epoch === this.opts.epoch()) continue;
      const room = this.opts.room();
      if (room <= 0) return;
      const ids = await this.opts.table.ownedBy(dead.epoch, room, mayTake);
      if (!ids.length) {
        if (now - dead.expiredAt > RETIRE_AFTER_MS) await this.opts.heartbeats.retire(dead.epoch, now);
        continue;
      }
      // A redundant socket's slot whose twin is here: never both on one agent (one crash would
      // lose messages again), so it goes back to the unowned pool, pending, for a second agent,
      // rather than keep naming a dead owner. The socket is degraded meanwhile (GET says so).
      const twins = ids.filter((id) => !mayTake(id));
      if (twins.length) {
        const back = await this.opts.table.handBack(twins, dead.epoch, now);
        if (back.length) this.opts.log.warn('redundant sockets degraded: a slot of each waits for another agent', { epoch: dead.epoch, slots: back });
      }
      const take = ids.filter(mayTake);
      if (!take.length) continue;
      this.opts.log.info('taking over the sockets of an expired agent', { epoch: dead.epoch, sockets: take.length });
      await this.claimAll(take, dead.epoch);
    }
  }

  /**
   * Claims in waves of CLAIM_WAVE sockets, each in batches of CLAIM_BATCH, CLAIM_BATCHES_IN_FLIGHT
   * at once; room is checked per batch. A wave's dials start once all its claims are answered,
   * and overlap the next wave's claims; the pass ends when every dial has started.
   */
  private async claimAll(ids: readonly string[], from?: number): Promise<void> {
    const limit = createLimiter(CLAIM_BATCHES_IN_FLIGHT);
    const dialling: Promise<unknown>[] = [];
    for (let w = 0; w < ids.length; w += CLAIM_WAVE) {
      const wave = ids.slice(w, w + CLAIM_WAVE);
      const batches: string[][] = [];
      for (let i = 0; i < wave.length; i += CLAIM_BATCH) batches.push(wave.slice(i, i + CLAIM_BATCH));
      const claimed: (() => Promise<unknown>)[] = [];
      await Promise.all(
        batches.map((batch) =>
          limit(async () => {
            if (this.opts.room() <= 0) return;
            try {
              claimed.push((await this.opts.claimMany(batch, from)).dial);
            } catch (err) {
              this.opts.log.warn('reconcile could not claim a batch of sockets', { sockets: batch.length, first: batch[0], err });
            }
          }),
        ),
      );
      // Every claimed socket stays reserved until its dial starts: each wave is always dialled.
      dialling.push(...claimed.map((dial) => dial()));
    }
    await Promise.all(dialling);
  }
}
