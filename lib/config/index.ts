import { DEFAULT_COLLECTION_MAX_MEMBERS } from '../collections';
import { ConfigError } from '../errors';
import { API_GATEWAY_MAX_CONNECTION_MS, API_GATEWAY_MESSAGE_BYTES } from '../protocol/limits';
import { physicalTableName, TABLE_NAMES, type TableName } from '../schema';
import { EnvReader } from './env';
import { MAX_PARTITIONS } from '../fanout/partitions';
import { checkAppActions, checkItemKeys, checkJwtKeySources, checkTopicPatterns } from './rules';

export { EnvReader } from './env';
export { ConfigError } from '../errors';

/**
 * Runtime configuration of the Lambda handlers (and of the agent's shared parts), read once
 * from the environment and validated. The Pulumi program and the local stack both produce the
 * same variables, named here and nowhere else: see `configToEnv` for the reverse direction.
 */

export type Stack = 'local' | 'dev' | 'prod';
export type AuthMode = 'none' | 'jwt';

export interface JwtSettings {
  /** HS256 shared secret (at least 32 bytes). */
  readonly hs256Secret?: string;
  /** RS256 public key, PEM (SPKI). */
  readonly rs256PublicKey?: string;
  /** RS256 key set URL. */
  readonly jwksUrl?: string;
  readonly issuer?: string;
  readonly audience?: string;
  /** Claim holding the allowed topic patterns (array of strings, `*` suffix wildcard). */
  readonly topicsClaim: string;
  /** Claim holding the publish patterns. */
  readonly publishClaim: string;
  /** Claim holding the user ids this caller may send to (`POST /publish {"userId"}`); separate from topics. */
  readonly sendToUserClaim: string;
}

export interface ClaimNames {
  readonly topics: string;
  readonly publish: string;
  readonly sendToUser: string;
  /** Claim holding the connection ids a caller may reply to (`POST /publish {"connectionId"}`): `*` or exact ids. */
  readonly sendToConnection: string;
}

export interface PresenceSettings {
  /** Topic patterns whose members hear join/leave events (`PRESENCE_TOPICS=room:*,doc:*`); none by default. */
  readonly topics: readonly string[];
  /** Join/leave are sent only while the topic has at most this many subscribers (each costs one message per member). */
  readonly eventMaxMembers: number;
  /** Users listed at most in a presence answer; past it the list is cut and `"truncated":true`. */
  readonly listLimit: number;
}

export interface FanoutPartitioning {
  readonly queueUrl: string;
  readonly threshold: number;
  readonly partitions: number;
}

/** 5,000 subscribers: ~2.4 s for one invocation at 64 in flight and a 30 ms round trip (docs/performance.md). */
export const PARTITION_DEFAULTS = { threshold: 5000, partitions: 8 } as const;

export interface AppConfig {
  readonly stack: Stack;
  readonly region: string;
  readonly tables: Readonly<Record<TableName, string>>;
  readonly commandQueueUrl: string;
  /** `https://{api}.execute-api.{region}.amazonaws.com/{stage}` or the emulator's URL. */
  readonly managementEndpoint: string;
  readonly auth: {
    readonly mode: AuthMode;
    /** Token verification for subscribers (AUTH_MODE=jwt). */
    readonly jwt?: JwtSettings;
    /**
     * Claim names, read whatever AUTH_MODE is: the HTTP API's JWT authoriser hands claims to
     * publish and control even when subscribers connect without tokens (AUTH_MODE=none).
     */
    readonly claims: ClaimNames;
  };
  readonly subscriber: {
    /** Query parameters that subscribe at connect: `vehicleId` → `?vehicleId=3` → topic `vehicleId:3`. */
    readonly itemKeys: readonly string[];
    /** Connection row lifetime; API Gateway closes every connection after 2 h. */
    readonly connectionTtlSeconds: number;
    readonly historyTtlSeconds: number;
    /** API Gateway's WebSocket message limit is 128 KB; frames bigger than that never arrive. */
    readonly maxMessageBytes: number;
    readonly fanoutConcurrency: number;
    /** Most members a collection subscribe (`battery:*`) sends; past it the snapshot is `truncated`. */
    readonly collectionMaxMembers: number;
    /**
     * How fan-out posts to connections: `lean` (signed HTTP over keep-alive sockets, several
     * times less CPU per delivery; see docs/performance.md) or `sdk` (the AWS SDK client, the
     * reference implementation).
     */
    readonly fanoutSender: 'lean' | 'sdk';
    /**
     * Large topics in parallel (fanout/partition-handoff.ts): a topic with at least `threshold`
     * subscribers is split into `partitions` partitions, each delivered by its own invocation of
     * the partition worker through `queueUrl` (FIFO). Absent without FANOUT_PARTITION_QUEUE_URL:
     * every topic is delivered by the stream's fan-out itself.
     */
    readonly partitioning?: FanoutPartitioning;
    /** Application actions a client may send (`APP_ACTIONS=chat.ask,order.track`); each goes to the inbound queue. */
    readonly appActions: readonly string[];
    /** The inbound queue of application actions; required when `appActions` is not empty. */
    readonly inboundQueueUrl?: string;
    /** Token bucket of each connection for publishes and application actions. */
    readonly socketRate: { readonly perSecond: number; readonly burst: number };
    /** Presence (docs/subscriber-protocol.md#presence). */
    readonly presence: PresenceSettings;
  };
  readonly upstream: {
    readonly secretsBackend: 'secretsmanager' | 'local';
    /** Local backend: directory of AES-256-GCM sealed files and its 32-byte key (hex). */
    readonly localSecretsDir?: string;
    readonly localSecretsKey?: string;
    readonly secretPrefix: string;
    /** Hosts or CIDRs exempt from the SSRF guard (the local stack lists loopback). */
    readonly allowHosts: readonly string[];
  };
}

