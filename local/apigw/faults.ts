import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendError } from './management-api';
import { QuotaSpecError, type LatencySpec, type QuotaSpec } from './quota';

/**
 * Fault injection for the `@connections` management API, so a backend (ours or anyone's) can be
 * tested against what API Gateway does under load: throttling, transient 5xx, slow answers, one
 * connection that cannot be written to.
 *
 *   PUT    {managementUrl}/_emulator/faults   {"rate":0.2,"statuses":[429,500],"latencyMs":[20,40],"connections":{"<id>":500}}
 *   GET    {managementUrl}/_emulator/faults   → the faults in force ({} when none)
 *   DELETE {managementUrl}/_emulator/faults   → 204, no faults
 *   GET    {managementUrl}/_emulator/connections → {"connections":[{"connectionId","connectedAt","sourceIp","queryString"}]}
 *   PUT/GET/DELETE {managementUrl}/_emulator/quota     {"rps":2000,"burst":1000}   (the account's throttle, quota.ts)
 *   PUT/GET/DELETE {managementUrl}/_emulator/latency   {"min":25,"max":35}         (the round trip, quota.ts)
 *
 * - `rate`: the fraction of every `@connections` call (POST, GET, DELETE: AWS throttles them all)
 *   that fails, each with a status drawn from `statuses` (default [500]).
 * - `latencyMs`: added before each call is answered; a number or a [min, max] range (uniform).
 * - `connections`: every PostToConnection to that id fails with that status. GET and DELETE of it
 *   still work, so a backend's recovery (closing the connection) can be observed.
 * Failures carry API Gateway's error shape: the status, `x-amzn-errortype` (the SDK names the
 * exception from it) and `{"message":…}` with the gateway's text, e.g. 429
 * `LimitExceededException` "Too Many Requests".
 */

/** The error API Gateway answers with, per status, as `@aws-sdk/client-apigatewaymanagementapi` reads it. */
export const AWS_ERRORS: Readonly<Record<number, { readonly type: string; readonly message: string }>> = {
  400: { type: 'BadRequestException', message: 'Bad Request' },
  403: { type: 'ForbiddenException', message: 'Forbidden' },
  410: { type: 'GoneException', message: 'Gone' },
  413: { type: 'PayloadTooLargeException', message: 'Request Entity Too Large' },
  429: { type: 'LimitExceededException', message: 'Too Many Requests' },
  500: { type: 'InternalServerErrorException', message: 'Internal server error' },
  502: { type: 'BadGatewayException', message: 'Bad Gateway' },
  503: { type: 'ServiceUnavailableException', message: 'Service Unavailable' },
  504: { type: 'GatewayTimeoutException', message: 'Endpoint request timed out' },
};

export interface FaultSpec {
  readonly rate: number;
  readonly statuses: readonly number[];
  readonly latencyMs: readonly [number, number];
  readonly connections: Readonly<Record<string, number>>;
}

/** A fault specification that cannot be honoured; the message names the field. */
export class FaultSpecError extends Error {
  readonly code = 'fault_spec_invalid';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`faults.${field}: ${message}`);
    this.name = 'FaultSpecError';
  }
}

const MAX_LATENCY_MS = 60_000;
const KNOWN_FIELDS = new Set(['rate', 'statuses', 'latencyMs', 'connections']);

function status(field: string, v: unknown): number {
  if (typeof v !== 'number' || !(v in AWS_ERRORS)) {
    throw new FaultSpecError(field, `${JSON.stringify(v)} is not one of the statuses API Gateway answers with: ${Object.keys(AWS_ERRORS).join(', ')}`);
  }
  return v;
}

function latencyMs(v: unknown): [number, number] {
  const pair = typeof v === 'number' ? [v, v] : v;
  const ok = (n: unknown) => typeof n === 'number' && Number.isFinite(n) && n >= 0 && n <= MAX_LATENCY_MS;
  if (!Array.isArray(pair) || pair.length !== 2 || !ok(pair[0]) || !ok(pair[1]) || pair[0] > pair[1]) {
    throw new FaultSpecError('latencyMs', `expected milliseconds (0–${MAX_LATENCY_MS}) or a [min, max] pair with min ≤ max, got ${JSON.stringify(v)}`);
  }
  return [pair[0], pair[1]];
}

