import { ConfigError } from '../lib/errors';
import { FUNCTIONS, type WebSocketRouteKey } from '../lib/functions';

/**
 * Typed, validated stack configuration (`Pulumi.<stack>.yaml`, keys under `realtime-gateway:`).
 *
 * `parseStackConfig` is pure: it takes the plaintext key → value map Pulumi hands the program
 * (structured values arrive as JSON strings) and either returns a `StackConfig` or throws a
 * ConfigError whose key is the full config key (`realtime-gateway:fleet.maxSize`), so
 * `pulumi preview` stops before any resource is registered and says exactly what to fix.
 * Unknown keys are refused too: a typo would otherwise silently fall back to a default.
 */

export const PROJECT = 'realtime-gateway';

export type StackName = 'dev' | 'prod';
export type SubscriberAuth = 'none' | 'jwt';
export type HttpAuth = 'iam' | 'jwt' | 'none';

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
  readonly jwt: {
    readonly issuer?: string;
    readonly audience?: string;
    readonly jwksUrl?: string;
    readonly rs256PublicKey?: string;
    readonly topicsClaim?: string;
    readonly publishClaim?: string;
    readonly sendToUserClaim?: string;
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
  };
  readonly fleet: {
    readonly vpc: 'default' | 'dedicated';
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

const WS_ROUTES: readonly WebSocketRouteKey[] = ['$connect', '$disconnect', '$default', 'subscribe', 'unsubscribe', 'ping', 'publish'];

/** Keys this program reads; anything else under `realtime-gateway:` is a typo. */
export const CONFIG_KEYS = [
  'authMode',
  'httpAuth',
  'jwt',
  'jwtHs256Secret',
  'itemKeys',
  'appActions',
  'upstreamAllowHosts',
  'secretPrefix',
  'connectionTtlSeconds',
  'historyTtlSeconds',
  'fanoutConcurrency',
  'logRetentionDays',
  'dataProtection',
  'lambda',
  'websocket',
  'http',
  'fanout',
  'fleet',
  'alarms',
  'sink',
  'sinkCredentials',
] as const;

/** Keys whose values must be set with `pulumi config set --secret`. */
export const SECRET_KEYS = ['jwtHs256Secret', 'sinkCredentials'] as const;

const key = (path: string) => `${PROJECT}:${path}`;

type Obj = Record<string, unknown>;

/** Reads one structured value, naming the dotted path in every error. */
class Reader {
  constructor(
    private readonly path: string,
    private readonly obj: Obj,
  ) {}

  static parse(path: string, raw: string | undefined): Reader {
    if (raw === undefined || raw.trim() === '') return new Reader(path, {});
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch {
      throw new ConfigError(key(path), `is not a map; expected YAML like "${path}: { ... }"`);
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      throw new ConfigError(key(path), 'is not a map of settings');
    }
    return new Reader(path, v as Obj);
  }

  /** Refuses members this program does not read. */
  only(allowed: readonly string[]): this {
    for (const k of Object.keys(this.obj)) {
      if (!allowed.includes(k)) {
        throw new ConfigError(key(`${this.path}.${k}`), `is not a known setting; expected one of ${allowed.join(', ')}`);
      }
    }
    return this;
  }

  child(name: string): Reader {
    const v = this.obj[name];
    if (v === undefined) return new Reader(`${this.path}.${name}`, {});
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      throw new ConfigError(key(`${this.path}.${name}`), 'is not a map of settings');
    }
    return new Reader(`${this.path}.${name}`, v as Obj);
  }

  keys(): string[] {
    return Object.keys(this.obj);
  }

  int(name: string, opts: IntOptions): number {
    return checkInt(`${this.path}.${name}`, this.obj[name], opts);
  }

  str(name: string, fallback?: string): string {
    const v = this.obj[name] ?? fallback;
    if (v === undefined) throw new ConfigError(key(`${this.path}.${name}`), 'is required but not set');
    if (typeof v !== 'string' || v.trim() === '') throw new ConfigError(key(`${this.path}.${name}`), 'is not a non-empty string');
    return v.trim();
  }

  optionalStr(name: string): string | undefined {
    return this.obj[name] === undefined ? undefined : this.str(name);
  }

  oneOf<T extends string | number>(name: string, allowed: readonly T[], fallback: T): T {
    const v = this.obj[name] ?? fallback;
    if (!(allowed as readonly unknown[]).includes(v)) {
      throw new ConfigError(key(`${this.path}.${name}`), `is ${JSON.stringify(v)}; expected one of ${allowed.join(', ')}`);
    }
    return v as T;
  }

  bool(name: string, fallback: boolean): boolean {
    const v = this.obj[name] ?? fallback;
    if (typeof v !== 'boolean') throw new ConfigError(key(`${this.path}.${name}`), `is ${JSON.stringify(v)}; expected true or false`);
    return v;
  }
}

