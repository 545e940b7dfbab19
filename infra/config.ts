import type { Input } from '@pulumi/pulumi';
import { checkAppActions, checkItemKeys, checkJwtKeySources, checkTopicPatterns } from '../lib/config/rules';
import { ConfigError } from '../lib/errors';
import { FUNCTIONS, type WebSocketRouteKey } from '../lib/functions';
import { QUEUES } from '../lib/schema';
import { PARTITION_DEFAULTS } from '../lib/config';
import { MAX_PARTITIONS } from '../lib/fanout/partitions';

/**
 * Typed, validated stack configuration (`Pulumi.<stack>.yaml`, keys under `realtime-gateway:`).
 *
 * `parseStackConfig` is pure: it takes the plaintext key → value map Pulumi hands the program
 * (structured values arrive as JSON strings) or the same settings as a typed object (the
 * `RealtimeGateway` component's args, `StackSettings`) and either returns a `StackConfig` or throws a
 * ConfigError whose key is the full config key (`realtime-gateway:fleet.maxSize`), so
 * `pulumi preview` stops before any resource is registered and says exactly what to fix.
 * Unknown keys are refused too: a typo would otherwise silently fall back to a default.
 */

export const PROJECT = 'realtime-gateway';

export type StackName = 'dev' | 'prod';
export type SubscriberAuth = 'none' | 'jwt';
export type HttpAuth = 'iam' | 'jwt' | 'none';
/** `existing`: a VPC of the caller's (fleet.vpcId, fleet.subnetIds), private subnets with a route out. */
export type FleetVpc = 'default' | 'dedicated' | 'existing';

export interface LambdaSizing {
  readonly memoryMb: number;
  readonly timeoutSeconds: number;
}

export interface Throttle {
  readonly burstLimit: number;
  readonly rateLimit: number;
}

export interface StackConfig {
  readonly stack: StackName;
  /** Prefix of every physical name: `rtg-dev`. Also the TABLE_PREFIX the handlers would derive. */
  readonly prefix: string;
  /** Subscriber authentication in the handlers (AUTH_MODE). */
  readonly authMode: SubscriberAuth;
  /** Authorisation of the HTTP API routes (publish + control). */
  readonly httpAuth: HttpAuth;
  readonly jwt: NonNullable<StackSettings['jwt']> & {
    /** Plaintext here; the program wraps it in `pulumi.secret` before it reaches any resource. */
    readonly hs256Secret?: string;
  };
  readonly itemKeys: readonly string[];
  /** Application actions clients may send (APP_ACTIONS; validated by loadConfig in the Lambda). */
  readonly appActions: readonly string[];
  readonly upstreamAllowHosts: readonly string[];
  readonly secretPrefix: string;
  readonly connectionTtlSeconds?: number;
  readonly historyTtlSeconds?: number;
  readonly fanoutConcurrency?: number;
  /** Per-connection token bucket for socket publishes and application actions (SOCKET_RATE_*). */
  readonly socketRatePerSecond?: number;
  readonly socketRateBurst?: number;
  /** Presence: join/leave topic patterns and caps (PRESENCE_*; validated like loadConfig does). */
  readonly presenceTopics: readonly string[];
  readonly presenceEventMaxMembers?: number;
  readonly presenceListLimit?: number;
  /** Most members a collection snapshot (`battery:*`) sends (COLLECTION_MAX_MEMBERS, 1–10,000). */
  readonly collectionMaxMembers?: number;
  readonly logRetentionDays: number;
  /** Point-in-time recovery + deletion protection on the tables (always on for prod). */
  readonly dataProtection: boolean;
  readonly lambda: LambdaSizing & { readonly overrides: Readonly<Record<string, LambdaSizing>> };
  readonly websocket: {
    readonly stageName: string;
    /** Create the account-level API Gateway CloudWatch role WebSocket access logs need. */
    readonly accountLogRole: boolean;
    readonly throttle: Throttle;
    readonly routes: Readonly<Partial<Record<WebSocketRouteKey, Throttle>>>;
  };
  readonly http: { readonly throttle: Throttle };
  readonly fanout: {
    readonly batchSize: number;
    readonly batchWindowSeconds: number;
    readonly maxRetryAttempts: number;
    readonly maxRecordAgeSeconds: number;
    readonly parallelizationFactor: number;
    /** Subscribers from which a topic is delivered in partitions by the fanout-partition function (FANOUT_PARTITION_THRESHOLD). */
    readonly partitionThreshold: number;
    /** Partitions of a large topic, 1–100: parallel partition workers per topic (FANOUT_PARTITIONS). */
    readonly partitions: number;
  };
  readonly fleet: {
    readonly vpc: FleetVpc;
    /** With vpc `existing`: the VPC and the subnets the agents run in (may come from other resources). */
    readonly vpcId?: Input<string>;
    readonly subnetIds?: Input<Input<string>[]>;
    readonly natGateways: 'single' | 'onePerAz';
    readonly instanceType: string;
    readonly minSize: number;
    readonly maxSize: number;
    readonly desiredCapacity: number;
    readonly nodeMajor: number;
    /** How long a terminating instance waits for the agent to release its leases. */
    readonly leaseReleaseSeconds: number;
    readonly ssm: boolean;
  };
  readonly alarms: {
    readonly email?: string;
    readonly iteratorAgeMs: number;
    /** Delivery latency (publish → delivery) p99 bound, ms: the alarm fires when it stays above it. */
    readonly deliveryLatencyP99Ms: number;
    /** An SNS topic of the caller's to notify instead of one the stack creates. */
    readonly topicArn?: Input<string>;
  };
  readonly sink: {
    readonly url?: string;
    /** Plaintext here; stored as a Pulumi secret and in Secrets Manager, never in user data. */
    readonly credentials?: string;
  };
}