/** Validates a fault specification (the PUT body, or what `parseFaultsFlag` read). */
export function parseFaults(input: unknown): FaultSpec {
  if (!input || typeof input !== 'object' || Array.isArray(input)) throw new FaultSpecError('(body)', 'expected a JSON object');
  const o = input as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!KNOWN_FIELDS.has(k)) throw new FaultSpecError(k, `unknown field; expected ${[...KNOWN_FIELDS].join(', ')}`);
  }
  const rate = o.rate ?? 0;
  if (typeof rate !== 'number' || !(rate >= 0 && rate <= 1)) throw new FaultSpecError('rate', `expected a fraction from 0 to 1, got ${JSON.stringify(o.rate)}`);
  const statuses = o.statuses ?? [500];
  if (!Array.isArray(statuses) || statuses.length === 0) throw new FaultSpecError('statuses', `expected a non-empty array, got ${JSON.stringify(o.statuses)}`);
  const connections: Record<string, number> = {};
  if (o.connections !== undefined) {
    if (!o.connections || typeof o.connections !== 'object' || Array.isArray(o.connections)) {
      throw new FaultSpecError('connections', 'expected an object of connectionId → status');
    }
    for (const [id, s] of Object.entries(o.connections)) connections[id] = status(`connections.${id}`, s);
  }
  return {
    rate,
    statuses: statuses.map((s, i) => status(`statuses[${i}]`, s)),
    latencyMs: latencyMs(o.latencyMs ?? 0),
    connections,
  };
}

/** `--faults rate=0.2,statuses=429|500,latencyMs=20|40` (connections are chosen at run time, by PUT). */
export function parseFaultsFlag(flag: string): FaultSpec {
  const o: Record<string, unknown> = {};
  for (const part of flag.split(',').filter(Boolean)) {
    const [k, v, ...rest] = part.split('=');
    if (v === undefined || rest.length) throw new FaultSpecError(k, `expected key=value in --faults, got ${JSON.stringify(part)}`);
    const nums = v.split('|').map((x) => (x.trim() === '' ? NaN : Number(x)));
    if (k === 'rate') o.rate = nums.length === 1 ? nums[0] : v;
    else if (k === 'statuses') o.statuses = nums;
    else if (k === 'latencyMs') o.latencyMs = nums.length === 1 ? nums[0] : nums;
    else throw new FaultSpecError(k, 'unknown key in --faults; expected rate, statuses, latencyMs');
  }
  return parseFaults(o);
}

export class FaultInjector {
  private spec: FaultSpec | undefined;

  constructor(
    initial?: FaultSpec,
    private readonly random: () => number = Math.random,
  ) {
    this.spec = initial;
  }

  set(spec: FaultSpec): void {
    this.spec = spec;
  }
  clear(): void {
    this.spec = undefined;
  }
  current(): FaultSpec | undefined {
    return this.spec;
  }

  /** Extra delay before a call is answered. */
  latency(): number {
    if (!this.spec) return 0;
    const [min, max] = this.spec.latencyMs;
    return min + this.random() * (max - min);
  }

  /** The error one call fails with (API Gateway's shape), or undefined when it goes through. */
  failure(method: string, connectionId: string): { status: number; type: string; message: string } | undefined {
    const s = this.spec;
    if (!s) return undefined;
    let status: number | undefined;
    if (method === 'POST' && Object.hasOwn(s.connections, connectionId)) status = s.connections[connectionId];
    else if (s.rate > 0 && this.random() < s.rate) status = s.statuses[Math.floor(this.random() * s.statuses.length)];
    return status === undefined ? undefined : { status, ...AWS_ERRORS[status] };
  }
}

export interface ConnectionListing {
  readonly connectionId: string;
  readonly connectedAt: number;
  readonly sourceIp: string;
  readonly queryString: string;
}

