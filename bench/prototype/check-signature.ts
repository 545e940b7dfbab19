import { createHash, createHmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { FastSender } from './fast-sender';

/**
 * The prototype's signature must equal the SDK signer's for the same request and instant;
 * the emulator does not verify SigV4, so this is the only check that it would work in AWS.
 * Throws on any difference (run by the fan-out benchmark before it uses the prototype).
 */
class Sha256 {
  private readonly h;
  constructor(secret?: string | Uint8Array) {
    this.h = secret === undefined ? createHash('sha256') : createHmac('sha256', Buffer.from(secret as Uint8Array));
  }
  update(d: string | Uint8Array) {
    this.h.update(typeof d === 'string' ? Buffer.from(d) : Buffer.from(d));
  }
  async digest() {
    return this.h.digest();
  }
}

export async function checkFastSenderSignature(): Promise<void> {
  const at = Date.UTC(2026, 0, 2, 3, 4, 5);
  for (const sessionToken of [undefined, 'token/with+chars=']) {
    const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', sessionToken };
    const endpoint = 'https://abc123.execute-api.eu-west-1.amazonaws.com/prod';
    const fast = new FastSender({ endpoint, region: 'eu-west-1', credentials, now: () => at });
    const smithy = new SignatureV4({ service: 'execute-api', region: 'eu-west-1', credentials, sha256: Sha256 as never });
    for (const id of ['M9aA1e3uvHcCH1A=', 'a+b/c=d(e)*!f\'==']) {
      const body = Buffer.from('{"type":"event","seq":1}');
      const mine = fast.sign(id, body);
      const ref = await smithy.sign(
        { method: 'POST', protocol: 'https:', hostname: 'abc123.execute-api.eu-west-1.amazonaws.com', path: mine.path, query: {}, headers: { host: 'abc123.execute-api.eu-west-1.amazonaws.com' }, body },
        { signingDate: new Date(at) },
      );
      if (ref.headers.authorization !== mine.headers.authorization) {
        throw new Error(`prototype signature differs from @smithy/signature-v4 for ${id}:\n  mine ${mine.headers.authorization}\n  sdk  ${ref.headers.authorization}`);
      }
    }
    fast.close();
  }
}