/** CloudWatch Logs accepts only these retention periods (PutRetentionPolicy). */
export const LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653] as const;

/**
 * The termination lifecycle hook waits `leaseReleaseSeconds` plus this margin (the agent's stop
 * timeout, then time for the watcher to complete the action), see components/fleet.ts.
 */
export const LIFECYCLE_HOOK_MARGIN_SECONDS = 30;

/** PutLifecycleHook: HeartbeatTimeout is 30–7200 seconds. */
export const LIFECYCLE_HOOK_MAX_SECONDS = 7200;

/** Node.js majors Amazon Linux 2023 packages as `nodejs{major}` (`/usr/bin/node-{major}`). */
export const FLEET_NODE_MAJORS = [20, 22, 24] as const;

/** Sizing settings, as given (unvalidated). */
interface SizingSettings {
  readonly memoryMb?: number;
  readonly timeoutSeconds?: number;
}
interface ThrottleSettings {
  readonly burstLimit?: number;
  readonly rateLimit?: number;
}

/**
 * The stack settings as given: the keys of the `realtime-gateway:` namespace of
 * `Pulumi.<stack>.yaml`, and the args of the `RealtimeGateway` component. Values that may come
 * from another resource are `Input`s; everything else is a plain value, so it can be validated
 * before any resource is created.
 */
export interface StackSettings {
  readonly authMode: SubscriberAuth;
  readonly httpAuth: HttpAuth;
  readonly jwt?: {
    /** May come from the identity provider's resource (a Cognito user pool's issuer URL). */
    readonly issuer?: Input<string>;
    /** May come from the identity provider's resource (a Cognito app client's id). */
    readonly audience?: Input<string>;
    readonly jwksUrl?: string;
    readonly rs256PublicKey?: string;
    readonly topicsClaim?: string;
    readonly publishClaim?: string;
    readonly sendToUserClaim?: string;
    readonly sendToConnectionClaim?: string;
  };
  /** Plaintext; wrapped in `pulumi.secret` before it reaches any resource. */
  readonly jwtHs256Secret?: string;
  /** A list, or a comma-separated string. */
  readonly itemKeys?: readonly string[] | string;
  /** Application actions clients may send (to the inbound queue). A list, or a comma-separated string. */
  readonly appActions?: readonly string[] | string;
  readonly upstreamAllowHosts?: readonly string[] | string;
  readonly secretPrefix?: string;
  readonly connectionTtlSeconds?: number;
  readonly historyTtlSeconds?: number;
  readonly fanoutConcurrency?: number;
  readonly socketRatePerSecond?: number;
  readonly socketRateBurst?: number;
  /** Topic patterns with join/leave events. A list, or a comma-separated string. */
  readonly presenceTopics?: readonly string[] | string;
  readonly presenceEventMaxMembers?: number;
  readonly presenceListLimit?: number;
  readonly collectionMaxMembers?: number;
  readonly logRetentionDays?: number;
  readonly dataProtection?: boolean;
  readonly lambda?: SizingSettings & { readonly overrides?: Readonly<Record<string, SizingSettings>> };
  readonly websocket?: ThrottleSettings & {
    readonly stageName?: string;
    readonly accountLogRole?: boolean;
    readonly routes?: Readonly<Partial<Record<WebSocketRouteKey, ThrottleSettings>>>;
  };
  readonly http?: ThrottleSettings;
  readonly fanout?: Partial<StackConfig['fanout']>;
  readonly fleet?: {
    readonly vpc?: FleetVpc;
    readonly vpcId?: Input<string>;
    readonly subnetIds?: Input<Input<string>[]>;
    readonly natGateways?: 'single' | 'onePerAz';
    readonly instanceType?: string;
    readonly minSize?: number;
    readonly maxSize?: number;
    readonly desiredCapacity?: number;
    readonly nodeMajor?: (typeof FLEET_NODE_MAJORS)[number];
    readonly leaseReleaseSeconds?: number;
    readonly ssm?: boolean;
  };
  readonly alarms?: { readonly email?: string; readonly iteratorAgeMs?: number; readonly deliveryLatencyP99Ms?: number; readonly topicArn?: Input<string> };
  readonly sink?: { readonly url?: string };
  /** Plaintext; stored as a Pulumi secret and in Secrets Manager, never in user data. */
  readonly sinkCredentials?: string;
}

