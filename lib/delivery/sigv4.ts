import crypto, { createHash, createHmac } from 'node:crypto';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';

/**
 * A synchronous SigV4 signer for the one request fan-out sends thousands of times:
 * `POST {stage}/@connections/{id}` to API Gateway's management API (service `execute-api`).
 *
 * Why not @smithy/signature-v4 (the SDK's signer): it is generic and asynchronous — per request
 * it clones the request, re-canonicalises and sorts headers, re-formats the ISO-8601 date,
 * normalises the path and runs a Promise chain; profiling put it at ~20 % of the fan-out CPU.
 * Here everything that does not depend on the connection id is built once, the signing key is
 * derived once per UTC day (and secret), and a request costs one SHA-256 of the canonical
 * request and one HMAC (plus the body hash, reused while the frame is unchanged).
 *
 * The output is byte-for-byte what @smithy/signature-v4 5.x produces for the same request with
 * signed headers `content-length;host;x-amz-content-sha256;x-amz-date[;x-amz-security-token]`
 * (test/unit/delivery/sigv4.test.ts checks it, with the AWS test-suite key/date vectors).
 * Rules followed (AWS "Create a canonical request"):
 *   - the wire path encodes the id once with RFC 3986 escaping (as the SDK client does:
 *     `+` → `%2B`, `(` → `%28`); for every service except S3 the canonical URI encodes each
 *     segment AGAIN (`%2B` → `%252B`), so the signer double-encodes what it sends;
 *   - empty, `.` and `..` path segments are normalised away (a connection id that would be
 *     normalised is refused: the server would sign a different path);
 *   - the session token is sent as `x-amz-security-token` and is itself signed.
 */

export type CredentialSource = AwsCredentialIdentity | AwsCredentialIdentityProvider;

/** Signing or credential resolution failed; `code` is stable. */
export class SigningError extends Error {
  constructor(
    readonly code: 'credentials_unavailable' | 'credentials_invalid' | 'credentials_expired' | 'invalid_connection_id',
    message: string,
  ) {
    super(message);
    this.name = 'SigningError';
  }
}

const ALGORITHM = 'AWS4-HMAC-SHA256';
/** The hash of an empty body: SigV4 signs it even when there is no payload. */
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** RFC 3986 escaping as SigV4 requires: encodeURIComponent leaves `! ' ( ) *` alone. */
export function escapeUri(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

export const sha256Hex = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string): Buffer => createHmac('sha256', key).update(data, 'utf8').digest();

/** kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, yyyymmdd), region), service), "aws4_request"). */
export function deriveSigningKey(secretAccessKey: string, day: string, region: string, service: string): Buffer {
  return hmac(hmac(hmac(hmac('AWS4' + secretAccessKey, day), region), service), 'aws4_request');
}

/** The signature of a canonical request: HMAC(kSigning, "AWS4-HMAC-SHA256\n{date}\n{scope}\n{hex(sha256(canonical))}"). */
export function signCanonical(signingKey: Buffer, date: string, scope: string, canonicalRequest: string): string {
  return createHmac('sha256', signingKey).update(`${ALGORITHM}\n${date}\n${scope}\n${sha256Hex(canonicalRequest)}`, 'utf8').digest('hex');
}

/** `yyyymmddThhmmssZ` (UTC), the `x-amz-date` format. */
export function amzDate(ms: number): string {
  const iso = new Date(ms).toISOString(); // 2026-01-02T03:04:05.678Z
  return iso.slice(0, 4) + iso.slice(5, 7) + iso.slice(8, 13) + iso.slice(14, 16) + iso.slice(17, 19) + 'Z';
}

/** The canonical-URI form of a request path, as @smithy/signature-v4 builds it for non-S3 services. */
export function canonicalUri(path: string): string {
  const segments: string[] = [];
  for (const seg of path.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') segments.pop();
    else segments.push(seg);
  }
  const tail = segments.length > 0 && path.endsWith('/') ? '/' : '';
  return (path.startsWith('/') ? '/' : '') + segments.map(escapeUri).join('/') + tail;
}

