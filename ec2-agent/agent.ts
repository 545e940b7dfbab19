import type { Deps } from '../lib/runtime';
import { ItemStore } from '../lib/stores/items';
import { IdempotencyStore } from '../lib/stores/idempotency';
import { HealthRecords } from '../lib/upstream/health-records';
import { HeartbeatTable } from '../lib/upstream/heartbeats';
import { LeaseTable } from '../lib/upstream/leases';
import { createSecretStore } from '../lib/upstream/secrets';
import { SsrfGuard } from '../lib/upstream/ssrf';
import { UpstreamStore } from '../lib/upstream/store';
import { OwnershipAudit } from './audit';
import { CommandPoller } from './command-poller';
import { resolveAgentOptions, type AgentOptions } from './config';
import { LeaseManager } from './lease-manager';
import { Metrics } from './metrics';
import { ReconcileLoop } from './reconcile';
import { HttpSink } from './sink';
import { SocketSupervisor } from './supervisor';
import { Ticker } from './ticker';

export type { AgentOptions } from './config';

/**
 * The upstream agent: command poller + reconcile loop feed the supervisor, which claims
 * sockets by lease, dials them, health-checks them and persists their messages. One per EC2
 * instance (ec2-agent/main.ts under systemd), or in-process in the local stack and tests.
 */
export interface RunningAgent {
  readonly agentId: string;
  /** Stops polling, closes every socket (1001) and releases its leases. */
  stop(): Promise<void>;
  metrics(): Record<string, number>;
}

/** Interval of the "agent metrics" log line. */
const METRICS_LOG_MS = 60_000;

/**
 * Connections of the heartbeat's own pool. The heartbeat goes one call at a time (a late one is
 * aborted at the local deadline, which frees its connection); the second is spare. In the
 * shared pool a renewal could wait behind message, counter and status writes under a burst,
 * and a late heartbeat cuts every socket of the agent.
 */
const HEARTBEAT_POOL_SOCKETS = 2;

export async function startAgent(deps: Deps, options: Partial<AgentOptions> = {}): Promise<RunningAgent> {
  const o = resolveAgentOptions(options);
  const { config, clients, clock } = deps;
  const log = deps.log.child({ agentId: o.agentId });
  const metrics = new Metrics();
  const store = new UpstreamStore(clients.doc, config.tables.upstreams);
  const leaseTable = new LeaseTable(clients.doc, config.tables.upstreams);
  // Expired agents and close hints (reconcile, supervisor) share the bulk pool; this agent's own
  // heartbeat does not (HEARTBEAT_POOL_SOCKETS).
  const heartbeats = new HeartbeatTable(clients.doc, config.tables.upstreams);
  const ownHeartbeat = new HeartbeatTable(clients.dedicatedDoc('heartbeat', HEARTBEAT_POOL_SOCKETS), config.tables.upstreams);
  const leases = new LeaseManager({ table: leaseTable, heartbeats: ownHeartbeat, agentId: o.agentId, leaseMs: o.leaseMs, renewMs: o.renewMs, clock, metrics, log });
  const sink = o.sinkUrl
    ? new HttpSink({
        url: o.sinkUrl,
        authorization: o.sinkAuthorization,
        batchSize: o.sinkBatchSize,
        flushMs: o.sinkFlushMs,
        retries: o.sinkRetries,
        bufferSize: o.sinkBufferSize,
        backoffBaseMs: Math.min(o.backoffBaseMs, 500),
        metrics,
        log: log.child({ component: 'sink' }),
      })
    : undefined;
  const supervisor = new SocketSupervisor({
    options: o,
    leases,
    leaseTable,
    heartbeats,
    store,
    records: new HealthRecords(clients.doc, config.tables.upstreams),
    secrets: createSecretStore(config.upstream, clients.secrets),
    guard: new SsrfGuard({ allowHosts: config.upstream.allowHosts }),
    items: new ItemStore(clients.doc, {
      itemsTable: config.tables.items,
      historyTable: config.tables.history,
      historyTtlSeconds: config.subscriber.historyTtlSeconds,
      clock,
    }),
    maxEventBytes: config.subscriber.maxMessageBytes,
    sink,
    dedupe: {
      byId: new IdempotencyStore(clients.doc, { table: config.tables.idempotency, windowSeconds: o.dedupeIdWindowSeconds, clock }),
      byContent: new IdempotencyStore(clients.doc, { table: config.tables.idempotency, windowSeconds: o.dedupeContentWindowSeconds, clock }),
    },
    metrics,
    log,
    clock,
  });
  leases.setHooks(supervisor);
  const poller = new CommandPoller({
    sqs: clients.sqs,
    queueUrl: config.commandQueueUrl,
    waitSeconds: o.commandWaitSeconds,
    batchSize: o.commandBatchSize,
    metrics,
    log,
    handle: async (cmd) => {
      if (cmd.type === 'open') {
        const r = await supervisor.ensureOpen(cmd.socketId);
        log.debug('open command', { socketId: cmd.socketId, result: r });
      } else {
        await supervisor.ensureClosed(cmd.socketId);
      }
    },
  });
  const reconcile = new ReconcileLoop({
    table: leaseTable,
    heartbeats,
    reconcileMs: o.reconcileMs,
    clock,
    room: () => supervisor.room(),
    epoch: () => leases.fence()?.epoch,
    holdsTwin: (id) => supervisor.holdsTwin(id),
    onWaiting: (slots) => metrics.set('redundantSlotsWaiting', slots),
    claimMany: (ids, from) => supervisor.claimMany(ids, from),
    log,
  });
  const audit = new OwnershipAudit({
    table: leaseTable,
    auditMs: o.auditMs,
    fence: () => leases.fence(),
    held: () => supervisor.held,
    busy: (id) => supervisor.isHere(id),
    onLost: (id, why) => supervisor.onLost(id, why),
    adopt: (ids, epoch) => supervisor.adopt(ids, epoch),
    metrics,
    log,
  });
  const metricsLog = new Ticker('metrics log', Math.min(METRICS_LOG_MS, o.healthIntervalMs), async () => log.info('agent metrics', metrics.snapshot()), log);

  sink?.start();
  // The heartbeat row comes first: no claim is possible without an epoch.
  await leases.start();
  supervisor.startFlushing();
  reconcile.start();
  audit.start();
  poller.start();
  metricsLog.start();
  log.info('agent started', { epoch: leases.fence()?.epoch, capacity: o.capacity, claimConcurrency: o.claimConcurrency, counterFlushMs: o.counterFlushMs, leaseMs: o.leaseMs, renewMs: o.renewMs, reconcileMs: o.reconcileMs, auditMs: o.auditMs, healthIntervalMs: o.healthIntervalMs, sink: !!sink });

  let stopped: Promise<void> | undefined;
  return {
    agentId: o.agentId,
    metrics: () => metrics.snapshot(),
    stop() {
      stopped ??= (async () => {
        await Promise.all([poller.stop(), reconcile.stop(), audit.stop(), metricsLog.stop()]);
        // Renewals stop first; closing and releasing takes well under a lease period.
        await leases.stop();
        await supervisor.stopAll();
        await leases.end();
        await sink?.stop();
        log.info('agent stopped', metrics.snapshot());
      })();
      return stopped;
    },
  };
}