/** Every key of `T`, checked by the compiler: a key missing from or extra to `T` does not type-check. */
function keysOf<T>(keys: { readonly [K in keyof Required<T>]: true }): (keyof T & string)[] {
  return Object.keys(keys) as (keyof T & string)[];
}

type Section<K extends keyof StackSettings> = NonNullable<StackSettings[K]>;

const JWT_KEYS = keysOf<Section<'jwt'>>({ issuer: true, audience: true, jwksUrl: true, rs256PublicKey: true, topicsClaim: true, publishClaim: true, sendToUserClaim: true, sendToConnectionClaim: true });
const SIZING_KEYS = keysOf<SizingSettings>({ memoryMb: true, timeoutSeconds: true });
const THROTTLE_KEYS = keysOf<ThrottleSettings>({ burstLimit: true, rateLimit: true });
const WS_ROUTES = keysOf<Record<WebSocketRouteKey, unknown>>({ $connect: true, $disconnect: true, $default: true, subscribe: true, unsubscribe: true, ping: true, publish: true, presence: true });

/** Keys this program reads; anything else under `realtime-gateway:` is a typo. */
export const CONFIG_KEYS = keysOf<StackSettings>({
  authMode: true,
  httpAuth: true,
  jwt: true,
  jwtHs256Secret: true,
  itemKeys: true,
  appActions: true,
  upstreamAllowHosts: true,
  secretPrefix: true,
  connectionTtlSeconds: true,
  historyTtlSeconds: true,
  fanoutConcurrency: true,
  socketRatePerSecond: true,
  socketRateBurst: true,
  presenceTopics: true,
  presenceEventMaxMembers: true,
  presenceListLimit: true,
  collectionMaxMembers: true,
  logRetentionDays: true,
  dataProtection: true,
  lambda: true,
  websocket: true,
  http: true,
  fanout: true,
  fleet: true,
  alarms: true,
  sink: true,
  sinkCredentials: true,
});

/** Keys whose values must be set with `pulumi config set --secret`. */
export const SECRET_KEYS = ['jwtHs256Secret', 'sinkCredentials'] as const satisfies readonly (keyof StackSettings)[];

const key = (path: string) => `${PROJECT}:${path}`;

type Obj = Record<string, unknown>;

const isMap = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A value that is neither a plain value nor a plain map or list: a Pulumi Output or a promise,
 * known only when the deployment runs. Such values are passed through unchecked.
 */
const isResourceInput = (v: unknown): boolean => typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) !== Object.prototype;

interface IntOptions {
  readonly fallback?: number;
  readonly min: number;
  readonly max: number;
  /** Why the range is what it is, appended to an out-of-range message. */
  readonly why?: string;
}

/**
 * Reads one map of settings (the top level, or a section such as `fleet`), naming the full
 * dotted key in every error. At the top level, Pulumi hands every value over as a string:
 * blank means unset, and a section arrives as JSON.
 */
class Reader {
  private constructor(
    private readonly path: string,
    private readonly obj: Obj,
  ) {}

  static top(values: Readonly<Record<string, unknown>>): Reader {
    const obj: Obj = {};
    for (const [k, v] of Object.entries(values)) {
      if (v === undefined || (typeof v === 'string' && v.trim() === '')) continue;
      obj[k] = typeof v === 'string' ? v.trim() : v;
    }
    return new Reader('', obj);
  }

  private at(name: string): string {
    return this.path ? `${this.path}.${name}` : name;
  }

  private fail(name: string, message: string): never {
    throw new ConfigError(key(this.at(name)), message);
  }

  has(name: string): boolean {
    return this.obj[name] !== undefined;
  }

  /** Refuses members this program does not read. */
  only(allowed: readonly string[]): this {
    for (const k of Object.keys(this.obj)) {
      if (!allowed.includes(k)) this.fail(k, `is not a known setting; expected one of ${allowed.join(', ')}`);
    }
    return this;
  }