interface IntOptions {
  readonly fallback?: number;
  readonly min: number;
  readonly max: number;
  /** Why the range is what it is, appended to an out-of-range message. */
  readonly why?: string;
}

function checkInt(path: string, raw: unknown, opts: IntOptions): number {
  let v = raw ?? opts.fallback;
  if (v === undefined) throw new ConfigError(key(path), `is required; expected an integer from ${opts.min} to ${opts.max}`);
  if (typeof v === 'string' && /^-?\d+$/.test(v.trim())) v = Number(v.trim());
  if (typeof v !== 'number' || !Number.isInteger(v)) {
    throw new ConfigError(key(path), `is ${JSON.stringify(v)}; expected an integer from ${opts.min} to ${opts.max}`);
  }
  if (v < opts.min || v > opts.max) {
    throw new ConfigError(key(path), `is ${v}; expected an integer from ${opts.min} to ${opts.max}${opts.why ? `: ${opts.why}` : ''}`);
  }
  return v;
}

function checkUrl(path: string, value: string | undefined, protocols: readonly string[]): string | undefined {
  if (value === undefined) return undefined;
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new ConfigError(key(path), `is "${value}"; expected a ${protocols.join('/')} URL`);
  }
  if (!protocols.includes(u.protocol.replace(/:$/, ''))) throw new ConfigError(key(path), `is "${value}"; expected a ${protocols.join('/')} URL`);
  // Returned verbatim: a JWT issuer must match the token's `iss` claim character for character.
  return value;
}

/** A list setting: YAML list (arrives as JSON) or a comma-separated string. */
function list(path: string, raw: string | undefined): string[] {
  if (raw === undefined || raw.trim() === '') return [];
  const t = raw.trim();
  if (t.startsWith('[')) {
    let v: unknown;
    try {
      v = JSON.parse(t);
    } catch {
      throw new ConfigError(key(path), 'is not a valid list');
    }
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new ConfigError(key(path), 'is not a list of strings');
    return (v as string[]).map((x) => x.trim()).filter(Boolean);
  }
  return t
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
}

function throttle(r: Reader, fallback: Throttle): Throttle {
  // API Gateway's account-level default is 5000 burst / 10000 rps; a stage cannot exceed it.
  return {
    burstLimit: r.int('burstLimit', { fallback: fallback.burstLimit, min: 0, max: 5000 }),
    rateLimit: r.int('rateLimit', { fallback: fallback.rateLimit, min: 0, max: 10000 }),
  };
}

/**
 * Validates the stack's configuration. `values` holds the keys WITHOUT the `realtime-gateway:`
 * prefix, as plaintext strings (Pulumi decrypts secrets before the program runs).
 */