export interface SignedPost {
  /** The path to send (id encoded once). */
  readonly path: string;
  readonly headers: Record<string, string>;
}

export interface ConnectionsSignerOptions {
  /** The stage endpoint (`https://{api}.execute-api.{region}.amazonaws.com/{stage}`). */
  readonly endpoint: string | URL;
  readonly region: string;
  /** `execute-api` for the management API; only tests change it. */
  readonly service?: string;
}

/**
 * Everything of a signed request that does not depend on the connection id, for one (method,
 * body length, body hash, x-amz-date second, credentials): a fan-out sends one frame to
 * thousands of connections within a few seconds, so this is built a few times per fan-out and
 * a request costs two string concatenations, one SHA-256 and one HMAC.
 */
interface SigningContext {
  readonly method: string;
  readonly bodyLength: number;
  readonly bodySha256: string;
  readonly second: number;
  readonly credentials: AwsCredentialIdentity;
  /** `{method}\n{canonical base path}`: the id's doubly-encoded form follows. */
  readonly canonicalPrefix: string;
  /** From the (empty) query string to the payload hash. */
  readonly canonicalSuffix: string;
  /** `AWS4-HMAC-SHA256\n{date}\n{scope}\n`: the canonical request's hex hash follows. */
  readonly stringToSignPrefix: string;
  readonly date: string;
  readonly authorizationPrefix: string;
  readonly length: string;
  readonly token: string | undefined;
  /** The request head from ` HTTP/1.1` to `Signature=`: the signature and the blank line follow. */
  readonly headMiddle: string;
}

// One-shot digest (Node ≥ 20.12): no Hash object per call; createHash is the fallback.
const oneShotHash = (crypto as { hash?: (alg: string, data: string, enc: 'hex') => string }).hash;
const sha256HexOf: (s: string) => string = oneShotHash ? (s) => oneShotHash('sha256', s, 'hex') : (s) => createHash('sha256').update(s, 'utf8').digest('hex');

/** Characters RFC 3986 leaves unreserved: an id made only of them is its own encoding (no allocation). */
const UNRESERVED = /^[A-Za-z0-9\-._~]*$/;
/** `escapeUri`, skipping the work for the common all-unreserved id. */
const escapeId = (id: string): string => (UNRESERVED.test(id) ? id : escapeUri(id));
/** Header values we place on the wire must not be able to end the header line. */
const HEADER_SAFE = /^[\x21-\x7e]*$/;

export class ConnectionsSigner {
  readonly host: string;
  private readonly basePath: string;
  private readonly connectionsPath: string;
  private readonly canonicalBase: string;
  private readonly region: string;
  private readonly service: string;
  private readonly scopeSuffix: string;
  // One signing key: it changes at 00:00 UTC and when the credentials rotate (both rare).
  private keyDay = '';
  private keySecret = '';
  private key: Buffer = Buffer.alloc(0);
  // x-amz-date changes once a second; thousands of posts share it.
  private dateSecond = -1;
  private date = '';
  private ctx: SigningContext | undefined;

  constructor(opts: ConnectionsSignerOptions) {
    const url = typeof opts.endpoint === 'string' ? new URL(opts.endpoint) : opts.endpoint;
    this.host = url.host; // includes a non-default port, as the Host header does
    this.basePath = url.pathname.replace(/\/+$/, '');
    this.connectionsPath = `${this.basePath}/@connections/`;
    this.region = opts.region;
    this.service = opts.service ?? 'execute-api';
    this.scopeSuffix = `/${this.region}/${this.service}/aws4_request`;
    // "/prod/@connections/" → "/prod/%40connections/" (the id's doubly-encoded form is appended per request).
    this.canonicalBase = canonicalUri(`${this.basePath}/@connections/x`).slice(0, -1);
  }