export const ENV = {
  stack: 'STACK',
  region: 'AWS_REGION',
  tablePrefix: 'TABLE_PREFIX',
  commandQueueUrl: 'COMMAND_QUEUE_URL',
  managementEndpoint: 'WS_MANAGEMENT_ENDPOINT',
  authMode: 'AUTH_MODE',
  jwtHs256Secret: 'JWT_HS256_SECRET',
  jwtRs256PublicKey: 'JWT_RS256_PUBLIC_KEY',
  jwtJwksUrl: 'JWT_JWKS_URL',
  jwtIssuer: 'JWT_ISSUER',
  jwtAudience: 'JWT_AUDIENCE',
  jwtTopicsClaim: 'JWT_TOPICS_CLAIM',
  jwtPublishClaim: 'JWT_PUBLISH_CLAIM',
  jwtSendToUserClaim: 'JWT_SEND_TO_USER_CLAIM',
  itemKeys: 'ITEM_KEYS',
  connectionTtlSeconds: 'CONNECTION_TTL_SECONDS',
  historyTtlSeconds: 'HISTORY_TTL_SECONDS',
  maxMessageBytes: 'MAX_MESSAGE_BYTES',
  fanoutConcurrency: 'FANOUT_CONCURRENCY',
  collectionMaxMembers: 'COLLECTION_MAX_MEMBERS',
  fanoutSender: 'FANOUT_SENDER',
  fanoutPartitionQueueUrl: 'FANOUT_PARTITION_QUEUE_URL',
  fanoutPartitionThreshold: 'FANOUT_PARTITION_THRESHOLD',
  fanoutPartitions: 'FANOUT_PARTITIONS',
  appActions: 'APP_ACTIONS',
  inboundQueueUrl: 'INBOUND_QUEUE_URL',
  socketRatePerSecond: 'SOCKET_RATE_PER_SECOND',
  socketRateBurst: 'SOCKET_RATE_BURST',
  jwtSendToConnectionClaim: 'JWT_SEND_TO_CONNECTION_CLAIM',
  presenceTopics: 'PRESENCE_TOPICS',
  presenceEventMaxMembers: 'PRESENCE_EVENT_MAX_MEMBERS',
  presenceListLimit: 'PRESENCE_LIST_LIMIT',
  secretsBackend: 'SECRETS_BACKEND',
  localSecretsDir: 'LOCAL_SECRETS_DIR',
  localSecretsKey: 'LOCAL_SECRETS_KEY',
  secretPrefix: 'SECRET_PREFIX',
  upstreamAllowHosts: 'UPSTREAM_ALLOW_HOSTS',
} as const;

/** `TABLE_CONNECTIONS`, `TABLE_ITEMS`, … override the names derived from TABLE_PREFIX. */
export function tableEnvKey(table: TableName): string {
  return `TABLE_${table.toUpperCase()}`;
}

