import { InputError } from '../lib/errors';
import type { HeartbeatTable } from '../lib/upstream/heartbeats';
import type { Fence, LeaseTable } from '../lib/upstream/leases';
import { TX_MAX_ITEMS } from '../lib/upstream/transact';
import type { Logger } from '../lib/log';
import type { ItemStore } from '../lib/stores/items';
import { parseUpstreamUrl, toWebSocketUrl } from '../lib/upstream/endpoint';
import type { Credentials } from '../lib/upstream/headers';
import type { HealthRecords } from '../lib/upstream/health-records';
import type { UpstreamCounters, UpstreamRow } from '../lib/upstream/row';
import { createLimiter, type Limiter } from '../lib/delivery/limiter';
import { SecretCorruptError, SecretNotFoundError, type SecretStore } from '../lib/upstream/secret-store';
import type { SsrfGuard } from '../lib/upstream/ssrf';
import type { UpstreamStore } from '../lib/upstream/store';
import type { AgentOptions } from './config';
import { CounterLedger } from './counters';
import { decodeFrame } from './frames';
import { HealthChecker } from './health-check';
import type { LeaseHooks, LeaseManager, LostReason } from './lease-manager';
import type { Metrics } from './metrics';
import { Persister } from './persister';
import type { HttpSink } from './sink';
import { Ticker } from './ticker';
import { UpstreamConnection } from './upstream-connection';
import { DedupeKeys } from './dedupe';
import type { IdempotencyStore } from '../lib/stores/idempotency';
import { baseSocketId, siblingSlotId, slotRowId } from '../lib/upstream/socket-id';

/**
 * The sockets this agent holds: what happens when one is claimed (read the secret, dial,
 * persist and sink every message, health-check it on its own timer), closed on request, failed
 * by the health rule, or lost with its lease. Commands and reconcile both come through
 * `ensureOpen` / `ensureClosed`, which read the table and act on `desired`, never on the
 * command alone.
 */

export interface SupervisorContext {
  readonly options: AgentOptions;
  readonly leases: LeaseManager;
  /** The socket rows; the persister's writes are guarded by this agent's owner and epoch. */
  readonly leaseTable: LeaseTable;
  /** Where a close hint goes when the socket is another agent's. */
  readonly heartbeats: HeartbeatTable;
  readonly store: UpstreamStore;
  readonly records: HealthRecords;
  readonly secrets: SecretStore;
  readonly guard: SsrfGuard;
  readonly items: ItemStore;
  /** The largest event frame subscribers can be sent (config subscriber.maxMessageBytes). */
  readonly maxEventBytes: number;
  readonly sink?: HttpSink;
  /** Dedupe rows of redundant sockets' messages: by message id, and by content. */
  readonly dedupe: { readonly byId: IdempotencyStore; readonly byContent: IdempotencyStore };
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly clock: () => number;
}

interface Managed {
  readonly row: UpstreamRow;
  readonly conn: UpstreamConnection;
  readonly persister: Persister;
  readonly health: Ticker;
  readonly log: Logger;
}

/** `sibling`: this agent holds the socket's other slot (redundant homing needs two agents). */
export type OpenResult = 'held' | 'sibling' | 'opened' | 'capacity' | 'not-claimed' | 'failed' | 'stopping';

const DRAIN_MS = 2000;

/** Counter writes in flight at once during a flush. */
const COUNTER_FLUSH_CONCURRENCY = 16;

/**
 * Connection status writes (connected, disconnected) in flight at once. After a failover a
 * thousand handshakes complete within a second or two; unbounded, their writes would fill the
 * DynamoDB client's keep-alive pool and queue the claims still to be made (and the heartbeat)
 * behind them. Bounded, they wait in memory and the claims go first.
 */
const STATUS_WRITE_CONCURRENCY = 8;

/**
 * Message writes in flight across the agent. Each socket's persister writes one at a time, so
 * with a thousand busy sockets a thousand writes would wait in the DynamoDB client's keep-alive
 * pool (50 connections): queued there, they hit its 3 s connection timeout, and the heartbeat
 * behind them missed its deadline and cost every socket (measured in the agent benchmark). Here
 * they wait in memory and the pool keeps room for heartbeats, claims and status writes. At
 * ~10–20 ms per TransactWriteItems in AWS, 24 in flight carry ~1,200–2,400 messages/s, about
 * what one core's SDK work allows (docs/performance.md).
 */
