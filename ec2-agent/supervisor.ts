import { InputError } from '../lib/errors';
import type { LeaseTable } from '../lib/upstream/leases';
import type { Logger } from '../lib/log';
import type { ItemStore } from '../lib/stores/items';
import { parseUpstreamUrl, toWebSocketUrl } from '../lib/upstream/endpoint';
import type { Credentials } from '../lib/upstream/headers';
import type { HealthRecords } from '../lib/upstream/health-records';
import type { UpstreamCounters, UpstreamRow } from '../lib/upstream/row';
import { SecretCorruptError, SecretNotFoundError, type SecretStore } from '../lib/upstream/secret-store';
import type { SsrfGuard } from '../lib/upstream/ssrf';
import type { UpstreamStore } from '../lib/upstream/store';
import type { AgentOptions } from './config';
import { decodeFrame } from './frames';
import { HealthChecker } from './health-check';
import type { LeaseHooks, LeaseManager, LostReason } from './lease-manager';
import type { Metrics } from './metrics';
import { Persister } from './persister';
import type { HttpSink } from './sink';
import { Ticker } from './ticker';
import { UpstreamConnection } from './upstream-connection';

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
  /** The lease rows; the persister's writes are guarded by this agent still owning the row. */
  readonly leaseTable: LeaseTable;
  readonly store: UpstreamStore;
  readonly records: HealthRecords;
  readonly secrets: SecretStore;
  readonly guard: SsrfGuard;
  readonly items: ItemStore;
  /** The largest event frame subscribers can be sent (config subscriber.maxMessageBytes). */
  readonly maxEventBytes: number;
  readonly sink?: HttpSink;
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

export type OpenResult = 'held' | 'opened' | 'capacity' | 'not-claimed' | 'failed' | 'stopping';