export const MAX_CONNECTION_SECONDS = API_GATEWAY_MAX_CONNECTION_MS / 1000;
export const API_GATEWAY_MESSAGE_LIMIT = API_GATEWAY_MESSAGE_BYTES;

export interface LoadOptions {
  /**
   * false: skip the subscriber-auth settings (the upstream agent authenticates no subscribers
   * and is not given the JWT key); `auth.mode` is then reported as read, unvalidated.
   */
  readonly auth?: boolean;
}

/** Defaults: no join/leave topics; events up to 100 subscribers (Pusher's presence channel cap); lists up to 1,000 users. */
export const PRESENCE_DEFAULTS = { eventMaxMembers: 100, listLimit: 1000 } as const;

function readPresence(e: EnvReader): PresenceSettings {
  const topics = e.list(ENV.presenceTopics);
  checkTopicPatterns(topics, ENV.presenceTopics, 'comma-separated topics or prefixes ending in * (room:*)');
  return {
    topics,
    eventMaxMembers: e.int(ENV.presenceEventMaxMembers, { fallback: PRESENCE_DEFAULTS.eventMaxMembers, min: 1, max: 10_000 }),
    listLimit: e.int(ENV.presenceListLimit, { fallback: PRESENCE_DEFAULTS.listLimit, min: 1, max: 10_000 }),
  };
}

function readPartitioning(e: EnvReader): { partitioning?: FanoutPartitioning } {
  const threshold = e.int(ENV.fanoutPartitionThreshold, { fallback: PARTITION_DEFAULTS.threshold, min: 2, max: 10_000_000 });
  const partitions = e.int(ENV.fanoutPartitions, { fallback: PARTITION_DEFAULTS.partitions, min: 1, max: MAX_PARTITIONS });
  const queueUrl = e.optional(ENV.fanoutPartitionQueueUrl) && e.url(ENV.fanoutPartitionQueueUrl, ['https', 'http']);
  if (!queueUrl) return {};
  if (!/\.fifo$/.test(new URL(queueUrl).pathname)) {
    throw new ConfigError(ENV.fanoutPartitionQueueUrl, `is "${queueUrl}"; expected a FIFO queue (its name ends in .fifo): partitions rely on its per-group order`);
  }
  return { partitioning: { queueUrl, threshold, partitions } };
}