const PERSIST_CONCURRENCY = 24;

/**
 * How long a completed handshake waits for others before its status write goes out: the writes
 * of a burst (a failover, an agent start) go together, up to 100 per transaction, instead of
 * one UpdateItem each. Short enough that GET says `open` at once for a single socket.
 */
const CONNECTED_BATCH_MS = 50;

/**
 * The `ws` client's maxPayload (its default is 100 MiB): twice the deliverable event size. A
 * frame can shrink when it is stored (JSON is re-serialised without its whitespace), so frames
 * somewhat over the limit are still read and measured by the persister, which drops what is not
 * deliverable without losing the connection; anything bigger cannot be delivered, and ws closes
 * the connection (1009) rather than buffering it.
 */
export function maxPayloadFor(maxEventBytes: number): number {
  return 2 * maxEventBytes;
}

export class SocketSupervisor implements LeaseHooks {
  private readonly sockets = new Map<string, Managed>();
  private readonly opening = new Set<string>();
  /** Close commands that arrived while the socket was being claimed or dialled here (see closeSlot). */
  private readonly closeOnStart = new Set<string>();
  private readonly counters: CounterLedger;
  private readonly counterFlush: Ticker;
  /** Secret reads and dial starts of claimed sockets, across every batch at once. */
  private readonly dialLimit: Limiter;
  /** Message writes in flight across every socket (see PERSIST_CONCURRENCY). */
  private readonly persistLimit = createLimiter(PERSIST_CONCURRENCY);
  /** Status writes in flight (see STATUS_WRITE_CONCURRENCY). */
  private readonly recordLimit = createLimiter(STATUS_WRITE_CONCURRENCY);
  /** Each socket's latest status write, settled or not (see inOrder). */
  private readonly lastStatusWrite = new Map<string, Promise<void>>();
  /** Handshakes completed and not yet recorded (see recordConnected). */
  private readonly connectedWaiting = new Map<string, { managed: Managed; fence: Fence }>();
  private connectedTimer?: NodeJS.Timeout;
  /** Claim transactions in flight (status writes wait for them, see recordConnected). */
  private claimsInFlight = 0;
  private readonly checker: HealthChecker;
  private stopping = false;

  constructor(private readonly ctx: SupervisorContext) {
    this.counters = new CounterLedger(ctx.metrics);
    this.dialLimit = createLimiter(ctx.options.claimConcurrency);
    this.checker = new HealthChecker({
      records: ctx.records,
      fence: () => ctx.leases.fence(),
      pingTimeoutMs: ctx.options.pingTimeoutMs,
      clock: ctx.clock,
      metrics: ctx.metrics,
      log: ctx.log,
    });
    this.counterFlush = new Ticker('counter flush', ctx.options.counterFlushMs, () => this.flushCounters(), ctx.log);
  }

  /** Starts the periodic counter writes (at most one per active socket per counterFlushMs). */
  startFlushing(): void {
    this.counterFlush.start();
  }

  get held(): string[] {
    return [...this.sockets.keys()];
  }

  room(): number {
    return this.ctx.options.capacity - this.sockets.size - this.opening.size;
  }

  /** LeaseHooks: the deltas ride on a release or fail. */
  takeDeltas(socketId: string): Partial<UpstreamCounters> {
    return this.counters.take(socketId);
  }

  /**
   * Writes every active socket's counter deltas, fenced by owner and epoch. A write that is
   * not confirmed (timeout, network) gives its deltas back, so a count can be added twice but is
   * never lost (an ADD is not idempotent, and DynamoDB cannot say afterwards whether it landed).
   * A refusal means the socket is not ours (or no longer wanted): it is dropped like any loss.
   */
  async flushCounters(): Promise<void> {
    const limit = createLimiter(COUNTER_FLUSH_CONCURRENCY);
    await Promise.all(
      this.counters.active().map((id) =>
        limit(async () => {
          if (!this.ctx.leases.has(id)) {
            this.counters.take(id); // not ours any more: nothing may write them under our fence
            return;
          }
          const deltas = this.counters.take(id);
          let outcome;
          try {
            outcome = await this.ctx.leases.addCounters(id, deltas);
            this.ctx.metrics.inc('counterWrites');
          } catch (err) {
            this.counters.restore(id, deltas);
            this.ctx.log.warn('counter write failed; retried at the next flush', { socketId: id, err });
            return;
          }
          if (outcome === 'ok') return;
          this.counters.restore(id, deltas); // the release that follows carries them
          this.onLost(id, outcome);
        }),
      ),
    );
  }