export function parseStackConfig(stackName: string, values: Readonly<Record<string, string | undefined>>): StackConfig {
  if (stackName !== 'dev' && stackName !== 'prod') {
    throw new ConfigError('stack', `is "${stackName}"; this program defines the stacks dev and prod (Pulumi.dev.yaml, Pulumi.prod.yaml)`);
  }
  const stack: StackName = stackName;
  for (const k of Object.keys(values)) {
    if (!(CONFIG_KEYS as readonly string[]).includes(k)) {
      throw new ConfigError(key(k), `is not a known setting; expected one of ${CONFIG_KEYS.join(', ')}`);
    }
  }
  const top = (k: string) => {
    const v = values[k];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const oneOf = <T extends string>(k: string, allowed: readonly T[]): T => {
    const v = top(k);
    if (v === undefined) throw new ConfigError(key(k), `is required; expected one of ${allowed.join(', ')}`);
    if (!(allowed as readonly string[]).includes(v)) throw new ConfigError(key(k), `is "${v}"; expected one of ${allowed.join(', ')}`);
    return v as T;
  };

  const authMode = oneOf<SubscriberAuth>('authMode', ['none', 'jwt']);
  const httpAuth = oneOf<HttpAuth>('httpAuth', ['iam', 'jwt', 'none']);
  if (stack === 'prod' && authMode === 'none') {
    throw new ConfigError(key('authMode'), 'is "none", which is refused on the prod stack: anyone could connect as any user; use jwt');
  }
  if (stack === 'prod' && httpAuth === 'none') {
    throw new ConfigError(key('httpAuth'), 'is "none", which is refused on the prod stack: the publish and control API would be open; use iam or jwt');
  }

  const j = Reader.parse('jwt', top('jwt')).only(['issuer', 'audience', 'jwksUrl', 'rs256PublicKey', 'topicsClaim', 'publishClaim', 'sendToUserClaim']);
  const jwt = {
    issuer: checkUrl('jwt.issuer', j.optionalStr('issuer'), ['https']),
    audience: j.optionalStr('audience'),
    jwksUrl: checkUrl('jwt.jwksUrl', j.optionalStr('jwksUrl'), ['https']),
    rs256PublicKey: j.optionalStr('rs256PublicKey'),
    topicsClaim: j.optionalStr('topicsClaim'),
    publishClaim: j.optionalStr('publishClaim'),
    sendToUserClaim: j.optionalStr('sendToUserClaim'),
    hs256Secret: top('jwtHs256Secret'),
  };
  if (authMode === 'jwt' && !jwt.hs256Secret && !jwt.rs256PublicKey && !jwt.jwksUrl) {
    throw new ConfigError(key('jwtHs256Secret'), 'authMode jwt needs jwtHs256Secret (a --secret), jwt.rs256PublicKey or jwt.jwksUrl');
  }
  // Same rule as lib/config (JWT_HS256_SECRET with an RS256 source), refused before anything is created.
  if (jwt.hs256Secret && (jwt.rs256PublicKey || jwt.jwksUrl)) {
    throw new ConfigError(key('jwtHs256Secret'), `is set together with ${jwt.rs256PublicKey ? 'jwt.rs256PublicKey' : 'jwt.jwksUrl'}; set exactly one verification key source`);
  }
  if (jwt.hs256Secret && Buffer.byteLength(jwt.hs256Secret) < 32) {
    throw new ConfigError(key('jwtHs256Secret'), 'is shorter than 32 bytes; HS256 needs a key of at least 256 bits');
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

  const itemKeys = list('itemKeys', top('itemKeys'));
  for (const k of itemKeys) {
    // The same rule loadConfig applies to ITEM_KEYS, checked here so the preview fails, not the Lambda.
    if (!/^[A-Za-z][A-Za-z0-9_-]{0,63}$/.test(k)) throw new ConfigError(key('itemKeys'), `contains "${k}"; expected identifiers`);
  }
  const upstreamAllowHosts = list('upstreamAllowHosts', top('upstreamAllowHosts'));
  const secretPrefix = top('secretPrefix') ?? `${PROJECT}/${stack}/upstream/`;
  if (!/^[A-Za-z0-9/_+=.@-]{1,400}$/.test(secretPrefix) || !secretPrefix.endsWith('/')) {
    throw new ConfigError(key('secretPrefix'), `is "${secretPrefix}"; expected Secrets Manager name characters ending in "/"`);
  }
  const optInt = (k: string, min: number, max: number) => (top(k) === undefined ? undefined : checkInt(k, top(k), { min, max }));

  const logRetentionDays = checkInt('logRetentionDays', top('logRetentionDays'), { fallback: stack === 'prod' ? 90 : 7, min: 1, max: 3653 });
  if (!(LOG_RETENTION_DAYS as readonly number[]).includes(logRetentionDays)) {
    throw new ConfigError(key('logRetentionDays'), `is ${logRetentionDays}; CloudWatch Logs accepts ${LOG_RETENTION_DAYS.join(', ')}`);
  }

  const dp = top('dataProtection');
  if (dp !== undefined && dp !== 'true' && dp !== 'false') throw new ConfigError(key('dataProtection'), `is "${dp}"; expected true or false`);
  const dataProtection = dp === undefined ? stack === 'prod' : dp === 'true';
  if (stack === 'prod' && !dataProtection) {
    throw new ConfigError(key('dataProtection'), 'is false, which is refused on prod: tables keep point-in-time recovery and deletion protection');
  }

  const l = Reader.parse('lambda', top('lambda')).only(['memoryMb', 'timeoutSeconds', 'overrides']);
  // Lambda: 128–10240 MB, 1–900 s.
  const sizing = (r: Reader, fb: LambdaSizing): LambdaSizing => ({
    memoryMb: r.int('memoryMb', { fallback: fb.memoryMb, min: 128, max: 10240 }),
    timeoutSeconds: r.int('timeoutSeconds', { fallback: fb.timeoutSeconds, min: 1, max: 900 }),
  });
  const base = sizing(l, { memoryMb: 256, timeoutSeconds: 10 });
  const ov = l.child('overrides');
  const overrides: Record<string, LambdaSizing> = {};
  for (const name of ov.keys()) {
    const spec = FUNCTIONS.find((f) => f.name === name);
    if (!spec) {
      throw new ConfigError(key(`lambda.overrides.${name}`), `names no function; expected one of ${FUNCTIONS.map((f) => f.name).join(', ')}`);
    }
    overrides[name] = sizing(ov.child(name).only(['memoryMb', 'timeoutSeconds']), base);
  }
  for (const f of FUNCTIONS) {
    const s = overrides[f.name] ?? base;
    // API Gateway stops waiting for an integration after 29 s (WebSocket) / 30 s (HTTP API); a
    // longer timeout only keeps a Lambda running for a caller that has already been answered.
    if (f.trigger.kind !== 'stream' && s.timeoutSeconds > 29) {
      const at = overrides[f.name] ? `lambda.overrides.${f.name}.timeoutSeconds` : 'lambda.timeoutSeconds';
      throw new ConfigError(key(at), `is ${s.timeoutSeconds} for ${f.name}; API Gateway integrations time out after 29 s`);
    }
  }

  const w = Reader.parse('websocket', top('websocket')).only(['stageName', 'accountLogRole', 'burstLimit', 'rateLimit', 'routes']);
  const stageName = w.str('stageName', stack);
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(stageName)) throw new ConfigError(key('websocket.stageName'), `is "${stageName}"; expected letters, digits, - or _`);
  const wsThrottle = throttle(w, { burstLimit: 500, rateLimit: 1000 });
  const wr = w.child('routes').only(WS_ROUTES);
  const routes: Partial<Record<WebSocketRouteKey, Throttle>> = {};
  for (const r of wr.keys() as WebSocketRouteKey[]) routes[r] = throttle(wr.child(r).only(['burstLimit', 'rateLimit']), wsThrottle);

  const h = Reader.parse('http', top('http')).only(['burstLimit', 'rateLimit']);
  const httpThrottle = throttle(h, { burstLimit: 200, rateLimit: 500 });

  const fo = Reader.parse('fanout', top('fanout')).only(['batchSize', 'batchWindowSeconds', 'maxRetryAttempts', 'maxRecordAgeSeconds', 'parallelizationFactor']);
  const fanout = {
    // DynamoDB Streams mappings: batch 1–10000, window 0–300 s, parallelization 1–10.
    batchSize: fo.int('batchSize', { fallback: 100, min: 1, max: 10000 }),
    batchWindowSeconds: fo.int('batchWindowSeconds', { fallback: 0, min: 0, max: 300 }),
    // Bounded on purpose: -1 (the AWS default, "forever") would let one poison batch block the
    // shard until the record expires after 24 h.
    maxRetryAttempts: fo.int('maxRetryAttempts', { fallback: 5, min: 0, max: 10000 }),
    maxRecordAgeSeconds: fo.int('maxRecordAgeSeconds', { fallback: 3600, min: 60, max: 604800 }),
    parallelizationFactor: fo.int('parallelizationFactor', { fallback: 1, min: 1, max: 10 }),
  };

  const fl = Reader.parse('fleet', top('fleet')).only(['vpc', 'natGateways', 'instanceType', 'minSize', 'maxSize', 'desiredCapacity', 'nodeMajor', 'leaseReleaseSeconds', 'ssm']);
  const fleet = {
    vpc: fl.oneOf('vpc', ['default', 'dedicated'] as const, stack === 'prod' ? 'dedicated' : 'default'),
    natGateways: fl.oneOf('natGateways', ['single', 'onePerAz'] as const, 'single'),
    instanceType: fl.str('instanceType', 't4g.small'),
    minSize: fl.int('minSize', { fallback: stack === 'prod' ? 2 : 1, min: 0, max: 100 }),
    maxSize: fl.int('maxSize', { fallback: stack === 'prod' ? 4 : 1, min: 1, max: 100 }),
    desiredCapacity: 0,
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
  };
  fleet.desiredCapacity = fl.int('desiredCapacity', { fallback: fleet.minSize, min: 0, max: 100 });
  if (fleet.minSize > fleet.maxSize) throw new ConfigError(key('fleet.minSize'), `is ${fleet.minSize}, above fleet.maxSize ${fleet.maxSize}`);
  if (fleet.desiredCapacity < fleet.minSize || fleet.desiredCapacity > fleet.maxSize) {
    throw new ConfigError(key('fleet.desiredCapacity'), `is ${fleet.desiredCapacity}; expected between fleet.minSize ${fleet.minSize} and fleet.maxSize ${fleet.maxSize}`);
  }
  // The fleet runs arm64 (Graviton) AMIs; an x86 instance type would not boot them.
  if (!/^[a-z]+\d+g[a-z]*\.[a-z0-9]+$/.test(fleet.instanceType)) {
    throw new ConfigError(key('fleet.instanceType'), `is "${fleet.instanceType}"; expected an arm64 (Graviton) type such as t4g.small or m7g.medium`);
  }
  if (fl.keys().includes('natGateways') && fleet.vpc === 'default') {
    throw new ConfigError(key('fleet.natGateways'), 'only applies to fleet.vpc dedicated (the default VPC has public subnets only)');
  }

  const a = Reader.parse('alarms', top('alarms')).only(['email', 'iteratorAgeMs']);
  const email = a.optionalStr('email');
  if (email !== undefined && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) throw new ConfigError(key('alarms.email'), `is "${email}"; expected an e-mail address`);
  const alarms = { email, iteratorAgeMs: a.int('iteratorAgeMs', { fallback: 60_000, min: 1000, max: 86_400_000 }) };

  const s = Reader.parse('sink', top('sink')).only(['url']);
  const sink = { url: checkUrl('sink.url', s.optionalStr('url'), ['https']), credentials: top('sinkCredentials') };
  if (sink.credentials && !sink.url) throw new ConfigError(key('sinkCredentials'), 'is set but sink.url is not');

  return {
    stack,
    prefix: `rtg-${stack}`,
    authMode,
    httpAuth,
    jwt,
    itemKeys,
    appActions: list('appActions', top('appActions')),
    upstreamAllowHosts,
    secretPrefix,
    connectionTtlSeconds: optInt('connectionTtlSeconds', 60, 7200),
    historyTtlSeconds: optInt('historyTtlSeconds', 60, 30 * 24 * 3600),
    fanoutConcurrency: optInt('fanoutConcurrency', 1, 1024),
    logRetentionDays,
    dataProtection,
    lambda: { ...base, overrides },
    websocket: { stageName, accountLogRole: w.bool('accountLogRole', true), throttle: wsThrottle, routes },
    http: { throttle: httpThrottle },
    fanout,
    fleet,
    alarms,
    sink,
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
