import http from 'node:http';
import https from 'node:https';
import { createHash, createHmac } from 'node:crypto';
import { outcomeOfStatus, type Sender, type SendOutcome } from '../../lib/subscriber/sender';

/**
 * PROTOTYPE (benchmark only, not used by the product): what lib/subscriber/lean-sender.ts could
 * become. Profiling the lean sender showed ~20 % of the fan-out CPU in @smithy/signature-v4
 * (async, generic: header canonicalisation, ISO-8601 formatting, path normalisation and a
 * Promise chain per request). This signs the one request shape we send, synchronously:
 *   - the signing key is derived once per UTC day (and credentials),
 *   - the canonical path prefix, scope and header template are built once,
 *   - per request only the connection id, x-amz-date, SHA-256 of the body and one HMAC vary.
 * Correctness is checked against @smithy/signature-v4 by bench/prototype/check-signature.ts.
 */

export interface FastSenderOptions {
  readonly endpoint: string;
  readonly region: string;
  readonly credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  readonly maxSockets?: number;
  readonly timeoutMs?: number;
  /** For the signature check only. */
  readonly now?: () => number;
}

/** RFC 3986 escaping, as SigV4's canonical URI wants it (encodeURIComponent leaves !'()* alone). */
function escapeUri(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

const sha256hex = (d: string | Buffer) => createHash('sha256').update(d).digest('hex');
const hmac = (key: string | Buffer, d: string) => createHmac('sha256', key).update(d).digest();

export class FastSender implements Sender {
  private readonly url: URL;
  private readonly basePath: string;
  private readonly canonicalBase: string;
  private readonly agent: http.Agent;
  private readonly request: typeof http.request;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  private readonly signedHeaders: string;
  private keyDay = '';
  private key: Buffer = Buffer.alloc(0);

  constructor(private readonly opts: FastSenderOptions) {
    this.url = new URL(opts.endpoint);
    this.basePath = this.url.pathname.replace(/\/+$/, '');
    // The request path is encoded once; SigV4 (non-S3) encodes each segment again.
    this.canonicalBase = this.basePath.split('/').map((seg) => escapeUri(seg)).join('/') + '/' + escapeUri('@connections') + '/';
    const secure = this.url.protocol === 'https:';
    const agentOpts = { keepAlive: true, maxSockets: opts.maxSockets ?? 64 };
    this.agent = secure ? new https.Agent(agentOpts) : new http.Agent(agentOpts);
    this.request = secure ? https.request : http.request;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.now = opts.now ?? Date.now;
    // The same signed headers as the SDK's signer (it adds x-amz-content-sha256 by default).
    this.signedHeaders = 'host;x-amz-content-sha256;x-amz-date' + (opts.credentials.sessionToken ? ';x-amz-security-token' : '');
  }

  /** The headers of one signed POST (exported for the signature check). */
  sign(connectionId: string, body: Buffer): { path: string; headers: Record<string, string> } {
    const encodedId = encodeURIComponent(connectionId);
    const path = `${this.basePath}/@connections/${encodedId}`;
    const amzDate = new Date(this.now()).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
    const day = amzDate.slice(0, 8);
    const c = this.opts.credentials;
    if (day !== this.keyDay) {
      this.key = hmac(hmac(hmac(hmac('AWS4' + c.secretAccessKey, day), this.opts.region), 'execute-api'), 'aws4_request');
      this.keyDay = day;
    }
    const scope = `${day}/${this.opts.region}/execute-api/aws4_request`;
    const token = c.sessionToken ? `x-amz-security-token:${c.sessionToken}\n` : '';
    const bodyHash = sha256hex(body);
    const canonical = `POST\n${this.canonicalBase}${escapeUri(encodedId)}\n\nhost:${this.url.host}\nx-amz-content-sha256:${bodyHash}\nx-amz-date:${amzDate}\n${token}\n${this.signedHeaders}\n${bodyHash}`;
    const signature = createHmac('sha256', this.key).update(`AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${sha256hex(canonical)}`).digest('hex');
    const headers: Record<string, string> = {
      host: this.url.host,
      'x-amz-date': amzDate,
      'x-amz-content-sha256': bodyHash,
      'content-length': String(body.length),
      authorization: `AWS4-HMAC-SHA256 Credential=${c.accessKeyId}/${scope}, SignedHeaders=${this.signedHeaders}, Signature=${signature}`,
    };
    if (c.sessionToken) headers['x-amz-security-token'] = c.sessionToken;
    return { path, headers };
  }

  send(connectionId: string, data: string): Promise<SendOutcome> {
    const body = Buffer.from(data, 'utf8');
    const { path, headers } = this.sign(connectionId, body);
    return new Promise<SendOutcome>((resolve) => {
      const req = this.request(
        { agent: this.agent, hostname: this.url.hostname, port: this.url.port || undefined, method: 'POST', path, headers, timeout: this.timeoutMs },
        (res) => {
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