  private gauge(): void {
    this.ctx.metrics.set('openSockets', this.sockets.size);
  }

  /**
   * Claims and dials the socket if the table says it should be open and nobody holds it (with
   * `from`: taking it over from that expired agent epoch).
   */
  async ensureOpen(socketId: string, from?: number): Promise<OpenResult> {
    if (this.stopping) return 'stopping';
    if (this.isHere(socketId)) return 'held';
    if (this.isHere(siblingSlotId(socketId))) return 'sibling';
    if (this.room() <= 0) {
      // Not an error: the row stays unowned in the byDesiredLease index, so an agent with room
      // claims it at its next reconcile.
      this.ctx.log.info('at capacity; leaving the socket to another agent', { socketId, capacity: this.ctx.options.capacity });
      return 'capacity';
    }
    this.opening.add(socketId);
    try {
      const row = await this.ctx.leases.claim(socketId, from);
      if (!row) return 'not-claimed';
      return await this.openClaimed(row);
    } finally {
      this.settle(socketId);
    }
  }

  /**
   * `ensureOpen` for many sockets at once (reconcile, failover): as many as there is room for are
   * reserved (counted as used, so parallel batches never exceed capacity) and claimed in batched
   * transactions. Resolves once the claims are answered, WITHOUT dialling: the caller starts the
   * dials with `dial()` when it chooses (the reconcile loop first claims a whole wave, so the
   * dials' secret reads, handshakes and status writes do not slow the claims down). A claimed
   * socket stays reserved until its dial has started. `dial()` settles when every claimed
   * socket's secret has been read and its dial started (at most `claimConcurrency` at a time
   * across all batches; no socket waits for another's upstream handshake), with how many were
   * opened; calling it again returns the same promise.
   */
  async claimMany(socketIds: readonly string[], from?: number): Promise<{ claimed: number; dial: () => Promise<number> }> {
    const none = { claimed: 0, dial: () => Promise.resolve(0) };
    if (this.stopping) return none;
    // Never both slots of a redundant socket: only this process writes this agentId as owner,
    // so its own bookkeeping (held or being claimed, one event loop) is enough to keep them apart.
    const want = this.claimableHere(socketIds).slice(0, Math.max(0, this.room()));
    if (!want.length) return none;
    for (const id of want) this.opening.add(id);
    let ids: string[];
    this.claimsInFlight++;
    try {
      ids = await this.ctx.leases.claimMany(want, from);
    } catch (err) {
      // Some may have been claimed all the same (the answer was lost): the audit adopts those.
      want.forEach((id) => this.settle(id));
      throw err;
    } finally {
      this.claimsInFlight--;
    }
    // What was not claimed frees its room now; a claimed socket stays reserved until it is dialled.
    const claimed = new Set(ids);
    want.filter((id) => !claimed.has(id)).forEach((id) => this.settle(id));
    let opened: Promise<number> | undefined;
    return { claimed: ids.length, dial: () => (opened ??= this.dialClaimed(ids)) };
  }

  /**
   * Orphans of this agent's live `epoch` (found by the ownership audit: owned here in the table,
   * run nowhere): dialled like fresh claims as far as there is room; the rest, and a slot whose
   * twin is here, released (pending) so another agent claims them.
   */
  async adopt(socketIds: readonly string[], epoch: number): Promise<number> {
    if (this.stopping) return 0;
    const orphans = socketIds.filter((id) => !this.isHere(id));
    if (!this.ctx.leases.adopt(orphans, epoch)) return 0; // a new life began: the old epoch's sockets are claimable anyway
    const want = this.claimableHere(orphans).slice(0, Math.max(0, this.room()));
    for (const id of want) this.opening.add(id);
    const wanted = new Set(want);
    const surplus = orphans.filter((id) => !wanted.has(id));
    await Promise.all(surplus.map((id) => this.ctx.leases.release(id, 'pending').catch((err) => this.ctx.log.warn('could not release an orphan', { socketId: id, err }))));
    return this.dialClaimed(want);
  }