  /** A nested map of settings; unset reads as empty. A string is parsed as JSON (Pulumi's form). */
  section(name: string): Reader {
    let v = this.obj[name];
    if (v === undefined) return new Reader(this.at(name), {});
    if (typeof v === 'string') {
      try {
        v = JSON.parse(v);
      } catch {
        this.fail(name, `is not a map; expected YAML like "${this.at(name)}: { ... }"`);
      }
    }
    if (!isMap(v)) this.fail(name, 'is not a map of settings');
    return new Reader(this.at(name), v);
  }

  keys(): string[] {
    return Object.keys(this.obj);
  }

  int(name: string, opts: IntOptions): number {
    let v = this.obj[name] ?? opts.fallback;
    const range = `expected an integer from ${opts.min} to ${opts.max}`;
    if (v === undefined) this.fail(name, `is required; ${range}`);
    if (typeof v === 'string' && /^-?\d+$/.test(v.trim())) v = Number(v.trim());
    if (typeof v !== 'number' || !Number.isInteger(v)) this.fail(name, `is ${JSON.stringify(v)}; ${range}`);
    if (v < opts.min || v > opts.max) this.fail(name, `is ${v}; ${range}${opts.why ? `: ${opts.why}` : ''}`);
    return v;
  }

  optionalInt(name: string, min: number, max: number): number | undefined {
    return this.has(name) ? this.int(name, { min, max }) : undefined;
  }

  str(name: string, fallback?: string): string {
    const v = this.obj[name] ?? fallback;
    if (v === undefined) this.fail(name, 'is required but not set');
    if (typeof v !== 'string' || v.trim() === '') this.fail(name, 'is not a non-empty string');
    return v.trim();
  }

  optionalStr(name: string): string | undefined {
    return this.has(name) ? this.str(name) : undefined;
  }

  oneOf<T extends string | number>(name: string, allowed: readonly T[], fallback?: T): T {
    const v = this.obj[name] ?? fallback;
    if (v === undefined) this.fail(name, `is required; expected one of ${allowed.join(', ')}`);
    if (!(allowed as readonly unknown[]).includes(v)) this.fail(name, `is ${JSON.stringify(v)}; expected one of ${allowed.join(', ')}`);
    return v as T;
  }

  /** A YAML boolean, or the strings true / false (what `pulumi config set` stores). */
  bool(name: string, fallback: boolean): boolean {
    const v = this.obj[name] ?? fallback;
    if (v === true || v === 'true') return true;
    if (v === false || v === 'false') return false;
    this.fail(name, `is ${JSON.stringify(v)}; expected true or false`);
  }

  /** An http(s) URL, returned verbatim: a JWT issuer must match the token's `iss` character for character. */
  optionalUrl(name: string, protocols: readonly string[]): string | undefined {
    const v = this.optionalStr(name);
    if (v === undefined) return undefined;
    let u: URL | undefined;
    try {
      u = new URL(v);
    } catch {
      u = undefined;
    }
    if (!u || !protocols.includes(u.protocol.replace(/:$/, ''))) this.fail(name, `is "${v}"; expected a ${protocols.join('/')} URL`);
    return v;
  }

  /** A list: a YAML list (a JSON string at the top level), or a comma-separated string. */
  list(name: string): string[] {
    let v = this.obj[name];
    if (v === undefined) return [];
    if (typeof v === 'string' && v.startsWith('[')) {
      try {
        v = JSON.parse(v);
      } catch {
        this.fail(name, 'is not a valid list');
      }
    }
    const items = typeof v === 'string' ? v.split(',') : v;
    if (!Array.isArray(items) || items.some((x) => typeof x !== 'string')) this.fail(name, 'is not a list of strings');
    return (items as string[]).map((x) => x.trim()).filter(Boolean);
  }

  /**
   * A value that may come from another resource: checked with `plain` when it is known now,
   * passed through when it is an Output (known only at deployment).
   */
  input<T>(name: string, plain: (v: unknown, fail: (message: string) => never) => T): Input<T> | undefined {
    const v = this.obj[name];
    if (v === undefined) return undefined;
    if (isResourceInput(v)) return v as Input<T>;
    return plain(v, (message) => this.fail(name, message));
  }
}

/** API Gateway's account-level default is 5000 burst / 10000 rps; a stage cannot exceed it. */
function readThrottle(r: Reader, fallback: Throttle): Throttle {
  return {
    burstLimit: r.int('burstLimit', { fallback: fallback.burstLimit, min: 0, max: 5000 }),
    rateLimit: r.int('rateLimit', { fallback: fallback.rateLimit, min: 0, max: 10000 }),
  };
}