const DRAIN_MS = 2000;

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
  private readonly deltas = new Map<string, Partial<UpstreamCounters>>();
  private readonly checker: HealthChecker;
  private stopping = false;

  constructor(private readonly c: SupervisorContext) {
    this.checker = new HealthChecker({
      records: c.records,
      agentId: c.options.agentId,
      pingTimeoutMs: c.options.pingTimeoutMs,
      clock: c.clock,
      metrics: c.metrics,
      log: c.log,
    });
  }

  get held(): string[] {
    return [...this.sockets.keys()];
  }

  room(): number {
    return this.c.options.capacity - this.sockets.size - this.opening.size;
  }

  private bump(socketId: string, name: keyof UpstreamCounters): void {
    const d = this.deltas.get(socketId) ?? {};
    d[name] = (d[name] ?? 0) + 1;
    this.deltas.set(socketId, d);
  }

  takeDeltas(socketId: string): Partial<UpstreamCounters> {
    const d = this.deltas.get(socketId) ?? {};
    this.deltas.delete(socketId);
    return d;
  }

  restoreDeltas(socketId: string, d: Partial<UpstreamCounters>): void {
    const cur = this.deltas.get(socketId) ?? {};
    for (const [k, v] of Object.entries(d) as [keyof UpstreamCounters, number][]) cur[k] = (cur[k] ?? 0) + v;
    this.deltas.set(socketId, cur);
  }

  private gauge(): void {
    this.c.metrics.set('openSockets', this.sockets.size);
  }

  /** Claims and dials the socket if the table says it should be open and nobody holds it. */
  async ensureOpen(socketId: string): Promise<OpenResult> {
    if (this.stopping) return 'stopping';
    if (this.sockets.has(socketId) || this.opening.has(socketId)) return 'held';
    if (this.room() <= 0) {
      // Not an error: the row stays unowned in the byDesiredLease index, so an agent with room
      // claims it at its next reconcile.
      this.c.log.info('at capacity; leaving the socket to another agent', { socketId, capacity: this.c.options.capacity });
      return 'capacity';
    }
    this.opening.add(socketId);
    try {
      const row = await this.c.leases.claim(socketId);
      if (!row) return 'not-claimed';
      if (this.stopping) {
        await this.c.leases.release(socketId, 'pending');
        return 'stopping';
      }
      let url: URL;
      let creds: Credentials;
      try {
        url = toWebSocketUrl(parseUpstreamUrl(row.interWorkingInterface));
        creds = await this.c.secrets.get(row.secretRef);
      } catch (err) {
        if (err instanceof SecretNotFoundError || err instanceof SecretCorruptError || err instanceof InputError) {
          // Will never work as stored: record it as failed instead of retrying forever.
          this.c.metrics.inc('socketsFailed');
          await this.c.leases.fail(socketId, `cannot open: ${(err as Error).message}`);
          return 'failed';
        }
        await this.c.leases.release(socketId, 'pending');
        throw err;
      }
      this.start(row, url, creds);
      return 'opened';
    } finally {
      this.opening.delete(socketId);
    }
  }

  private start(row: UpstreamRow, url: URL, creds: Credentials): void {
    const id = row.socketId;
    const log = this.c.log.child({ socketId: id, topic: row.topic });
    const o = this.c.options;
    const persister = new Persister({
      items: this.c.items,
      topic: row.topic,
      guard: this.c.leaseTable.ownerGuard(id, o.agentId),
      maxEventBytes: this.c.maxEventBytes,
      queueSize: o.persistQueueSize,
      retries: o.persistRetries,
      backoffBaseMs: Math.min(o.backoffBaseMs, 200),
      onPersisted: () => {
        this.bump(id, 'messagesPersisted');
        this.c.metrics.inc('messagesPersisted');
      },
      onDropped: (reason) => {
        this.bump(id, 'messagesDropped');
        this.c.metrics.inc('messagesDropped');
        // The reason names sizes, never the message's content.
        log.warn('message dropped', { reason });
      },
      onError: (err) => {
        this.bump(id, 'errors');
        this.c.metrics.inc('persistErrors');
        this.c.metrics.inc('errors');
        log.warn('persist failed', { err });
      },
      log,
    });
    const conn = new UpstreamConnection({
      url,
      credentials: creds,
      guard: this.c.guard,
      backoffBaseMs: o.backoffBaseMs,
      backoffMaxMs: o.backoffMaxMs,
      handshakeTimeoutMs: o.handshakeTimeoutMs,
      maxPayload: maxPayloadFor(this.c.maxEventBytes),
      log,
      handlers: {
        onOpen: () => {
          log.info('upstream connected');
          void this.record(id, m, (now) => this.c.records.connected(id, o.agentId, now));
        },
        onMessage: (data, isBinary) => {
          const receivedAt = this.c.clock();
          this.bump(id, 'messagesIn');
          this.c.metrics.inc('messagesIn');
          const frame = decodeFrame(data, isBinary, receivedAt);
          persister.enqueue(frame);
          this.c.sink?.enqueue({
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
          this.bump(id, 'messagesIn');
          this.c.metrics.inc('messagesIn');
          this.bump(id, 'messagesDropped');
          this.c.metrics.inc('messagesDropped');
          log.warn('message dropped', { reason: `too large: over the ${maxPayloadFor(this.c.maxEventBytes)}-byte frame limit` });
        },
        onDown: (reason, retryInMs) => {
          this.bump(id, 'reconnects');
          this.c.metrics.inc('reconnects');
          log.warn('upstream down; redialling', { reason, retryInMs });
          void this.record(id, m, (now) => this.c.records.disconnected(id, o.agentId, now, reason));
        },
      },
    });
    const health = new Ticker('health check', o.healthIntervalMs, () => this.checkHealth(id, m), log);
    const m: Managed = { row, conn, persister, health, log };
    this.sockets.set(id, m);
    this.gauge();
    log.info('upstream claimed', { url: url.origin + url.pathname });
    conn.start();
    health.start();
  }

  /** A conditional status write; a refused one means the lease is gone. */
  private async record(id: string, m: Managed, write: (now: number) => Promise<{ ok: boolean }>): Promise<void> {
    try {
      const r = await write(this.c.clock());
      if (!r.ok && this.sockets.get(id) === m) this.onLost(id, 'refused');
    } catch (err) {
      m.log.warn('status write failed', { err });
    }
  }

  private async checkHealth(id: string, m: Managed): Promise<void> {
    if (this.sockets.get(id) !== m) return;
    const r = this.c.leases.has(id) ? await this.checker.check(id, m.conn) : { outcome: 'lost' as const };
    if (this.sockets.get(id) !== m) return;
    switch (r.outcome) {
      case 'healthy':
        return;
      case 'reconnect':
        m.conn.reconnect();
        return;
      case 'lost':
        this.onLost(id, 'refused');
        return;
      case 'fail': {
        m.log.error('upstream failed the health check too often; closing it', { countErr: r.countErr, reason: r.reason });
        this.c.metrics.inc('socketsFailed');
        await this.retire(id, m, 1011, 'health check failed');
        await this.c.leases.fail(id, `countErr ${r.countErr}: ${r.reason}`);
        return;
      }
    }
  }

  /**
   * Removes a socket from this agent: close (or terminate) the connection, then drain its
   * waiting writes — or, with `queue: 'discard'`, drop them (counted in messagesDropped).
   */
  private async retire(id: string, m: Managed, code: number | 'terminate', reason: string, queue: 'drain' | 'discard' = 'drain'): Promise<void> {
    if (this.sockets.get(id) === m) this.sockets.delete(id);
    this.gauge();
    void m.health.stop();
    if (code === 'terminate') m.conn.terminate();
    else await m.conn.close(code, reason);
    if (queue === 'discard') await m.persister.discard('lease lost to another owner');
    else await m.persister.drain(DRAIN_MS);
  }

  /** Applies desired=closed: closes the socket if held here, and marks an unowned row closed. */
  async ensureClosed(socketId: string): Promise<void> {
    const row = await this.c.store.get(socketId);
    if (!row || row.desired === 'open') return; // unknown, or re-opened since: a stale hint
    const m = this.sockets.get(socketId);
    if (m) {
      m.log.info('closing upstream on request');
      await this.retire(socketId, m, 1000, 'closed by request');
      await this.c.leases.release(socketId, 'closed');
      return;
    }
    if (!row.owner && row.status !== 'closed') await this.c.store.requestClose(socketId, this.c.clock());
  }

  /**
   * LeaseHooks: the lease is gone or unprovable; stop using the socket.
   *
   * - `unwanted` (the renewal found the row still ours but desired closed: a DELETE whose close
   *   command went to another agent): no other agent may claim a row desired closed, so the
   *   upstream gets a clean close (1000) and the row is released as closed.
   * - otherwise the connection is cut at once, without a closing handshake: another agent may
   *   already hold the socket. Only then is a refusal looked into (one consistent read, which
   *   could hang on the same DynamoDB trouble, so nothing waits for it): a row that is somehow
   *   still ours is handed back.
   * - `refused` also drops the messages still waiting to be persisted (counted in
   *   messagesDropped) instead of draining them: see below. `expired` drains for up to DRAIN_MS.
   */
  onLost(socketId: string, why: LostReason): void {
    const m = this.sockets.get(socketId);
    this.c.leases.forget(socketId);
    if (!m) return;
    if (why === 'unwanted') {
      m.log.info('closing upstream: no longer desired open');
      void (async () => {
        await this.retire(socketId, m, 1000, 'closed by request');
        await this.releaseIfOurs(socketId, m, 'closed');
      })();
      return;
    }
    // retire() terminates synchronously, then settles the persister in the background.
    if (why === 'refused') {
      // Another agent holds the socket now (or will at once) and writes the topic's newer
      // messages: ours, written after them, would put older data back on the item. So the
      // waiting ones are dropped, not drained; only the write already in flight can land.
      void this.retire(socketId, m, 'terminate', 'lease lost', 'discard');
      void this.releaseIfOurs(socketId, m);
      return;
    }
    void this.retire(socketId, m, 'terminate', 'lease expired');
  }

  /** Releases a row this agent still owns but no longer serves; `status` defaults from `desired`. */
  private async releaseIfOurs(socketId: string, m: Managed, status?: 'closed'): Promise<void> {
    let row: UpstreamRow | undefined;
    try {
      row = await this.c.store.get(socketId);
    } catch (err) {
      m.log.warn('could not read the row after losing its lease', { err });
      return;
    }
    // Not ours any more, or claimed again by this agent meanwhile: nothing to hand back.
    if (row?.owner !== this.c.options.agentId || this.sockets.has(socketId) || this.opening.has(socketId)) return;
    try {
      await this.c.leases.release(socketId, status ?? (row.desired === 'closed' ? 'closed' : 'pending'));
    } catch (err) {
      m.log.warn('release after losing the lease failed', { err });
    }
  }

  /** Agent shutdown: close every socket with 1001 (going away) and hand the leases back. */
  async stopAll(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      [...this.sockets.entries()].map(async ([id, m]) => {
        await this.retire(id, m, 1001, 'agent stopping');
        try {
          await this.c.leases.release(id, 'pending');
        } catch (err) {
          m.log.warn('lease release failed; it will expire', { err });
        }
      }),
    );
  }
}