  /** A claimed socket's reservation ends (dialled, released or lost). */
  private settle(id: string): void {
    this.opening.delete(id);
    this.closeOnStart.delete(id);
  }

  /**
   * Dials sockets this life holds in the table and has reserved in `opening`: their rows read
   * back consistently first (a DELETE or a takeover may have come in between). Settles when every
   * one is dialled, released or forgotten, with how many were opened.
   */
  private async dialClaimed(ids: readonly string[]): Promise<number> {
    let read: Awaited<ReturnType<LeaseManager['claimedRows']>>;
    try {
      read = await this.ctx.leases.claimedRows(ids);
    } catch (err) {
      // Claimed but unreadable: handed back (pending) for a later pass, never held undialled.
      this.ctx.log.warn('could not read claimed sockets; released for a later pass', { sockets: ids.length, err });
      await Promise.all(ids.map((id) => this.ctx.leases.release(id, 'pending').catch(() => undefined)));
      ids.forEach((id) => this.settle(id));
      return 0;
    }
    // Closed since the claim (a DELETE in between): released as closed; taken or gone: forgotten.
    await Promise.all(read.unwanted.map((id) => this.ctx.leases.release(id, 'closed').catch(() => undefined)));
    [...read.unwanted, ...read.lost].forEach((id) => this.settle(id));
    const results = await Promise.all(
      read.ours.map((row) =>
        this.dialLimit(async () => {
          try {
            return await this.openClaimed(row);
          } catch (err) {
            this.ctx.log.warn('could not open a claimed socket; released for a later pass', { socketId: row.socketId, err });
            return 'failed' as const;
          } finally {
            this.settle(row.socketId);
          }
        }),
      ),
    );
    return results.filter((r) => r === 'opened').length;
  }

  /**
   * The ids this agent may claim: not held or being claimed here, and not the other slot of a
   * redundant socket held or being claimed here (one of each pair per call). The others — a
   * slot whose twin is here — wait for another agent (see docs/upstream-connectors.md).
   */
  claimableHere(socketIds: readonly string[]): string[] {
    const bases = new Set<string>();
    return socketIds.filter((id) => {
      const base = baseSocketId(id);
      if (this.isHere(id) || this.isHere(siblingSlotId(id)) || bases.has(base)) return false;
      bases.add(base);
      return true;
    });
  }

  /** This agent holds, or is claiming, the other slot of the redundant socket `id` (never both). */
  holdsTwin(id: string): boolean {
    return this.isHere(siblingSlotId(id));
  }

  /** Held, or being claimed or dialled, here. */
  isHere(id: string): boolean {
    return this.sockets.has(id) || this.opening.has(id);
  }

  /** A socket just claimed (and still counted in `opening`): read its secret and dial it. */
  private async openClaimed(row: UpstreamRow): Promise<OpenResult> {
    const socketId = row.socketId;
    if (this.stopping) {
      await this.ctx.leases.release(socketId, 'pending');
      return 'stopping';
    }
    let url: URL;
    let creds: Credentials;
    try {
      url = toWebSocketUrl(parseUpstreamUrl(row.interWorkingInterface));
      creds = await this.ctx.secrets.get(row.secretRef);
    } catch (err) {
      if (err instanceof SecretNotFoundError || err instanceof SecretCorruptError || err instanceof InputError) {
        // Will never work as stored: record it as failed instead of retrying forever.
        this.ctx.metrics.inc('socketsFailed');
        await this.ctx.leases.fail(socketId, `cannot open: ${(err as Error).message}`);
        return 'failed';
      }
      await this.ctx.leases.release(socketId, 'pending');
      throw err;
    }
    if (this.closeOnStart.delete(socketId)) {
      await this.ctx.leases.release(socketId, 'closed');
      return 'not-claimed';
    }
    this.start(row, url, creds);
    return 'opened';
  }