function readAccess(stack: StackName, top: Reader): Pick<StackConfig, 'authMode' | 'httpAuth' | 'jwt'> {
  const authMode = top.oneOf<SubscriberAuth>('authMode', ['none', 'jwt']);
  const httpAuth = top.oneOf<HttpAuth>('httpAuth', ['iam', 'jwt', 'none']);
  if (stack === 'prod' && authMode === 'none') {
    throw new ConfigError(key('authMode'), 'is "none", which is refused on the prod stack: anyone could connect as any user; use jwt');
  }
  if (stack === 'prod' && httpAuth === 'none') {
    throw new ConfigError(key('httpAuth'), 'is "none", which is refused on the prod stack: the publish and control API would be open; use iam or jwt');
  }
  const j = top.section('jwt').only(JWT_KEYS);
  const jwt = {
    // Outputs of the identity provider's resources pass through; plain values get the stack config's checks.
    issuer: j.input('issuer', () => j.optionalUrl('issuer', ['https'])!),
    audience: j.input('audience', () => j.optionalStr('audience')!),
    jwksUrl: j.optionalUrl('jwksUrl', ['https']),
    rs256PublicKey: j.optionalStr('rs256PublicKey'),
    topicsClaim: j.optionalStr('topicsClaim'),
    publishClaim: j.optionalStr('publishClaim'),
    sendToUserClaim: j.optionalStr('sendToUserClaim'),
    sendToConnectionClaim: j.optionalStr('sendToConnectionClaim'),
    hs256Secret: top.optionalStr('jwtHs256Secret'),
  };
  if (authMode === 'jwt' || jwt.hs256Secret) {
    checkJwtKeySources(jwt, {
      hs256Secret: 'jwtHs256Secret',
      rs256PublicKey: 'jwt.rs256PublicKey',
      jwksUrl: 'jwt.jwksUrl',
      hs256SecretKey: key('jwtHs256Secret'),
      missing: 'authMode jwt needs jwtHs256Secret (a --secret), jwt.rs256PublicKey or jwt.jwksUrl',
    });
  }
  if (jwt.rs256PublicKey && !jwt.rs256PublicKey.includes('BEGIN PUBLIC KEY')) {
    throw new ConfigError(key('jwt.rs256PublicKey'), 'is not a PEM public key (-----BEGIN PUBLIC KEY-----)');
  }
  if (httpAuth === 'jwt') {
    // API Gateway's JWT authorizer validates RS256 tokens against the issuer's OIDC discovery
    // document; it needs both the issuer and at least one audience.
    if (!jwt.issuer) throw new ConfigError(key('jwt.issuer'), 'is required when httpAuth is jwt (the https issuer of the tokens)');
    if (!jwt.audience) throw new ConfigError(key('jwt.audience'), 'is required when httpAuth is jwt');
  }
  return { authMode, httpAuth, jwt };
}

function readSubscribers(stack: StackName, top: Reader): Pick<StackConfig, 'itemKeys' | 'appActions' | 'upstreamAllowHosts' | 'secretPrefix' | 'connectionTtlSeconds' | 'historyTtlSeconds' | 'fanoutConcurrency' | 'socketRatePerSecond' | 'socketRateBurst' | 'presenceTopics' | 'presenceEventMaxMembers' | 'presenceListLimit' | 'collectionMaxMembers'> {
  const itemKeys = top.list('itemKeys');
  // The same rule loadConfig applies to ITEM_KEYS, checked here so the preview fails, not the Lambda.
  checkItemKeys(itemKeys, key('itemKeys'), 'identifiers');
  const secretPrefix = top.str('secretPrefix', `${PROJECT}/${stack}/upstream/`);
  if (!/^[A-Za-z0-9/_+=.@-]{1,400}$/.test(secretPrefix) || !secretPrefix.endsWith('/')) {
    throw new ConfigError(key('secretPrefix'), `is "${secretPrefix}"; expected Secrets Manager name characters ending in "/"`);
  }
  const appActions = top.list('appActions');
  checkAppActions(appActions, key('appActions'), 'action names');
  return {
    itemKeys,
    appActions,
    upstreamAllowHosts: top.list('upstreamAllowHosts'),
    secretPrefix,
    connectionTtlSeconds: top.optionalInt('connectionTtlSeconds', 60, 7200),
    historyTtlSeconds: top.optionalInt('historyTtlSeconds', 60, 30 * 24 * 3600),
    fanoutConcurrency: top.optionalInt('fanoutConcurrency', 1, 1024),
    // The bounds loadConfig applies to SOCKET_RATE_*, so a preview refuses what a Lambda would.
    socketRatePerSecond: top.optionalInt('socketRatePerSecond', 1, 10_000),
    socketRateBurst: top.optionalInt('socketRateBurst', 1, 10_000),
    // The bound loadConfig applies to COLLECTION_MAX_MEMBERS.
    collectionMaxMembers: top.optionalInt('collectionMaxMembers', 1, 10_000),
    ...readPresence(top),
  };
}

