import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { ConfigError } from '../lib/errors';
import { EnvReader } from '../lib/config/env';

/**
 * Agent settings, read once from the environment (`AGENT_*`, `SINK_*`) with defaults, every one
 * overridable by options (tests use short timers). The shared settings (tables, queue URL,
 * secret store, allow-list) come from lib/config's loadConfig.
 */
export interface AgentOptions {
  /** Lease owner name; unique per process. */
  readonly agentId: string;
  /** Most sockets this agent holds at once. */
  readonly capacity: number;
  /** How long one heartbeat proves the agent alive; a dead agent's sockets wait this long. */
  readonly leaseMs: number;
  /** Heartbeat period. Must be under leaseMs / 3, so two heartbeats can fail before the lease runs out. */
  readonly renewMs: number;
  readonly reconcileMs: number;
  /**
   * Ownership audit period: the agent reads which sockets the index still shows as its own and
   * closes those no longer desired open (a DELETE whose command was lost) or taken over.
   */
  readonly auditMs: number;
  /** Claims in flight at once when reconcile claims or takes over many sockets. */
  readonly claimConcurrency: number;
  /** At most one counter write per socket that had traffic in this period (none for idle ones). */
  readonly counterFlushMs: number;
  /** Seed 000 checked every minute. */
  readonly healthIntervalMs: number;
  /** How long a ping may wait for its pong before the check fails. */
  readonly pingTimeoutMs: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  readonly handshakeTimeoutMs: number;
  /** SQS long poll (0–20 s; 20 is SQS's maximum and the cheapest). */
  readonly commandWaitSeconds: number;
  readonly commandBatchSize: number;
  /** Messages waiting to be persisted per socket; beyond it the oldest are dropped and counted. */
  readonly persistQueueSize: number;
  readonly persistRetries: number;
  readonly sinkUrl?: string;
  /** Value of the Authorization header sent to the sink, if any (never logged). */
  readonly sinkAuthorization?: string;
  readonly sinkBatchSize: number;
  readonly sinkFlushMs: number;
  readonly sinkRetries: number;
  readonly sinkBufferSize: number;
  /** Redundant sockets with a dedupe-path: how long a message id is remembered. */
  readonly dedupeIdWindowSeconds: number;
  /** Redundant sockets without one: how long a content hash is remembered (see docs/upstream-connectors.md). */
  readonly dedupeContentWindowSeconds: number;
}

export const AGENT_ENV = {
  agentId: 'AGENT_ID',
  capacity: 'AGENT_CAPACITY',
  leaseMs: 'AGENT_LEASE_MS',
  renewMs: 'AGENT_RENEW_MS',
  reconcileMs: 'AGENT_RECONCILE_MS',
  auditMs: 'AGENT_AUDIT_MS',
  claimConcurrency: 'AGENT_CLAIM_CONCURRENCY',
  counterFlushMs: 'AGENT_COUNTER_FLUSH_MS',
  healthIntervalMs: 'AGENT_HEALTH_INTERVAL_MS',
  pingTimeoutMs: 'AGENT_PING_TIMEOUT_MS',
  backoffBaseMs: 'AGENT_BACKOFF_BASE_MS',
  backoffMaxMs: 'AGENT_BACKOFF_MAX_MS',
  handshakeTimeoutMs: 'AGENT_HANDSHAKE_TIMEOUT_MS',
  commandWaitSeconds: 'AGENT_COMMAND_WAIT_SECONDS',
  commandBatchSize: 'AGENT_COMMAND_BATCH_SIZE',
  persistQueueSize: 'AGENT_PERSIST_QUEUE_SIZE',
  persistRetries: 'AGENT_PERSIST_RETRIES',
  sinkUrl: 'SINK_URL',
  sinkAuthorization: 'SINK_AUTHORIZATION',
  sinkBatchSize: 'SINK_BATCH_SIZE',
  sinkFlushMs: 'SINK_FLUSH_MS',
  sinkRetries: 'SINK_RETRIES',
  sinkBufferSize: 'SINK_BUFFER_SIZE',
  dedupeIdWindowSeconds: 'AGENT_DEDUPE_ID_WINDOW_SECONDS',
  dedupeContentWindowSeconds: 'AGENT_DEDUPE_CONTENT_WINDOW_SECONDS',
} as const;

export const DEFAULTS = {
  capacity: 200,
  // SIGKILL → every socket reopened elsewhere ≈ leaseMs + reconcileMs + claim and dial time:
  // ~12 s for 1,000 sockets (docs/upstream-connectors.md). A heartbeat costs one write per agent
  // per renewMs, whatever the number of sockets.
  leaseMs: 9_000,
  renewMs: 2_500,
  reconcileMs: 2_000,
  // The bound on closing an idle socket whose DELETE command was lost. One Query of the agent's
  // own sockets per pass, KEYS_ONLY: ~2.5 read units per 200 sockets (docs/deploy.md), so a
  // shorter period is cheap too; 60 s matches the counter flush that catches active sockets.
  auditMs: 60_000,
  claimConcurrency: 32,
  counterFlushMs: 60_000,
  healthIntervalMs: 60_000,
  pingTimeoutMs: 10_000,
  backoffBaseMs: 1_000,
  backoffMaxMs: 60_000,
  handshakeTimeoutMs: 10_000,
  commandWaitSeconds: 20,
  commandBatchSize: 10,
  // Per socket; an agent holds thousands, so this bounds memory while DynamoDB lags
  // (10,000 sockets × 1,000 frames is already a lot; see docs/performance.md, agent capacity).
  persistQueueSize: 1_000,
  persistRetries: 5,
  sinkBatchSize: 100,
  sinkFlushMs: 1_000,
  sinkRetries: 5,
  sinkBufferSize: 10_000,
  // An id is unique on its platform: remembered long enough to cover any failover and redial.
  dedupeIdWindowSeconds: 3_600,
  // Two agents see a message within milliseconds of each other; identical content later than
  // this is a new message. Longer windows also make the occurrence count (see persister) drift.
  dedupeContentWindowSeconds: 60,
} as const;