  private start(row: UpstreamRow, url: URL, creds: Credentials): void {
    const id = row.socketId;
    const log = this.ctx.log.child({ socketId: id, topic: row.topic });
    const opts = this.ctx.options;
    const fence = this.ctx.leases.fence();
    if (!fence) throw new Error('no live heartbeat: a claim cannot have succeeded'); // claim() returns undefined then
    const dedupe =
      row.redundancy === 2
        ? new DedupeKeys({ socketId: baseSocketId(id), topic: row.topic, path: row.dedupePath, ...this.ctx.dedupe, clock: this.ctx.clock })
        : undefined;
    const persister = new Persister({
      items: this.ctx.items,
      topic: row.topic,
      guard: this.ctx.leaseTable.ownerGuard(id, fence),
      maxEventBytes: this.ctx.maxEventBytes,
      queueSize: opts.persistQueueSize,
      retries: opts.persistRetries,
      backoffBaseMs: Math.min(opts.backoffBaseMs, 200),
      onPersisted: () => this.counters.count(id, 'messagesPersisted'),
      onDuplicate: () => this.ctx.metrics.inc('messagesDeduped'),
      onDropped: (reason) => {
        this.counters.count(id, 'messagesDropped');
        // The reason names sizes, never the message's content.
        log.warn('message dropped', { reason });
      },
      onError: (err) => {
        this.counters.count(id, 'errors', 'persistErrors');
        log.warn('persist failed', { err });
      },
      limit: this.persistLimit,
      log,
    });
    const conn = new UpstreamConnection({
      url,
      credentials: creds,
      guard: this.ctx.guard,
      backoffBaseMs: opts.backoffBaseMs,
      backoffMaxMs: opts.backoffMaxMs,
      handshakeTimeoutMs: opts.handshakeTimeoutMs,
      maxPayload: maxPayloadFor(this.ctx.maxEventBytes),
      log,
      handlers: {
        onOpen: () => {
          log.info('upstream connected');
          this.recordConnected(id, managed, fence);
        },
        onMessage: (data, isBinary) => {
          const receivedAt = this.ctx.clock();
          this.counters.count(id, 'messagesIn');
          const frame = decodeFrame(data, isBinary, receivedAt);
          persister.enqueue(frame, dedupe?.claimFor(frame));
          this.ctx.sink?.enqueue({
            socketId: id,
            platformID: row.platformID,
            internalID: row.internalID,
            topic: row.topic,
            ts: frame.ts,
            receivedAt,
            data: frame.data,
          });
        },
        onTooLarge: () => {
          // ws refused the frame (close 1009) before reading it; the connection is redialled.
          this.counters.count(id, 'messagesIn');
          this.counters.count(id, 'messagesDropped');
          log.warn('message dropped', { reason: `too large: over the ${maxPayloadFor(this.ctx.maxEventBytes)}-byte frame limit` });
        },
        onDown: (reason, retryInMs) => {
          this.connectedWaiting.delete(id); // superseded: the row must end up saying reconnecting
          this.counters.count(id, 'reconnects');
          log.warn('upstream down; redialling', { reason, retryInMs });
          void this.record(id, managed, (now) => this.ctx.records.disconnected(id, fence, now, reason));
        },
      },
    });
    const health = new Ticker('health check', opts.healthIntervalMs, () => this.checkHealth(id, managed), log);
    const managed: Managed = { row, conn, persister, health, log };
    this.sockets.set(id, managed);
    this.gauge();
    log.info('upstream claimed', { url: url.origin + url.pathname });
    conn.start();
    health.start();
  }

  /**
   * Records a completed handshake together with the others completed within CONNECTED_BATCH_MS
   * (transactions of up to 100). While claims are in flight the writes wait: the claims move
   * ownership and gate the dials still to come, the status is for GET, and both compete for the
   * same table (and, locally, for DynamoDB Local's one process).
   */
  private recordConnected(id: string, managed: Managed, fence: Fence): void {
    this.connectedWaiting.set(id, { managed, fence });
    this.connectedTimer ??= setTimeout(() => void this.flushConnected(), CONNECTED_BATCH_MS);
  }

  private async flushConnected(): Promise<void> {
    this.connectedTimer = undefined;
    if (this.claimsInFlight > 0 && !this.stopping) {
      this.connectedTimer = setTimeout(() => void this.flushConnected(), CONNECTED_BATCH_MS);
      return;
    }
    const batch = [...this.connectedWaiting].filter(([id, w]) => this.sockets.get(id) === w.managed);
    this.connectedWaiting.clear();
    const chunks: (typeof batch)[] = [];
    for (let i = 0; i < batch.length; i += TX_MAX_ITEMS) chunks.push(batch.slice(i, i + TX_MAX_ITEMS));
    await Promise.all(
      chunks.map(async (chunk) => {
        try {
          const { refused } = await this.inOrder(
            chunk.map(([id]) => id),
            () => this.recordLimit(() => this.ctx.records.connectedMany(chunk.map(([socketId, w]) => ({ socketId, fence: w.fence })), this.ctx.clock())),
          );
          const managedOf = new Map(chunk.map(([id, w]) => [id, w.managed]));
          for (const id of refused) if (this.sockets.get(id) === managedOf.get(id)) this.onLost(id, 'refused');
        } catch (err) {
          this.ctx.log.warn('status write failed', { sockets: chunk.length, first: chunk[0][0], err });
        }
      }),
    );
  }