  /** The path a post to `connectionId` is sent to (the id encoded once, like the SDK client). */
  pathFor(connectionId: string): string {
    return this.connectionsPath + escapeId(connectionId);
  }

  /**
   * Headers for one post. `bodySha256` is the hex SHA-256 of `body` (callers that send the same
   * frame many times hash it once). Synchronous: credentials must already be resolved.
   */
  sign(
    connectionId: string,
    bodyLength: number,
    bodySha256: string,
    credentials: AwsCredentialIdentity,
    nowMs: number,
    method: 'POST' | 'DELETE' = 'POST',
  ): SignedPost {
    const encodedId = checkedId(connectionId);
    const c = this.context(method, bodyLength, bodySha256, credentials, nowMs);
    const headers: Record<string, string> = {
      host: this.host,
      'content-length': c.length,
      'x-amz-content-sha256': bodySha256,
      'x-amz-date': c.date,
      authorization: c.authorizationPrefix + this.signature(c, encodedId),
    };
    if (c.token) headers['x-amz-security-token'] = c.token;
    return { path: this.connectionsPath + encodedId, headers };
  }

  /**
   * The same signed request as `sign`, as the bytes of an HTTP/1.1 request head (request line,
   * headers, blank line) ready for a keep-alive socket. Throws SigningError for an id that cannot
   * be a path segment, or credentials that cannot be put in a header.
   */
  requestHead(
    connectionId: string,
    bodyLength: number,
    bodySha256: string,
    credentials: AwsCredentialIdentity,
    nowMs: number,
    method: 'POST' | 'DELETE' = 'POST',
  ): string {
    const encodedId = checkedId(connectionId);
    const c = this.context(method, bodyLength, bodySha256, credentials, nowMs);
    return method + ' ' + this.connectionsPath + encodedId + c.headMiddle + this.signature(c, encodedId) + '\r\n\r\n';
  }

  /** The hex signature of one request: SHA-256 of its canonical form, then HMAC with the day's key. */
  private signature(c: SigningContext, encodedId: string): string {
    // The canonical URI encodes the once-encoded id again: only its `%` change (→ `%25`).
    const canonical = c.canonicalPrefix + (encodedId.includes('%') ? encodedId.replaceAll('%', '%25') : encodedId) + c.canonicalSuffix;
    return createHmac('sha256', this.key).update(c.stringToSignPrefix + sha256HexOf(canonical), 'utf8').digest('hex');
  }

  private context(method: string, bodyLength: number, bodySha256: string, credentials: AwsCredentialIdentity, nowMs: number): SigningContext {
    const second = Math.floor(nowMs / 1000);
    const c = this.ctx;
    if (c && c.second === second && c.method === method && c.bodyLength === bodyLength && c.bodySha256 === bodySha256 && c.credentials === credentials) {
      return c;
    }
    if (second !== this.dateSecond) {
      this.date = amzDate(nowMs);
      this.dateSecond = second;
    }
    const date = this.date;
    const day = date.slice(0, 8);
    const secret = credentials.secretAccessKey;
    if (day !== this.keyDay || secret !== this.keySecret) {
      this.key = deriveSigningKey(secret, day, this.region, this.service);
      this.keyDay = day;
      this.keySecret = secret;
    }
    const token = credentials.sessionToken || undefined;
    if (!HEADER_SAFE.test(credentials.accessKeyId) || (token !== undefined && !HEADER_SAFE.test(token))) {
      throw new SigningError('credentials_invalid', 'the access key id or session token contains characters a header cannot carry');
    }
    const length = String(bodyLength);
    const signedHeaders = token
      ? 'content-length;host;x-amz-content-sha256;x-amz-date;x-amz-security-token'
      : 'content-length;host;x-amz-content-sha256;x-amz-date';
    const scope = day + this.scopeSuffix;
    const authorizationPrefix = `${ALGORITHM} Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=`;
    this.ctx = {
      method,
      bodyLength,
      bodySha256,
      second,
      credentials,
      canonicalPrefix: `${method}\n${this.canonicalBase}`,
      // Header values are trimmed and inner runs of spaces collapsed by the canonical form; ours
      // (digits, host, hex, date, base64 token) contain none.
      canonicalSuffix:
        `\n\ncontent-length:${length}\nhost:${this.host}\nx-amz-content-sha256:${bodySha256}\nx-amz-date:${date}\n` +
        (token ? `x-amz-security-token:${token}\n` : '') +
        `\n${signedHeaders}\n${bodySha256}`,
      stringToSignPrefix: `${ALGORITHM}\n${date}\n${scope}\n`,
      date,
      authorizationPrefix,
      length,
      token,
      headMiddle:
        ` HTTP/1.1\r\nhost: ${this.host}\r\ncontent-length: ${length}\r\nx-amz-content-sha256: ${bodySha256}\r\nx-amz-date: ${date}\r\n` +
        (token ? `x-amz-security-token: ${token}\r\n` : '') +
        `authorization: ${authorizationPrefix}`,
    };
    return this.ctx;
  }
}

