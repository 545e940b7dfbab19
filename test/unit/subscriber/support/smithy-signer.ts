import { createHash, createHmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity } from '@smithy/types';

/**
 * The SDK's own signer (@smithy/signature-v4), the reference our synchronous signer must match
 * byte for byte. node:crypto stands in for the SDK's hash (same SHA-256).
 */
class NodeSha256 {
  private readonly h;
  constructor(secret?: string | Uint8Array) {
    this.h = secret === undefined ? createHash('sha256') : createHmac('sha256', typeof secret === 'string' ? secret : Buffer.from(secret));
  }
  update(d: string | Uint8Array): void {
    this.h.update(typeof d === 'string' ? Buffer.from(d, 'utf8') : Buffer.from(d));
  }
  async digest(): Promise<Uint8Array> {
    return this.h.digest();
  }
}

export function smithySigner(opts: { region: string; service?: string; credentials: AwsCredentialIdentity; applyChecksum?: boolean }): SignatureV4 {
  return new SignatureV4({
    service: opts.service ?? 'execute-api',
    region: opts.region,
    credentials: opts.credentials,
    sha256: NodeSha256 as never,
    applyChecksum: opts.applyChecksum,
  });
}

/** Signs `POST {path}` the way the SDK would, with the headers our sender signs. */
export async function smithySignPost(
  signer: SignatureV4,
  req: { host: string; path: string; body: Buffer; at: number },
): Promise<Record<string, string>> {
  const [hostname, port] = req.host.split(':');
  const signed = await signer.sign(
    {
      method: 'POST',
      protocol: 'https:',
      hostname,
      port: port ? Number(port) : undefined,
      path: req.path,
      query: {},
      headers: { host: req.host, 'content-length': String(req.body.length) },
      body: req.body,
    },
    { signingDate: new Date(req.at) },
  );
  return signed.headers as Record<string, string>;
}
