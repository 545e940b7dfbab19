import http from 'node:http';
import https from 'node:https';
import type { Logger } from '../log';
import { outcomeOfStatus, type Sender, type SendOutcome } from './sender';
import { ConnectionsSigner, CredentialCache, EMPTY_SHA256, sha256Hex, type CredentialSource, type SignedPost } from './sigv4';

/**
 * PostToConnection spoken directly on the wire: `POST {endpoint}/@connections/{id}` with the raw
 * frame as body, SigV4-signed for service `execute-api`, over a keep-alive agent. Same outcomes
 * as `SdkSender` (410 gone, 429 throttled, 413 too_large, other → error), without the SDK's
 * per-call middleware stack (serde, endpoint resolution, retry bookkeeping, user-agent building),
 * which dominates the CPU cost of a fan-out made of thousands of tiny POSTs.
 *
 * Signing is the purpose-built synchronous signer of sigv4.ts (checked byte for byte against
 * @smithy/signature-v4); credentials come from a provider and are cached until shortly before
 * their `expiration`, so a send only waits for the provider on the first call and when the
 * cached keys are about to expire — and not at all for 10 s after the provider failed.
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

type Credentials = Parameters<ConnectionsSigner['sign']>[3];

export class LeanSender implements Sender {
  private readonly url: URL;
  private readonly agent: http.Agent;
  private readonly request: typeof http.request;
  private readonly signer: ConnectionsSigner;
  private readonly credentials: CredentialCache;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  private readonly log?: Logger;
  // A fan-out sends the same frame (modulo its latency field, which changes at most once per
  // millisecond) to every subscriber: encode and hash it once per distinct frame.
  private lastData: string | undefined;
  private lastBody: Buffer = Buffer.alloc(0);
  private lastHash = '';

  constructor(opts: LeanSenderOptions) {
    this.url = new URL(opts.endpoint);
    const secure = this.url.protocol === 'https:';
    const agentOpts = { keepAlive: true, maxSockets: opts.maxSockets ?? 64 };
    this.agent = secure ? new https.Agent(agentOpts) : new http.Agent(agentOpts);
    this.request = secure ? https.request : http.request;
    this.signer = new ConnectionsSigner({ endpoint: this.url, region: opts.region });
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
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  send(connectionId: string, data: string): Promise<SendOutcome> {
    return this.withCredentials((c) => this.post(connectionId, data, c));
  }

  /** DeleteConnection: `DELETE {endpoint}/@connections/{id}`, empty body, same signing. */
  disconnect(connectionId: string): Promise<SendOutcome> {
    return this.withCredentials((c) => this.exchange(connectionId, 'DELETE', Buffer.alloc(0), EMPTY_SHA256, c));
  }

  private withCredentials(call: (c: Credentials) => Promise<SendOutcome>): Promise<SendOutcome> {
    const creds = this.credentials.current();
    if (creds) return call(creds);
    // A rejection was logged once by the cache's onRefreshError; here it is just the outcome.
    return this.credentials.resolve().then(call, () => 'error' as const);
  }

  private post(connectionId: string, data: string, creds: Credentials): Promise<SendOutcome> {
    if (data !== this.lastData) {
      this.lastBody = Buffer.from(data, 'utf8');
      this.lastHash = sha256Hex(this.lastBody);
      this.lastData = data;
    }
    return this.exchange(connectionId, 'POST', this.lastBody, this.lastHash, creds);
  }

  private exchange(connectionId: string, method: 'POST' | 'DELETE', body: Buffer, bodyHash: string, creds: Credentials): Promise<SendOutcome> {
    let signed: SignedPost;
    try {
      signed = this.signer.sign(connectionId, body.length, bodyHash, creds, this.now(), method);
    } catch {
      return Promise.resolve('error');
    }
    return new Promise<SendOutcome>((resolve) => {
      const req = this.request(
        {
          agent: this.agent,
          hostname: this.url.hostname,
          port: this.url.port || undefined,
          method,
          path: signed.path,
          headers: signed.headers,
          timeout: this.timeoutMs,
        },
        (res) => {
          // Drain the (small) error body so the socket goes back to the keep-alive pool.
          res.resume();
          res.on('end', () => resolve(outcomeOfStatus(res.statusCode ?? 0)));
          res.on('error', () => resolve('error'));
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => resolve('error'));
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