/** The once-encoded id, or a SigningError for one the server would normalise away. */
function checkedId(connectionId: string): string {
  if (connectionId === '' || connectionId === '.' || connectionId === '..') {
    throw new SigningError('invalid_connection_id', `connection id ${JSON.stringify(connectionId)} cannot be a path segment`);
  }
  return escapeId(connectionId);
}

export interface CredentialCacheOptions {
  /** Start refreshing in the background this long before `expiration` (the SDK's window: 5 min). */
  readonly refreshBeforeMs?: number;
  /** Stop using credentials this long before `expiration` (a signed request must arrive in time). */
  readonly expireBeforeMs?: number;
  /**
   * After a failed or unhelpful refresh (background or not), wait this long before asking the
   * provider again; meanwhile `resolve()` without usable credentials rejects at once with that
   * failure. Default 10 s.
   */
  readonly retryAfterMs?: number;
  readonly now?: () => number;
  /**
   * Told once per failed provider call (never per send, never about the credentials themselves).
   * `stillUsable`: the cached credentials are still served (a background refresh failed), or
   * not (sends fail until a refresh succeeds).
   */
  readonly onRefreshError?: (err: SigningError, stillUsable: boolean) => void;
}

/**
 * Credentials from a provider (in Lambda the SDK's default chain: the role's temporary keys from
 * AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN; elsewhere possibly rotating
 * container or IMDS credentials with an `expiration`), cached so signing stays synchronous:
 *   - no `expiration` → kept for the life of the sender (as the SDK's memoised provider does);
 *   - fresh → returned at once by `current()`;
 *   - within `refreshBeforeMs` of expiry → still returned, and ONE background refresh runs;
 *   - within `expireBeforeMs` of expiry (or none yet) → `current()` returns undefined and the
 *     caller awaits `resolve()` (single flight: concurrent sends share one provider call);
 *   - a refresh failed less than `retryAfterMs` ago and nothing usable is cached → `resolve()`
 *     rejects at once with that failure. Single flight alone is not enough: a fan-out sends to
 *     thousands of connections one after another, and without this window every send would
 *     call the provider again (IMDS and the container endpoint throttle, and each failure costs
 *     their timeout) and log its own error.
 */
export class CredentialCache {
  private cached: AwsCredentialIdentity | undefined;
  private refreshAt = Infinity;
  private expireAt = Infinity;
  private inflight: Promise<AwsCredentialIdentity> | undefined;
  private nextBackgroundAt = 0;
  /** The last refresh failure and until when `resolve()` repeats it instead of calling the provider. */
  private failure: { readonly err: SigningError; readonly until: number } | undefined;
  private readonly provider: AwsCredentialIdentityProvider;
  private readonly refreshBeforeMs: number;
  private readonly expireBeforeMs: number;
  private readonly retryAfterMs: number;
  private readonly now: () => number;
  private readonly onRefreshError?: (err: SigningError, stillUsable: boolean) => void;