  /**
   * Runs a status write of these sockets after every earlier one of theirs has been answered, so
   * a socket's writes land in the order they were made. In parallel, a drop's "reconnecting" that
   * is slow (throttled, retried) would land after the reconnection's "open" and leave the row
   * saying reconnecting while the socket is up, until its next health check.
   */
  private inOrder<T>(socketIds: readonly string[], write: () => Promise<T>): Promise<T> {
    const before = socketIds.map((id) => this.lastStatusWrite.get(id)).filter((p): p is Promise<void> => p !== undefined);
    const result = Promise.all(before).then(write);
    const settled = result.then(
      () => undefined,
      () => undefined,
    );
    for (const id of socketIds) this.lastStatusWrite.set(id, settled);
    void settled.then(() => {
      for (const id of socketIds) if (this.lastStatusWrite.get(id) === settled) this.lastStatusWrite.delete(id);
    });
    return result;
  }

  /** A conditional status write; a refused one means the lease is gone. */
  private async record(id: string, managed: Managed, write: (now: number) => Promise<{ ok: boolean }>): Promise<void> {
    try {
      const r = await this.inOrder([id], () => this.recordLimit(() => write(this.ctx.clock())));
      if (!r.ok && this.sockets.get(id) === managed) this.onLost(id, 'refused');
    } catch (err) {
      managed.log.warn('status write failed', { err });
    }
  }

  private async checkHealth(id: string, managed: Managed): Promise<void> {
    if (this.sockets.get(id) !== managed) return;
    const r = this.ctx.leases.has(id) ? await this.checker.check(id, managed.conn) : { outcome: 'lost' as const };
    if (this.sockets.get(id) !== managed) return;
    switch (r.outcome) {
      case 'healthy':
        return;
      case 'reconnect':
        managed.conn.reconnect();
        return;
      case 'lost':
        this.onLost(id, 'refused');
        return;
      case 'fail': {
        managed.log.error('upstream failed the health check too often; closing it', { countErr: r.countErr, reason: r.reason });
        this.ctx.metrics.inc('socketsFailed');
        await this.retire(id, managed, 1011, 'health check failed');
        await this.ctx.leases.fail(id, `countErr ${r.countErr}: ${r.reason}`);
        return;
      }
    }
  }

  /**
   * Removes a socket from this agent: close (or terminate) the connection, then drain its
   * waiting writes — or, with `queue: 'discard'`, drop them (counted in messagesDropped).
   */
  private async retire(id: string, managed: Managed, code: number | 'terminate', reason: string, queue: 'drain' | 'discard' = 'drain'): Promise<void> {
    if (this.sockets.get(id) === managed) this.sockets.delete(id);
    this.gauge();
    void managed.health.stop();
    if (code === 'terminate') managed.conn.terminate();
    else await managed.conn.close(code, reason);
    if (queue === 'discard') await managed.persister.discard('lease lost to another owner');
    else await managed.persister.drain(DRAIN_MS);
  }

  /**
   * Applies desired=closed: closes the socket if held here, and marks an unowned row closed.
   * Commands name a redundant socket by its first slot; its second slot row is handled with it.
   */
  async ensureClosed(socketId: string): Promise<void> {
    const row = await this.closeSlot(socketId);
    if (row?.redundancy === 2 && !socketId.endsWith('#2')) await this.closeSlot(slotRowId(socketId));
  }