export function loadConfig(env: Readonly<Record<string, string | undefined>> = process.env, opts: LoadOptions = {}): AppConfig {
  const e = new EnvReader(env);
  const stack = e.oneOf<Stack>(ENV.stack, ['local', 'dev', 'prod']);
  const prefix = e.optional(ENV.tablePrefix);
  const tables = {} as Record<TableName, string>;
  for (const t of TABLE_NAMES) {
    const explicit = e.optional(tableEnvKey(t));
    if (explicit) tables[t] = explicit;
    else if (prefix) tables[t] = physicalTableName(prefix, t);
    else throw new ConfigError(tableEnvKey(t), `is required (or set ${ENV.tablePrefix})`);
  }

  const mode = opts.auth === false ? (e.optional(ENV.authMode) === 'none' ? 'none' : 'jwt') : e.oneOf<AuthMode>(ENV.authMode, ['none', 'jwt']);
  if (opts.auth !== false && mode === 'none' && stack === 'prod') {
    throw new ConfigError(ENV.authMode, 'is "none", which is refused on the prod stack; use jwt');
  }
  const claims: ClaimNames = {
    topics: e.string(ENV.jwtTopicsClaim, 'topics'),
    publish: e.string(ENV.jwtPublishClaim, 'publish'),
    sendToUser: e.string(ENV.jwtSendToUserClaim, 'sendToUser'),
    sendToConnection: e.string(ENV.jwtSendToConnectionClaim, 'sendToConnection'),
  };
  let jwt: JwtSettings | undefined;
  if (mode === 'jwt' && opts.auth !== false) {
    jwt = {
      hs256Secret: e.optional(ENV.jwtHs256Secret),
      rs256PublicKey: e.optional(ENV.jwtRs256PublicKey),
      // Keys fetched over plain http could be swapped in transit; only the local stack may.
      jwksUrl: e.optional(ENV.jwtJwksUrl) && e.url(ENV.jwtJwksUrl, stack === 'local' ? ['https', 'http'] : ['https']),
      issuer: e.optional(ENV.jwtIssuer),
      audience: e.optional(ENV.jwtAudience),
      topicsClaim: claims.topics,
      publishClaim: claims.publish,
      sendToUserClaim: claims.sendToUser,
    };
    checkJwtKeySources(jwt, {
      hs256Secret: ENV.jwtHs256Secret,
      rs256PublicKey: ENV.jwtRs256PublicKey,
      jwksUrl: ENV.jwtJwksUrl,
      hs256SecretKey: ENV.jwtHs256Secret,
      missing: `AUTH_MODE=jwt needs one of ${ENV.jwtHs256Secret}, ${ENV.jwtRs256PublicKey} or ${ENV.jwtJwksUrl}`,
    });
  }

  const itemKeys = e.list(ENV.itemKeys);
  checkItemKeys(itemKeys, ENV.itemKeys, 'comma-separated identifiers');

  const appActions = e.list(ENV.appActions);
  checkAppActions(appActions, ENV.appActions, 'comma-separated action names');
  const inboundQueueUrl = e.optional(ENV.inboundQueueUrl) && e.url(ENV.inboundQueueUrl, ['https', 'http']);
  if (appActions.length && !inboundQueueUrl) {
    throw new ConfigError(ENV.inboundQueueUrl, `is required when ${ENV.appActions} lists actions: they are put on that queue`);
  }

  const secretsBackend = e.oneOf(ENV.secretsBackend, ['secretsmanager', 'local'] as const, stack === 'local' ? 'local' : 'secretsmanager');
  const localSecretsKey = e.optional(ENV.localSecretsKey);
  if (secretsBackend === 'local') {
    if (stack !== 'local') throw new ConfigError(ENV.secretsBackend, `is "local", which only the local stack may use`);
    e.string(ENV.localSecretsDir);
    if (!localSecretsKey || !/^[0-9a-fA-F]{64}$/.test(localSecretsKey)) {
      throw new ConfigError(ENV.localSecretsKey, 'is required for SECRETS_BACKEND=local; expected 64 hex characters (32 bytes)');
    }
  }

  return {
    stack,
    region: e.string(ENV.region, 'us-east-1'),
    tables,
    commandQueueUrl: e.url(ENV.commandQueueUrl, ['https', 'http']),
    managementEndpoint: e.url(ENV.managementEndpoint, ['https', 'http']),
    auth: { mode, jwt, claims },
    subscriber: {
      itemKeys,
      connectionTtlSeconds: e.int(ENV.connectionTtlSeconds, { fallback: MAX_CONNECTION_SECONDS, min: 60, max: MAX_CONNECTION_SECONDS }),
      historyTtlSeconds: e.int(ENV.historyTtlSeconds, { fallback: 24 * 3600, min: 60, max: 30 * 24 * 3600 }),
      maxMessageBytes: e.int(ENV.maxMessageBytes, { fallback: API_GATEWAY_MESSAGE_LIMIT, min: 1024, max: API_GATEWAY_MESSAGE_LIMIT }),
      fanoutConcurrency: e.int(ENV.fanoutConcurrency, { fallback: 64, min: 1, max: 1024 }),
      // 10,000: ten BatchGetItem calls per 1,000 members; a subscribe must end within 29 s.
      collectionMaxMembers: e.int(ENV.collectionMaxMembers, { fallback: DEFAULT_COLLECTION_MAX_MEMBERS, min: 1, max: 10_000 }),
      fanoutSender: e.oneOf(ENV.fanoutSender, ['lean', 'sdk'] as const, 'lean'),
      ...readPartitioning(e),
      appActions,
      ...(inboundQueueUrl ? { inboundQueueUrl } : {}),
      // 10 a second with bursts of 20: a person typing, or a bot answering, never waits; a loop
      // flooding the topic is slowed at the gateway, before it costs a transaction per frame.
      socketRate: {
        perSecond: e.int(ENV.socketRatePerSecond, { fallback: 10, min: 1, max: 10_000 }),
        burst: e.int(ENV.socketRateBurst, { fallback: 20, min: 1, max: 10_000 }),
      },
      presence: readPresence(e),
    },
    upstream: {
      secretsBackend,
      localSecretsDir: e.optional(ENV.localSecretsDir),
      localSecretsKey,
      secretPrefix: e.string(ENV.secretPrefix, `realtime-gateway/${stack}/upstream/`),
      allowHosts: e.list(ENV.upstreamAllowHosts),
    },
  };
}
