/**
 * The account's `@connections` quota and the round trip to API Gateway, as the emulator models
 * them, so a fan-out (ours or anyone's) can be tested against what limits it on AWS:
 *
 * - API Gateway throttles management API calls per account and region with a token bucket
 *   (10,000 requests/s steady, 5,000 burst by default, shared by every API): a call that finds the
 *   bucket empty is answered 429 `LimitExceededException` `{"message":"Too Many Requests"}`.
 *   `TokenBucket` is that bucket; every `@connections` call (POST, GET, DELETE) takes one token.
 * - A same-region PostToConnection takes tens of milliseconds. `LatencyModel` draws each call's
 *   added round trip: fixed, uniform in [min, max], or a median with normal jitter.
 *
 * Both are off unless configured (`--quota-rps`/`--quota-burst`, `--latency-ms`, or
 * `PUT _emulator/quota` / `PUT _emulator/latency`).
 */

export interface QuotaSpec {
  /** Steady rate: tokens added per second. */
  readonly rps: number;
  /** Bucket capacity: how many calls may go at once after a quiet period. */
  readonly burst: number;
}

/** A quota or latency specification that cannot be honoured; the message names the field. */
export class QuotaSpecError extends Error {
  readonly code = 'quota_spec_invalid';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'QuotaSpecError';
  }
}

const MAX_RPS = 1_000_000;
const MAX_LATENCY_MS = 60_000;

function positiveNumber(field: string, v: unknown, max: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > max) {
    throw new QuotaSpecError(field, `expected a number above 0 and at most ${max}, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** Validates `{"rps":2000,"burst":1000}` (burst defaults to rps: one second's worth, as AWS's 10,000/5,000 is of the same order). */
export function parseQuota(input: unknown): QuotaSpec {
  if (!input || typeof input !== 'object' || Array.isArray(input)) throw new QuotaSpecError('quota', 'expected a JSON object {"rps":N,"burst":N}');
  const o = input as Record<string, unknown>;
  for (const k of Object.keys(o)) if (k !== 'rps' && k !== 'burst') throw new QuotaSpecError(`quota.${k}`, 'unknown field; expected rps, burst');
  const rps = positiveNumber('quota.rps', o.rps, MAX_RPS);
  const burst = o.burst === undefined ? rps : positiveNumber('quota.burst', o.burst, MAX_RPS);
  if (!Number.isInteger(burst)) throw new QuotaSpecError('quota.burst', `expected a whole number of requests, got ${burst}`);
  return { rps, burst };
}

/**
 * A token bucket: starts full (`burst` tokens), refills at `rps` tokens per second up to `burst`,
 * and each call takes one token or is throttled. Counts what it admitted and refused so a
 * benchmark can read the share of calls answered 429.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  admitted = 0;
  throttled = 0;

  constructor(
    readonly spec: QuotaSpec,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = spec.burst;
    this.last = now();
  }

  /** True when the call may go; false when it must be answered 429. */
  take(): boolean {
    const t = this.now();
    this.tokens = Math.min(this.spec.burst, this.tokens + ((t - this.last) / 1000) * this.spec.rps);
    this.last = t;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      this.admitted++;
      return true;
    }
    this.throttled++;
    return false;
  }

  /** What `GET _emulator/quota` shows. */
  status(): QuotaSpec & { admitted: number; throttled: number } {
    return { ...this.spec, admitted: this.admitted, throttled: this.throttled };
  }
}

/** The added round trip: `fixed` ms, `uniform` in [min, max], or `median` ± normal `jitter` (standard deviation), never below 0. */
export type LatencySpec =
  | { readonly kind: 'fixed'; readonly ms: number }
  | { readonly kind: 'uniform'; readonly min: number; readonly max: number }
  | { readonly kind: 'median'; readonly median: number; readonly jitter: number };

function ms(field: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > MAX_LATENCY_MS) {
    throw new QuotaSpecError(field, `expected milliseconds from 0 to ${MAX_LATENCY_MS}, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** Validates `{"ms":30}`, `{"min":25,"max":35}` or `{"median":30,"jitter":5}` (the `PUT _emulator/latency` body). */
export function parseLatency(input: unknown): LatencySpec {
  if (!input || typeof input !== 'object' || Array.isArray(input)) throw new QuotaSpecError('latency', 'expected {"ms":N}, {"min":N,"max":N} or {"median":N,"jitter":N}');
  // A LatencySpec (with its `kind`) passes as well as a PUT body.
  const { kind: _kind, ...o } = input as Record<string, unknown>;
  const keys = Object.keys(o).sort().join(',');
  if (keys === 'ms') return { kind: 'fixed', ms: ms('latency.ms', o.ms) };
  if (keys === 'max,min') {
    const min = ms('latency.min', o.min);
    const max = ms('latency.max', o.max);
    if (min > max) throw new QuotaSpecError('latency.min', `is ${min}, above max ${max}`);
    return { kind: 'uniform', min, max };
  }
  if (keys === 'jitter,median') return { kind: 'median', median: ms('latency.median', o.median), jitter: ms('latency.jitter', o.jitter) };
  throw new QuotaSpecError('latency', `expected {"ms":N}, {"min":N,"max":N} or {"median":N,"jitter":N}, got fields ${JSON.stringify(Object.keys(o))}`);
}

/** `--latency-ms 30` (fixed), `25,35` (uniform), `30~5` (median 30, jitter 5). */
export function parseLatencyFlag(flag: string): LatencySpec {
  const num = (s: string) => (s.trim() === '' ? NaN : Number(s));
  const jitter = flag.split('~');
  if (jitter.length === 2) return parseLatency({ median: num(jitter[0]), jitter: num(jitter[1]) });
  const range = flag.split(',');
  if (range.length === 2) return parseLatency({ min: num(range[0]), max: num(range[1]) });
  if (range.length === 1 && jitter.length === 1) return parseLatency({ ms: num(flag) });
  throw new QuotaSpecError('--latency-ms', `expected MS, MIN,MAX or MEDIAN~JITTER, got ${JSON.stringify(flag)}`);
}

/** `--quota-rps 2000 [--quota-burst 1000]`. */
export function parseQuotaFlags(rps: string, burst: string | undefined): QuotaSpec {
  const num = (name: string, s: string) => {
    if (!/^\d+(\.\d+)?$/.test(s)) throw new QuotaSpecError(name, `expected a positive number, got ${JSON.stringify(s)}`);
    return Number(s);
  };
  return parseQuota({ rps: num('--quota-rps', rps), ...(burst === undefined ? {} : { burst: num('--quota-burst', burst) }) });
}

/** Draws each call's added latency from a `LatencySpec`. */
export class LatencyModel {
  constructor(
    readonly spec: LatencySpec,
    private readonly random: () => number = Math.random,
  ) {}

  sample(): number {
    const s = this.spec;
    if (s.kind === 'fixed') return s.ms;
    if (s.kind === 'uniform') return s.min + this.random() * (s.max - s.min);
    // Box–Muller: a normal draw, so half the calls are faster than the median and half slower.
    const u = 1 - this.random();
    const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.random());
    return Math.min(MAX_LATENCY_MS, Math.max(0, s.median + s.jitter * z));
  }
}