  /** `ensureClosed` for one slot row; the row as read. */
  private async closeSlot(socketId: string): Promise<UpstreamRow | undefined> {
    const row = await this.ctx.store.get(socketId);
    if (!row || row.desired === 'open') return row; // unknown, or re-opened since: a stale hint
    const managed = this.sockets.get(socketId);
    if (managed) {
      managed.log.info('closing upstream on request');
      await this.retire(socketId, managed, 1000, 'closed by request');
      await this.ctx.leases.release(socketId, 'closed');
      return row;
    }
    if (!row.owner) {
      if (row.status !== 'closed') await this.ctx.store.requestClose(socketId, this.ctx.clock());
      return row;
    }
    if (this.opening.has(socketId)) {
      // Claimed here and not dialled yet (its secret is being read, or it waits for a dial
      // slot): it is closed and released as soon as its claim is through, instead of opening.
      this.closeOnStart.add(socketId);
      return row;
    }
    // Another agent's socket (the command queue is shared): hand the command to its owner
    // through its heartbeat row, which it reads back with its next heartbeat.
    const epoch = row.leaseExpiresAt ?? 0;
    if (row.owner !== this.ctx.options.agentId || epoch !== this.ctx.leases.fence()?.epoch) await this.ctx.heartbeats.hint(epoch, socketId);
    return row;
  }

  /** LeaseHooks: a close command another agent received for a socket held here. */
  onCloseHint(socketId: string): Promise<void> {
    return this.ensureClosed(socketId);
  }

  /**
   * LeaseHooks: the lease is gone or unprovable; stop using the socket.
   *
   * - `unwanted` (a counter write found the row still ours but desired closed: a DELETE whose
   *   close command and hint were lost): no other agent may claim a row desired closed, so the
   *   upstream gets a clean close (1000) and the row is released as closed.
   * - otherwise the connection is cut at once, without a closing handshake: another agent may
   *   already hold the socket. Only then is a refusal looked into (one consistent read, which
   *   could hang on the same DynamoDB trouble, so nothing waits for it): a row that is somehow
   *   still ours is handed back.
   * - `refused` also drops the messages still waiting to be persisted (counted in
   *   messagesDropped) instead of draining them: see below. `expired` drains for up to DRAIN_MS.
   */
  onLost(socketId: string, why: LostReason): void {
    const managed = this.sockets.get(socketId);
    this.ctx.leases.forget(socketId);
    if (!managed) return;
    if (why === 'unwanted') {
      managed.log.info('closing upstream: no longer desired open');
      void (async () => {
        await this.retire(socketId, managed, 1000, 'closed by request');
        await this.releaseIfOurs(socketId, managed, 'closed');
      })();
      return;
    }
    // retire() terminates synchronously, then settles the persister in the background.
    if (why === 'refused') {
      // Another agent holds the socket now (or will at once) and writes the topic's newer
      // messages: ours, written after them, would put older data back on the item. So the
      // waiting ones are dropped, not drained; only the write already in flight can land.
      void this.retire(socketId, managed, 'terminate', 'lease lost', 'discard');
      void this.releaseIfOurs(socketId, managed);
      return;
    }
    void this.retire(socketId, managed, 'terminate', 'lease expired');
  }

  /** Releases a row this agent still owns but no longer serves; `status` defaults from `desired`. */
  private async releaseIfOurs(socketId: string, managed: Managed, status?: 'closed'): Promise<void> {
    let row: UpstreamRow | undefined;
    try {
      row = await this.ctx.store.get(socketId);
    } catch (err) {
      managed.log.warn('could not read the row after losing its lease', { err });
      return;
    }
    // Not ours any more, or claimed again by this agent meanwhile: nothing to hand back.
    const fence = this.ctx.leases.fence();
    if (!fence || row?.owner !== fence.owner || row.leaseExpiresAt !== fence.epoch || this.sockets.has(socketId) || this.opening.has(socketId)) return;
    try {
      await this.ctx.leases.release(socketId, status ?? (row.desired === 'closed' ? 'closed' : 'pending'));
    } catch (err) {
      managed.log.warn('release after losing the lease failed', { err });
    }
  }

  /** Agent shutdown: close every socket with 1001 (going away) and hand the leases back. */
  async stopAll(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.connectedTimer);
    this.connectedWaiting.clear();
    await this.counterFlush.stop();
    await Promise.all(
      [...this.sockets.entries()].map(async ([id, managed]) => {
        await this.retire(id, managed, 1001, 'agent stopping');
        try {
          await this.ctx.leases.release(id, 'pending');
        } catch (err) {
          managed.log.warn('lease release failed; it will expire', { err });
        }
      }),
    );
  }
}
