import http from 'node:http';
import https from 'node:https';
import type { AwsCredentialIdentity } from '@smithy/types';
import { outcomeOfStatus, type Sender, type SendOutcome } from '../../lib/delivery/sender';
import { ConnectionsSigner, EMPTY_SHA256, sha256Hex } from '../../lib/delivery/sigv4';

/**
 * The lean sender's transport BEFORE the CPU-floor work (2026-11-30), kept as a benchmark
 * reference (`handler-lean-node-http`) so each run measures before and after side by side: the
 * same synchronous signer, but each post through node's `http.request` on a keep-alive
 * `http.Agent`/`https.Agent` (ClientRequest, header objects, IncomingMessage streams). Static
 * credentials only; not used by the product.
 */
export class NodeHttpSender implements Sender {
  private readonly url: URL;
  private readonly agent: http.Agent;
  private readonly request: typeof http.request;
  private readonly signer: ConnectionsSigner;
  private lastData: string | undefined;
  private lastBody: Buffer = Buffer.alloc(0);
  private lastHash = '';

  constructor(
    endpoint: string,
    region: string,
    private readonly credentials: AwsCredentialIdentity,
    maxSockets: number,
  ) {
    this.url = new URL(endpoint);
    const secure = this.url.protocol === 'https:';
    this.agent = secure ? new https.Agent({ keepAlive: true, maxSockets }) : new http.Agent({ keepAlive: true, maxSockets });
    this.request = secure ? https.request : http.request;
    this.signer = new ConnectionsSigner({ endpoint: this.url, region });
  }

  send(connectionId: string, data: string): Promise<SendOutcome> {
    if (data !== this.lastData) {
      this.lastBody = Buffer.from(data, 'utf8');
      this.lastHash = sha256Hex(this.lastBody);
      this.lastData = data;
    }
    return this.exchange(connectionId, 'POST', this.lastBody, this.lastHash);
  }

  disconnect(connectionId: string): Promise<SendOutcome> {
    return this.exchange(connectionId, 'DELETE', Buffer.alloc(0), EMPTY_SHA256);
  }

  private exchange(connectionId: string, method: 'POST' | 'DELETE', body: Buffer, bodyHash: string): Promise<SendOutcome> {
    const signed = this.signer.sign(connectionId, body.length, bodyHash, this.credentials, Date.now(), method);
    return new Promise<SendOutcome>((resolve) => {
      const req = this.request(
        { agent: this.agent, hostname: this.url.hostname, port: this.url.port || undefined, method, path: signed.path, headers: signed.headers, timeout: 10_000 },
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