export interface EmulatorControlOptions {
  readonly stage: string;
  readonly faults: FaultInjector;
  /** The `@connections` quota (quota.ts): PUT replaces the bucket (full again), DELETE lifts it. */
  readonly quota: Setting<QuotaSpec>;
  /** The added round trip (quota.ts). */
  readonly latency: Setting<LatencySpec>;
  readonly connections: () => ConnectionListing[];
  readonly requestId: () => string;
}

/** A run-time setting of the emulator: what GET shows, what PUT validates and puts in force (returning it), what DELETE lifts. */
export interface Setting<T> {
  current(): unknown;
  set(body: unknown): T;
  clear(): void;
}

const RESOURCES: Record<string, (opts: EmulatorControlOptions) => Setting<unknown>> = {
  faults: (opts) => ({
    current: () => opts.faults.current(),
    set: (body) => {
      const spec = parseFaults(body);
      opts.faults.set(spec);
      return spec;
    },
    clear: () => opts.faults.clear(),
  }),
  quota: (opts) => opts.quota,
  latency: (opts) => opts.latency,
};

const BODY_LIMIT = 64 * 1024;

/** Routes `/{stage}/_emulator/…`; returns false for any other path. */
export function handleEmulatorRequest(opts: EmulatorControlOptions, req: IncomingMessage, res: ServerResponse): boolean {
  const path = (req.url ?? '/').split('?')[0];
  const prefix = `/${opts.stage}/_emulator/`;
  if (!path.startsWith(prefix)) return false;
  const what = path.slice(prefix.length);
  const method = req.method ?? 'GET';
  const json = (status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'x-amzn-requestid': opts.requestId() });
    res.end(text);
  };
  const bad = (status: number, type: string, message: string, extra?: Record<string, string>) => {
    req.resume();
    sendError(res, status, type, message, opts.requestId(), extra);
  };

  if (what === 'connections') {
    if (method !== 'GET') bad(405, 'MethodNotAllowedException', `${method} is not allowed on _emulator/connections; use GET`, { allow: 'GET' });
    else json(200, { connections: opts.connections().map((c) => ({ ...c, connectedAt: new Date(c.connectedAt).toISOString(), queryString: redactToken(c.queryString) })) });
    return true;
  }
  const resource = RESOURCES[what];
  if (!resource) {
    bad(404, 'NotFoundException', `No emulator resource ${JSON.stringify(what)}; use ${[...Object.keys(RESOURCES), 'connections'].map((r) => `_emulator/${r}`).join(', ')}`);
    return true;
  }
  const setting = resource(opts);
  if (method === 'GET') json(200, setting.current() ?? {});
  else if (method === 'DELETE') {
    setting.clear();
    res.writeHead(204, { 'x-amzn-requestid': opts.requestId() });
    res.end();
  } else if (method === 'PUT') {
    readJson(req, what).then(
      (body) => {
        try {
          json(200, setting.set(body));
        } catch (err) {
          if (!(err instanceof FaultSpecError) && !(err instanceof QuotaSpecError)) throw err;
          bad(400, 'BadRequestException', err.message);
        }
      },
      (err: Error) => bad(400, 'BadRequestException', err.message),
    );
  } else {
    bad(405, 'MethodNotAllowedException', `${method} is not allowed on _emulator/${what}; use PUT, GET or DELETE`, { allow: 'PUT, GET, DELETE' });
  }
  return true;
}

/** A `?token=` JWT is a credential: listed as `token=***`, never in clear. */
function redactToken(query: string): string {
  return query.replace(/(^|&)(token|access_token)=[^&]*/gi, '$1$2=***');
}

function readJson(req: IncomingMessage, what: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= BODY_LIMIT) chunks.push(c);
    });
    req.on('end', () => {
      if (size > BODY_LIMIT) return reject(new Error(`${what} body exceeds ${BODY_LIMIT} bytes`));
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        reject(new Error(`${what} body is not valid JSON`));
      }
    });
    req.on('error', reject);
  });
}