/** The rules loadConfig applies to PRESENCE_*, so a preview refuses what a Lambda would. */
function readPresence(top: Reader): Pick<StackConfig, 'presenceTopics' | 'presenceEventMaxMembers' | 'presenceListLimit'> {
  const presenceTopics = top.list('presenceTopics');
  checkTopicPatterns(presenceTopics, key('presenceTopics'), 'topics or prefixes ending in * (room:*)');
  return {
    presenceTopics,
    presenceEventMaxMembers: top.optionalInt('presenceEventMaxMembers', 1, 10_000),
    presenceListLimit: top.optionalInt('presenceListLimit', 1, 10_000),
  };
}

function readRetention(stack: StackName, top: Reader): Pick<StackConfig, 'logRetentionDays' | 'dataProtection'> {
  const logRetentionDays = top.int('logRetentionDays', { fallback: stack === 'prod' ? 90 : 7, min: 1, max: 3653 });
  if (!(LOG_RETENTION_DAYS as readonly number[]).includes(logRetentionDays)) {
    throw new ConfigError(key('logRetentionDays'), `is ${logRetentionDays}; CloudWatch Logs accepts ${LOG_RETENTION_DAYS.join(', ')}`);
  }
  const dataProtection = top.bool('dataProtection', stack === 'prod');
  if (stack === 'prod' && !dataProtection) {
    throw new ConfigError(key('dataProtection'), 'is false, which is refused on prod: tables keep point-in-time recovery and deletion protection');
  }
  return { logRetentionDays, dataProtection };
}

function readLambda(top: Reader): StackConfig['lambda'] {
  const l = top.section('lambda').only([...SIZING_KEYS, 'overrides']);
  // Lambda: 128–10240 MB, 1–900 s.
  const sizing = (r: Reader, fb: LambdaSizing): LambdaSizing => ({
    memoryMb: r.int('memoryMb', { fallback: fb.memoryMb, min: 128, max: 10240 }),
    timeoutSeconds: r.int('timeoutSeconds', { fallback: fb.timeoutSeconds, min: 1, max: 900 }),
  });
  const base = sizing(l, { memoryMb: 256, timeoutSeconds: 10 });
  const ov = l.section('overrides');
  const overrides: Record<string, LambdaSizing> = {};
  for (const name of ov.keys()) {
    if (!FUNCTIONS.some((f) => f.name === name)) {
      throw new ConfigError(key(`lambda.overrides.${name}`), `names no function; expected one of ${FUNCTIONS.map((f) => f.name).join(', ')}`);
    }
    overrides[name] = sizing(ov.section(name).only(SIZING_KEYS), base);
  }
  for (const f of FUNCTIONS) {
    const s = overrides[f.name] ?? base;
    // API Gateway stops waiting for an integration after 29 s (WebSocket) / 30 s (HTTP API); a
    // longer timeout only keeps a Lambda running for a caller that has already been answered.
    const at = overrides[f.name] ? `lambda.overrides.${f.name}.timeoutSeconds` : 'lambda.timeoutSeconds';
    if ((f.trigger.kind === 'websocket' || f.trigger.kind === 'http') && s.timeoutSeconds > 29) {
      throw new ConfigError(key(at), `is ${s.timeoutSeconds} for ${f.name}; API Gateway integrations time out after 29 s`);
    }
    // AWS refuses an SQS mapping whose function may run longer than the queue's visibility timeout.
    if (f.trigger.kind === 'queue' && s.timeoutSeconds > QUEUES[f.trigger.queue].visibilityTimeoutSeconds) {
      const limit = QUEUES[f.trigger.queue].visibilityTimeoutSeconds;
      throw new ConfigError(key(at), `is ${s.timeoutSeconds} for ${f.name}; its queue ${f.trigger.queue} hides a message for ${limit} s, so at most ${limit}`);
    }
  }
  return { ...base, overrides };
}

function readWebsocket(stack: StackName, top: Reader): StackConfig['websocket'] {
  const w = top.section('websocket').only(['stageName', 'accountLogRole', ...THROTTLE_KEYS, 'routes']);
  const stageName = w.str('stageName', stack);
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(stageName)) throw new ConfigError(key('websocket.stageName'), `is "${stageName}"; expected letters, digits, - or _`);
  const throttle = readThrottle(w, { burstLimit: 500, rateLimit: 1000 });
  const wr = w.section('routes').only(WS_ROUTES);
  const routes: Partial<Record<WebSocketRouteKey, Throttle>> = {};
  for (const r of wr.keys() as WebSocketRouteKey[]) routes[r] = readThrottle(wr.section(r).only(THROTTLE_KEYS), throttle);
  return { stageName, accountLogRole: w.bool('accountLogRole', true), throttle, routes };
}