  constructor(source: CredentialSource, opts: CredentialCacheOptions = {}) {
    this.provider = typeof source === 'function' ? source : async () => source;
    this.refreshBeforeMs = opts.refreshBeforeMs ?? 5 * 60_000;
    this.expireBeforeMs = opts.expireBeforeMs ?? 30_000;
    this.retryAfterMs = opts.retryAfterMs ?? 10_000;
    this.now = opts.now ?? Date.now;
    this.onRefreshError = opts.onRefreshError;
  }

  /** Usable credentials without waiting, or undefined when `resolve()` must be awaited. */
  current(): AwsCredentialIdentity | undefined {
    const c = this.cached;
    if (c === undefined) return undefined;
    if (this.refreshAt === Infinity) return c;
    const now = this.now();
    if (now < this.refreshAt) return c;
    if (now >= this.expireAt) return undefined;
    if (!this.inflight && now >= this.nextBackgroundAt) {
      this.nextBackgroundAt = now + this.retryAfterMs;
      // Straight to refresh(): nextBackgroundAt already spaces these attempts, and the failure
      // window (set when the previous attempt ENDED) would otherwise skip this one. A failure
      // is reported once inside refresh().
      this.refresh().catch(() => {});
    }
    return c;
  }

  /**
   * Usable credentials, calling the provider if needed. Rejects with a SigningError — at once,
   * without a provider call, while the last failure is younger than `retryAfterMs`.
   */
  resolve(): Promise<AwsCredentialIdentity> {
    const c = this.current0();
    if (c) return Promise.resolve(c);
    if (this.inflight) return this.inflight;
    const f = this.failure;
    if (f && this.now() < f.until) return Promise.reject(f.err);
    return this.refresh();
  }

  /** Like `current()` without starting a background refresh. */
  private current0(): AwsCredentialIdentity | undefined {
    const c = this.cached;
    if (c === undefined) return undefined;
    if (this.refreshAt === Infinity) return c;
    const now = this.now();
    return now < this.refreshAt && now < this.expireAt ? c : undefined;
  }

  private refresh(): Promise<AwsCredentialIdentity> {
    this.inflight ??= (async () => {
      try {
        const got = await this.fetch();
        this.failure = undefined;
        return got;
      } catch (err) {
        const e = err as SigningError;
        this.failure = { err: e, until: this.now() + this.retryAfterMs };
        this.onRefreshError?.(e, this.cached !== undefined && this.now() < this.expireAt);
        throw e;
      } finally {
        this.inflight = undefined;
      }
    })();
    return this.inflight;
  }

  /** One provider call; caches and returns its credentials, or throws a SigningError. */
  private async fetch(): Promise<AwsCredentialIdentity> {
    let got: AwsCredentialIdentity;
    try {
      got = await this.provider();
    } catch (err) {
      throw new SigningError('credentials_unavailable', `the credential provider failed: ${(err as Error)?.message ?? err}`);
    }
    if (typeof got?.accessKeyId !== 'string' || !got.accessKeyId || typeof got.secretAccessKey !== 'string' || !got.secretAccessKey) {
      throw new SigningError('credentials_invalid', 'the credential provider returned no accessKeyId/secretAccessKey');
    }
    const exp = got.expiration?.getTime();
    const now = this.now();
    if (exp !== undefined && now >= exp - this.expireBeforeMs) {
      // Keep what we had if it is still usable; a provider that returns expired keys is broken.
      throw new SigningError('credentials_expired', `the credential provider returned credentials expiring at ${got.expiration!.toISOString()}`);
    }
    this.cached = got;
    this.refreshAt = exp === undefined ? Infinity : exp - this.refreshBeforeMs;
    this.expireAt = exp === undefined ? Infinity : exp - this.expireBeforeMs;
    return got;
  }
}
