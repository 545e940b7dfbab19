import type { Logger } from '../log';
import { Http1Pool } from './http1-pool';
import { outcomeOfStatus, type Sender, type SendOutcome } from './sender';
import { ConnectionsSigner, CredentialCache, EMPTY_SHA256, sha256Hex, type CredentialSource } from './sigv4';

/**
 * PostToConnection spoken directly on the wire: `POST {endpoint}/@connections/{id}` with the raw
 * frame as body, SigV4-signed for service `execute-api`, over keep-alive sockets. Same outcomes
 * as `SdkSender` (410 gone, 429 throttled, 413 too_large, other → error), without the SDK's
 * per-call middleware stack (serde, endpoint resolution, retry bookkeeping, user-agent building),
 * which dominates the CPU cost of a fan-out made of thousands of tiny POSTs.
 *
 * Per request: the signer of sigv4.ts builds the whole request head (one SHA-256, one HMAC;
 * checked byte for byte against @smithy/signature-v4), the frame is encoded and hashed once per
 * distinct frame and those exact bytes are sent, and http1-pool.ts writes head and body as one
 * buffer in one socket write and reads back only the status. Credentials come from a provider
 * and are cached until shortly before their `expiration`, so a send only waits for the provider
 * on the first call and when the cached keys are about to expire — and not at all for 10 s
 * after the provider failed.
 */

export interface LeanSenderOptions {
  /** The stage endpoint, as in config `managementEndpoint` (`https://{api}.execute-api.{region}.amazonaws.com/{stage}`). */
  readonly endpoint: string;
  readonly region: string;
  /** Static keys or a provider (e.g. the SDK client's `config.credentials`, the default chain). */
  readonly credentials: CredentialSource;
  /** Keep-alive sockets; set to the fan-out concurrency. */
  readonly maxSockets?: number;
  readonly timeoutMs?: number;
  /** Credential refresh failures are logged here (without the credentials). */
  readonly log?: Logger;
  /** Signing time; tests only. */
  readonly now?: () => number;
}

const EMPTY = Buffer.alloc(0);
// A rejection was logged once by the cache's onRefreshError; here it is just the outcome.
const failed = (): SendOutcome => 'error';
type Credentials = Parameters<ConnectionsSigner['sign']>[3];

export class LeanSender implements Sender {
  private readonly pool: Http1Pool;
  private readonly signer: ConnectionsSigner;
  private readonly credentials: CredentialCache;
  private readonly now: () => number;
  private readonly log?: Logger;
  // A fan-out sends the same frame (modulo its latency field, which changes at most once per
  // millisecond) to every subscriber: encode and hash it once per distinct frame.
  private lastData: string | undefined;
  private lastBody = EMPTY;
  private lastHash = '';

  constructor(opts: LeanSenderOptions) {
    const url = new URL(opts.endpoint);
    this.pool = new Http1Pool({ origin: url, maxSockets: opts.maxSockets ?? 64, timeoutMs: opts.timeoutMs ?? 10_000 });
    this.signer = new ConnectionsSigner({ endpoint: url, region: opts.region });
    this.now = opts.now ?? Date.now;
    this.log = opts.log;
    this.credentials = new CredentialCache(opts.credentials, {
      now: this.now,
      // One line per failed provider call, not per send: while the provider is down the cache
      // fails sends fast for its retry window (retryAfterMs, 10 s); logging in send() would
      // write 10,000 identical errors for one 10,000-subscriber fan-out.
      onRefreshError: (err, stillUsable) =>
        stillUsable
          ? this.log?.warn('credential refresh failed; using the cached credentials', { code: err.code })
          : this.log?.error('cannot sign PostToConnection: no usable credentials; sends fail until the provider recovers', {
              code: err.code,
              error: err.message,
            }),
    });
  }

  send(connectionId: string, data: string): Promise<SendOutcome> {
    // No closure per send: the cached credentials are the common case.
    const creds = this.credentials.current();
    if (creds) return this.post(connectionId, data, creds);
    return this.credentials.resolve().then((c) => this.post(connectionId, data, c), failed);
  }

  /** DeleteConnection: `DELETE {endpoint}/@connections/{id}`, empty body, same signing. */
  disconnect(connectionId: string): Promise<SendOutcome> {
    const creds = this.credentials.current();
    if (creds) return this.exchange(connectionId, 'DELETE', EMPTY, EMPTY_SHA256, creds);
    return this.credentials.resolve().then((c) => this.exchange(connectionId, 'DELETE', EMPTY, EMPTY_SHA256, c), failed);
  }

  private post(connectionId: string, data: string, creds: Credentials): Promise<SendOutcome> {
    if (data !== this.lastData) {
      // The hash is of the exact bytes sent: this buffer is what exchange() writes.
      const body = Buffer.from(data, 'utf8');
      this.lastBody = body;
      this.lastHash = sha256Hex(body);
      this.lastData = data;
    }
    return this.exchange(connectionId, 'POST', this.lastBody, this.lastHash, creds);
  }

  private exchange(connectionId: string, method: 'POST' | 'DELETE', body: Buffer, bodyHash: string, creds: Credentials): Promise<SendOutcome> {
    let head: string;
    try {
      head = this.signer.requestHead(connectionId, body.length, bodyHash, creds, this.now(), method);
    } catch {
      return Promise.resolve('error');
    }
    // Head and body in one buffer, one socket write, one TLS record. The head is ASCII by
    // construction (encoded path, checked header values), so latin1 writes it byte for byte.
    const out = Buffer.allocUnsafe(head.length + body.length);
    out.write(head, 0, 'latin1');
    body.copy(out, head.length);
    // NO_RESPONSE (0) maps to 'error', like any network failure.
    return this.pool.request(out).then(outcomeOfStatus);
  }

  close(): void {
    this.pool.close();
  }
}