function readFanout(top: Reader): StackConfig['fanout'] {
  const fo = top.section('fanout').only(keysOf<StackConfig['fanout']>({ batchSize: true, batchWindowSeconds: true, maxRetryAttempts: true, maxRecordAgeSeconds: true, parallelizationFactor: true, partitionThreshold: true, partitions: true }));
  return {
    // DynamoDB Streams mappings: batch 1–10000, window 0–300 s, parallelization 1–10.
    batchSize: fo.int('batchSize', { fallback: 100, min: 1, max: 10000 }),
    batchWindowSeconds: fo.int('batchWindowSeconds', { fallback: 0, min: 0, max: 300 }),
    // Bounded on purpose: -1 (the AWS default, "forever") would let one poison batch block the
    // shard until the record expires after 24 h.
    maxRetryAttempts: fo.int('maxRetryAttempts', { fallback: 5, min: 0, max: 10000 }),
    maxRecordAgeSeconds: fo.int('maxRecordAgeSeconds', { fallback: 3600, min: 60, max: 604800 }),
    parallelizationFactor: fo.int('parallelizationFactor', { fallback: 1, min: 1, max: 10 }),
    // The bounds loadConfig applies to FANOUT_PARTITION_THRESHOLD / FANOUT_PARTITIONS.
    partitionThreshold: fo.int('partitionThreshold', { fallback: PARTITION_DEFAULTS.threshold, min: 2, max: 10_000_000 }),
    partitions: fo.int('partitions', { fallback: PARTITION_DEFAULTS.partitions, min: 1, max: MAX_PARTITIONS }),
  };
}

function readFleet(stack: StackName, top: Reader): StackConfig['fleet'] {
  const fl = top.section('fleet').only(keysOf<Section<'fleet'>>({
    vpc: true, vpcId: true, subnetIds: true, natGateways: true, instanceType: true, minSize: true, maxSize: true, desiredCapacity: true, nodeMajor: true, leaseReleaseSeconds: true, ssm: true,
  }));
  const vpc = fl.oneOf<FleetVpc>('vpc', ['default', 'dedicated', 'existing'], stack === 'prod' ? 'dedicated' : 'default');
  const minSize = fl.int('minSize', { fallback: stack === 'prod' ? 2 : 1, min: 0, max: 100 });
  const maxSize = fl.int('maxSize', { fallback: stack === 'prod' ? 4 : 1, min: 1, max: 100 });
  const fleet = {
    vpc,
    natGateways: fl.oneOf('natGateways', ['single', 'onePerAz'] as const, 'single'),
    instanceType: fl.str('instanceType', 't4g.small'),
    minSize,
    maxSize,
    desiredCapacity: fl.int('desiredCapacity', { fallback: minSize, min: 0, max: 100 }),
    nodeMajor: fl.oneOf('nodeMajor', FLEET_NODE_MAJORS, 22),
    // The termination hook's heartbeat (leaseReleaseSeconds + margin) must stay within what AWS
    // accepts, or PutLifecycleHook fails halfway through `pulumi up`, after the group exists.
    leaseReleaseSeconds: fl.int('leaseReleaseSeconds', {
      fallback: 120,
      min: 30,
      max: LIFECYCLE_HOOK_MAX_SECONDS - LIFECYCLE_HOOK_MARGIN_SECONDS,
      why: `the termination lifecycle hook waits leaseReleaseSeconds + ${LIFECYCLE_HOOK_MARGIN_SECONDS} s and AWS caps a hook's heartbeat timeout at ${LIFECYCLE_HOOK_MAX_SECONDS} s`,
    }),
    // Session Manager shell access: on by default for dev, off on prod unless asked for.
    ssm: fl.bool('ssm', stack !== 'prod'),
    vpcId: fl.input('vpcId', (v, fail) => (typeof v === 'string' && /^vpc-[0-9a-f]+$/.test(v) ? v : fail(`is ${JSON.stringify(v)}; expected a VPC id (vpc-…)`))),
    subnetIds: fl.input('subnetIds', (v, fail) =>
      Array.isArray(v) && v.length > 0 && v.every((x) => isResourceInput(x) || (typeof x === 'string' && /^subnet-[0-9a-f]+$/.test(x)))
        ? (v as Input<string>[])
        : fail(`is ${JSON.stringify(v)}; expected a non-empty list of subnet ids (subnet-…)`),
    ),
  };
  if (fleet.minSize > fleet.maxSize) throw new ConfigError(key('fleet.minSize'), `is ${fleet.minSize}, above fleet.maxSize ${fleet.maxSize}`);
  if (fleet.desiredCapacity < fleet.minSize || fleet.desiredCapacity > fleet.maxSize) {
    throw new ConfigError(key('fleet.desiredCapacity'), `is ${fleet.desiredCapacity}; expected between fleet.minSize ${fleet.minSize} and fleet.maxSize ${fleet.maxSize}`);
  }
  // The fleet runs arm64 (Graviton) AMIs; an x86 instance type would not boot them.
  if (!/^[a-z]+\d+g[a-z]*\.[a-z0-9]+$/.test(fleet.instanceType)) {
    throw new ConfigError(key('fleet.instanceType'), `is "${fleet.instanceType}"; expected an arm64 (Graviton) type such as t4g.small or m7g.medium`);
  }
  if (fl.has('natGateways') && vpc !== 'dedicated') {
    throw new ConfigError(key('fleet.natGateways'), `only applies to fleet.vpc dedicated (${vpc === 'default' ? 'the default VPC has public subnets only' : 'an existing VPC brings its own routes'})`);
  }
  for (const k of ['vpcId', 'subnetIds'] as const) {
    if (vpc === 'existing' && fleet[k] === undefined) throw new ConfigError(key(`fleet.${k}`), 'is required when fleet.vpc is existing');
    if (vpc !== 'existing' && fleet[k] !== undefined) throw new ConfigError(key(`fleet.${k}`), `only applies to fleet.vpc existing (fleet.vpc is ${vpc})`);
  }
  return fleet;
}

