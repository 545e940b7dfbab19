import http from 'node:http';
import https from 'node:https';
import { createHash, createHmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity, Provider } from '@smithy/types';
import { outcomeOfStatus, type Sender, type SendOutcome } from './sender';

/**
 * PostToConnection spoken directly on the wire: `POST {endpoint}/@connections/{id}` with the raw
 * frame as body, SigV4-signed for service `execute-api`, over a keep-alive agent. Same outcomes
 * as `SdkSender` (410 gone, 429 throttled, 413 too_large, other → error), without the SDK's
 * per-call middleware stack (serde, endpoint resolution, retry bookkeeping, user-agent building),
 * which dominates the CPU cost of a fan-out made of thousands of tiny POSTs.
 *
 * Signing uses @smithy/signature-v4 (the SDK's own signer: double URI-encoding of the path for
 * non-S3 services, signing-key cache) with node's crypto for SHA-256.
 */

export interface LeanSenderOptions {
  /** The stage endpoint, as in config `managementEndpoint` (`https://{api}.execute-api.{region}.amazonaws.com/{stage}`). */
  readonly endpoint: string;
  readonly region: string;
  readonly credentials: AwsCredentialIdentity | Provider<AwsCredentialIdentity>;
  /** Keep-alive sockets; set to the fan-out concurrency. */
  readonly maxSockets?: number;
  readonly timeoutMs?: number;
}

/** node:crypto behind the Hash interface @smithy/signature-v4 expects (HMAC when given a secret). */
class NodeSha256 {
  private readonly h;
  constructor(secret?: string | Uint8Array | ArrayBuffer | ArrayBufferView) {
    this.h = secret === undefined ? createHash('sha256') : createHmac('sha256', toBuffer(secret));
  }
  update(data: string | Uint8Array | ArrayBuffer | ArrayBufferView): void {
    this.h.update(toBuffer(data));
  }
  async digest(): Promise<Uint8Array> {
    return this.h.digest();
  }
  reset(): void {
    throw new Error('NodeSha256.reset is not supported');
  }
}

function toBuffer(d: string | Uint8Array | ArrayBuffer | ArrayBufferView): Buffer {
  if (typeof d === 'string') return Buffer.from(d, 'utf8');
  if (d instanceof ArrayBuffer) return Buffer.from(d);
  return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
}

export class LeanSender implements Sender {
  private readonly url: URL;
  private readonly basePath: string;
  private readonly agent: http.Agent;
  private readonly request: typeof http.request;
  private readonly signer: SignatureV4;
  private readonly timeoutMs: number;

  constructor(opts: LeanSenderOptions) {
    this.url = new URL(opts.endpoint);
    this.basePath = this.url.pathname.replace(/\/+$/, '');
    const secure = this.url.protocol === 'https:';
    const agentOpts = { keepAlive: true, maxSockets: opts.maxSockets ?? 64 };
    this.agent = secure ? new https.Agent(agentOpts) : new http.Agent(agentOpts);
    this.request = secure ? https.request : http.request;
    this.signer = new SignatureV4({ service: 'execute-api', region: opts.region, credentials: opts.credentials, sha256: NodeSha256 });
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  async send(connectionId: string, data: string): Promise<SendOutcome> {
    const body = Buffer.from(data, 'utf8');
    const path = `${this.basePath}/@connections/${encodeURIComponent(connectionId)}`;
    let signed;
    try {
      signed = await this.signer.sign({
        method: 'POST',
        protocol: this.url.protocol,
        hostname: this.url.hostname,
        port: this.url.port ? Number(this.url.port) : undefined,
        path,
        query: {},
        headers: { host: this.url.host, 'content-length': String(body.length) },
        body,
      });
    } catch {
      return 'error';
    }
    return new Promise<SendOutcome>((resolve) => {
      const req = this.request(
        {
          agent: this.agent,
          protocol: this.url.protocol,
          hostname: this.url.hostname,
          port: this.url.port || undefined,
          method: 'POST',
          path,
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