export function defaultAgentId(): string {
  return `${os.hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

export function loadAgentOptions(env: Readonly<Record<string, string | undefined>> = process.env): AgentOptions {
  return validateAgentOptions(readAgentEnv(env));
}

/** The environment's values over the defaults, each checked on its own (not yet together). */
function readAgentEnv(env: Readonly<Record<string, string | undefined>>): AgentOptions {
  const e = new EnvReader(env);
  const ms = (k: keyof typeof DEFAULTS & keyof typeof AGENT_ENV, min = 1, max = 24 * 3600_000) =>
    e.int(AGENT_ENV[k], { fallback: DEFAULTS[k], min, max });
  return {
    agentId: e.string(AGENT_ENV.agentId, defaultAgentId()),
    capacity: ms('capacity', 1, 100_000),
    leaseMs: ms('leaseMs', 100),
    renewMs: ms('renewMs', 10),
    reconcileMs: ms('reconcileMs', 10),
    auditMs: ms('auditMs', 10),
    claimConcurrency: ms('claimConcurrency', 1, 1_000),
    counterFlushMs: ms('counterFlushMs', 10),
    healthIntervalMs: ms('healthIntervalMs', 10),
    pingTimeoutMs: ms('pingTimeoutMs', 5),
    backoffBaseMs: ms('backoffBaseMs', 1),
    backoffMaxMs: ms('backoffMaxMs', 1),
    handshakeTimeoutMs: ms('handshakeTimeoutMs', 10),
    commandWaitSeconds: e.int(AGENT_ENV.commandWaitSeconds, { fallback: DEFAULTS.commandWaitSeconds, min: 0, max: 20 }),
    commandBatchSize: e.int(AGENT_ENV.commandBatchSize, { fallback: DEFAULTS.commandBatchSize, min: 1, max: 10 }),
    persistQueueSize: ms('persistQueueSize', 1, 10_000_000),
    persistRetries: e.int(AGENT_ENV.persistRetries, { fallback: DEFAULTS.persistRetries, min: 0, max: 100 }),
    sinkUrl: e.optional(AGENT_ENV.sinkUrl) && e.url(AGENT_ENV.sinkUrl, ['http', 'https']),
    sinkAuthorization: e.optional(AGENT_ENV.sinkAuthorization),
    sinkBatchSize: ms('sinkBatchSize', 1, 10_000),
    sinkFlushMs: ms('sinkFlushMs', 1),
    sinkRetries: e.int(AGENT_ENV.sinkRetries, { fallback: DEFAULTS.sinkRetries, min: 0, max: 100 }),
    sinkBufferSize: ms('sinkBufferSize', 1, 10_000_000),
    dedupeIdWindowSeconds: ms('dedupeIdWindowSeconds', 1, 7 * 86_400),
    dedupeContentWindowSeconds: ms('dedupeContentWindowSeconds', 1, 86_400),
  };
}

/** Defaults, then the environment's values, then explicit options; validated together. */
export function resolveAgentOptions(
  overrides: Partial<AgentOptions> = {},
  env: Readonly<Record<string, string | undefined>> = process.env,
): AgentOptions {
  const fromEnv = readAgentEnv(env);
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) as Partial<AgentOptions>;
  return validateAgentOptions({ ...fromEnv, ...defined });
}

export function validateAgentOptions(o: AgentOptions): AgentOptions {
  // Two renewals may fail (throttling, a network blip) and the lease still holds.
  if (o.renewMs * 3 >= o.leaseMs) {
    throw new ConfigError(AGENT_ENV.renewMs, `is ${o.renewMs} ms; it must be under a third of ${AGENT_ENV.leaseMs} (${o.leaseMs} ms)`);
  }
  if (o.pingTimeoutMs >= o.healthIntervalMs) {
    throw new ConfigError(AGENT_ENV.pingTimeoutMs, `is ${o.pingTimeoutMs} ms; it must be shorter than ${AGENT_ENV.healthIntervalMs} (${o.healthIntervalMs} ms)`);
  }
  if (o.backoffBaseMs > o.backoffMaxMs) {
    throw new ConfigError(AGENT_ENV.backoffBaseMs, `is ${o.backoffBaseMs} ms, above ${AGENT_ENV.backoffMaxMs} (${o.backoffMaxMs} ms)`);
  }
  if (!o.agentId) throw new ConfigError(AGENT_ENV.agentId, 'must not be empty');
  return o;
}