/**
 * Default delivery latency p99 bound: a DynamoDB stream hands a change to Lambda within about a
 * second and a healthy fan-out posts within milliseconds, so 5 s at p99 for 5 minutes means the
 * stream is behind or deliveries are being retried, not noise.
 */
export const DEFAULT_DELIVERY_LATENCY_P99_MS = 5000;

function readAlarms(top: Reader): StackConfig['alarms'] {
  const a = top.section('alarms').only(keysOf<Section<'alarms'>>({ email: true, iteratorAgeMs: true, deliveryLatencyP99Ms: true, topicArn: true }));
  const email = a.optionalStr('email');
  if (email !== undefined && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) throw new ConfigError(key('alarms.email'), `is "${email}"; expected an e-mail address`);
  return {
    email,
    iteratorAgeMs: a.int('iteratorAgeMs', { fallback: 60_000, min: 1000, max: 86_400_000 }),
    deliveryLatencyP99Ms: a.int('deliveryLatencyP99Ms', { fallback: DEFAULT_DELIVERY_LATENCY_P99_MS, min: 100, max: 3_600_000 }),
    topicArn: a.input('topicArn', (v, fail) => (typeof v === 'string' && /^arn:[a-z-]+:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$/.test(v) ? v : fail(`is ${JSON.stringify(v)}; expected an SNS topic ARN`))),
  };
}

function readSink(top: Reader): StackConfig['sink'] {
  const sink = { url: top.section('sink').only(['url']).optionalUrl('url', ['https']), credentials: top.optionalStr('sinkCredentials') };
  if (sink.credentials && !sink.url) throw new ConfigError(key('sinkCredentials'), 'is set but sink.url is not');
  return sink;
}

/**
 * Validates the stack's configuration. `values` holds the keys WITHOUT the `realtime-gateway:`
 * prefix: plaintext strings as Pulumi hands them to the program (it decrypts secrets before the
 * program runs), or the typed `StackSettings` a program passes to the component.
 */
export function parseStackConfig(stackName: string, values: StackSettings | Readonly<Record<string, unknown>>): StackConfig {
  if (stackName !== 'dev' && stackName !== 'prod') {
    throw new ConfigError('stack', `is "${stackName}"; this program defines the stacks dev and prod (Pulumi.dev.yaml, Pulumi.prod.yaml)`);
  }
  const stack: StackName = stackName;
  const top = Reader.top(values as Readonly<Record<string, unknown>>).only(CONFIG_KEYS);
  return {
    stack,
    prefix: `rtg-${stack}`,
    ...readAccess(stack, top),
    ...readSubscribers(stack, top),
    ...readRetention(stack, top),
    lambda: readLambda(top),
    websocket: readWebsocket(stack, top),
    http: { throttle: readThrottle(top.section('http').only(THROTTLE_KEYS), { burstLimit: 200, rateLimit: 500 }) },
    fanout: readFanout(top),
    fleet: readFleet(stack, top),
    alarms: readAlarms(top),
    sink: readSink(top),
  };
}

/** The sizing of one function: its override, or the stack default. */
export function lambdaSizing(config: StackConfig, fn: string): LambdaSizing {
  return config.lambda.overrides[fn] ?? { memoryMb: config.lambda.memoryMb, timeoutSeconds: config.lambda.timeoutSeconds };
}

/** The project's keys from a full Pulumi config map (`realtime-gateway:x` → `x`). */
export function projectValues(all: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(all)) {
    if (k.startsWith(`${PROJECT}:`)) out[k.slice(PROJECT.length + 1)] = v;
  }
  return out;
}
