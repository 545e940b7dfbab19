import { expect } from 'chai';
import { Readable } from 'node:stream';
import { ApiGatewayManagementApiClient, PostToConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import {
  amzDate,
  canonicalUri,
  ConnectionsSigner,
  deriveSigningKey,
  sha256Hex,
  signCanonical,
  SigningError,
} from '../../../lib/delivery/sigv4';
import { smithySigner, smithySignPost } from '../subscriber/support/smithy-signer';

// The example keys of AWS's SigV4 documentation and test suite (not real credentials).
const AKID = 'AKIDEXAMPLE';
const SECRET = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
const TOKEN = 'IQoJb3JpZ2luX2VjE+token/with=chars';

// Real ids are base64-like (`L0SM9cOFvHcCIhw=`); the others are the characters whose encoding
// differs between encodeURIComponent and RFC 3986, and `~ _ - .` that both leave alone.
const IDS = ['L0SM9cOFvHcCIhw=', 'M9aA1e3uvHcCH1A=', 'a+b/c=d', "(e)*!f'", 'x~y_z-w.v', '%2B', 'a b', 'plain'];

describe('SigV4 signer for PostToConnection (lib/delivery/sigv4.ts)', () => {
  describe('AWS test-suite vectors', () => {
    it('derives the documented signing key (secret, 20120215, us-east-1, iam)', () => {
      // AWS docs, "Examples of how to derive a signing key for Signature Version 4".
      expect(deriveSigningKey(SECRET, '20120215', 'us-east-1', 'iam').toString('hex')).to.equal(
        'f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d',
      );
    });

    for (const [method, expected] of [
      ['GET', '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31'], // get-vanilla
      ['POST', '5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b'], // post-vanilla
    ] as const) {
      it(`${method.toLowerCase()}-vanilla: the suite's signature, also what @smithy/signature-v4 produces`, async () => {
        const at = Date.UTC(2015, 7, 30, 12, 36, 0);
        const date = amzDate(at);
        expect(date).to.equal('20150830T123600Z');
        const scope = '20150830/us-east-1/service/aws4_request';
        const canonical = `${method}\n${canonicalUri('/')}\n\nhost:example.amazonaws.com\nx-amz-date:${date}\n\nhost;x-amz-date\n${sha256Hex('')}`;
        const mine = signCanonical(deriveSigningKey(SECRET, '20150830', 'us-east-1', 'service'), date, scope, canonical);
        expect(mine).to.equal(expected);
        const ref = await smithySigner({ region: 'us-east-1', service: 'service', credentials: { accessKeyId: AKID, secretAccessKey: SECRET }, applyChecksum: false }).sign(
          { method, protocol: 'https:', hostname: 'example.amazonaws.com', path: '/', query: {}, headers: { host: 'example.amazonaws.com' } },
          { signingDate: new Date(at) },
        );
        expect(ref.headers.authorization).to.equal(`AWS4-HMAC-SHA256 Credential=${AKID}/${scope}, SignedHeaders=host;x-amz-date, Signature=${expected}`);
      });
    }

    it('our request shape, pinned (suite keys and date): a regression vector for both signers', async () => {
      const at = Date.UTC(2015, 7, 30, 12, 36, 0);
      const body = Buffer.from('{"type":"event"}');
      const signer = new ConnectionsSigner({ endpoint: 'https://example.amazonaws.com/prod', region: 'us-east-1' });
      const mine = signer.sign('a+b', body.length, sha256Hex(body), { accessKeyId: AKID, secretAccessKey: SECRET }, at);
      const expected =
        'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/execute-api/aws4_request, ' +
        'SignedHeaders=content-length;host;x-amz-content-sha256;x-amz-date, ' +
        'Signature=0db927bb93c1135199843da16f2f3862160b96faed30c3214574641aef62ca5e';
      expect(mine.path).to.equal('/prod/@connections/a%2Bb');
      expect(mine.headers.authorization).to.equal(expected);
      const ref = await smithySignPost(smithySigner({ region: 'us-east-1', credentials: { accessKeyId: AKID, secretAccessKey: SECRET } }), {
        host: 'example.amazonaws.com',
        path: mine.path,
        body,
        at,
      });
      expect(ref.authorization).to.equal(expected);
    });
  });

  describe('canonical URI', () => {
    it('encodes each segment again, so a once-encoded id is double-encoded (non-S3 rule)', () => {
      expect(canonicalUri('/prod/@connections/a%2Bb%2Fc%3D')).to.equal('/prod/%40connections/a%252Bb%252Fc%253D');
      expect(canonicalUri('/prod/@connections/%28e%29%2A%21f%27')).to.equal('/prod/%40connections/%2528e%2529%252A%2521f%2527');
    });
    it('normalises empty, . and .. segments like @smithy/signature-v4', () => {
      expect(canonicalUri('/a//b/./c/../d/')).to.equal('/a/b/d/');
      expect(canonicalUri('/')).to.equal('/');
    });
  });

  describe('equivalence with @smithy/signature-v4 (byte for byte)', () => {
    const endpoints = [
      'https://abc123.execute-api.eu-west-1.amazonaws.com/prod',
      'https://abc123.execute-api.eu-west-1.amazonaws.com/prod/', // trailing slash in config
      'http://127.0.0.1:4510/local-stage', // the emulator: a port, which the Host header carries
      'https://custom.example.com/v1/ws', // custom domain with a base path
    ];
    const bodies = [Buffer.from('{"type":"event","topic":"vehicle:42","seq":1,"data":{"speed":42.5}}'), Buffer.from('{"t":"é✓"}'), Buffer.alloc(0)];

    for (const sessionToken of [undefined, TOKEN]) {
      it(`every id × endpoint × body ${sessionToken ? 'with' : 'without'} a session token`, async () => {
        const credentials = { accessKeyId: AKID, secretAccessKey: SECRET, sessionToken };
        const ref = smithySigner({ region: 'eu-west-1', credentials });
        const at = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
        let n = 0;
        for (const endpoint of endpoints) {
          const signer = new ConnectionsSigner({ endpoint, region: 'eu-west-1' });
          for (const id of IDS) {
            for (const body of bodies) {
              const mine = signer.sign(id, body.length, sha256Hex(body), credentials, at);
              const theirs = await smithySignPost(ref, { host: new URL(endpoint).host, path: mine.path, body, at });
              expect(mine.headers, `${endpoint} ${id}`).to.deep.equal(theirs);
              // What the lean sender writes on the socket: the same request, as HTTP/1.1 bytes.
              const head = signer.requestHead(id, body.length, sha256Hex(body), credentials, at);
              expect(parseRequestHead(head), `${endpoint} ${id} (request head)`).to.deep.equal({ line: `POST ${mine.path} HTTP/1.1`, headers: theirs });
              n++;
            }
          }
        }
        expect(n).to.equal(endpoints.length * IDS.length * bodies.length);
        if (sessionToken) expect(Object.keys(new ConnectionsSigner({ endpoint: endpoints[0], region: 'eu-west-1' }).sign('x', 0, sha256Hex(''), credentials, at).headers)).to.include('x-amz-security-token');
      });
    }

    it('one signer across a UTC date boundary and a credential rotation re-derives its key', async () => {
      const signer = new ConnectionsSigner({ endpoint: endpoints[0], region: 'eu-west-1' });
      const body = Buffer.from('{"x":1}');
      const a = { accessKeyId: AKID, secretAccessKey: SECRET, sessionToken: TOKEN };
      const b = { accessKeyId: 'ASIAROTATED', secretAccessKey: 'rotated/secret+KEY', sessionToken: 'second-token' };
      const steps: [typeof a, number][] = [
        [a, Date.UTC(2026, 0, 1, 23, 59, 59, 999)],
        [a, Date.UTC(2026, 0, 2, 0, 0, 0, 0)], // next day: new scope and key
        [b, Date.UTC(2026, 0, 2, 0, 0, 0, 500)], // same second, rotated secret: new key
        [a, Date.UTC(2026, 0, 2, 0, 0, 1, 0)], // back to the first secret
        [a, Date.UTC(2025, 11, 31, 23, 59, 59, 0)], // clock stepped back across a year boundary
      ];
      const signatures = new Set<string>();
      for (const [creds, at] of steps) {
        const mine = signer.sign('L0SM9cOFvHcCIhw=', body.length, sha256Hex(body), creds, at);
        const theirs = await smithySignPost(smithySigner({ region: 'eu-west-1', credentials: creds }), { host: signer.host, path: mine.path, body, at });
        expect(mine.headers, new Date(at).toISOString()).to.deep.equal(theirs);
        signatures.add(mine.headers.authorization);
      }
      expect(signatures.size).to.equal(steps.length);
    });

    it('DeleteConnection: DELETE with an empty body is signed like the SDK signs it, never with a cached POST signature', async () => {
      const credentials = { accessKeyId: AKID, secretAccessKey: SECRET, sessionToken: TOKEN };
      const signer = new ConnectionsSigner({ endpoint: 'https://abc123.execute-api.eu-west-1.amazonaws.com/prod', region: 'eu-west-1' });
      const at = Date.UTC(2026, 0, 2, 3, 4, 5);
      const post = signer.requestHead('a+b=', 0, sha256Hex(''), credentials, at, 'POST');
      const del = signer.requestHead('a+b=', 0, sha256Hex(''), credentials, at, 'DELETE');
      const [hostname] = signer.host.split(':');
      const ref = await smithySigner({ region: 'eu-west-1', credentials }).sign(
        { method: 'DELETE', protocol: 'https:', hostname, path: signer.pathFor('a+b='), query: {}, headers: { host: signer.host, 'content-length': '0' }, body: Buffer.alloc(0) },
        { signingDate: new Date(at) },
      );
      expect(parseRequestHead(del)).to.deep.equal({ line: `DELETE ${signer.pathFor('a+b=')} HTTP/1.1`, headers: ref.headers });
      expect(parseRequestHead(post).headers.authorization).to.not.equal(ref.headers.authorization);
    });

    it('refuses credentials that would break the request head (CR/LF in the session token or key id)', () => {
      const signer = new ConnectionsSigner({ endpoint: 'https://h.example.com/prod', region: 'us-east-1' });
      for (const creds of [
        { accessKeyId: AKID, secretAccessKey: SECRET, sessionToken: 'tok\r\nx-injected: 1' },
        { accessKeyId: 'AKID\nEVIL', secretAccessKey: SECRET },
      ]) {
        expect(() => signer.requestHead('abc', 0, sha256Hex(''), creds, 0))
          .to.throw(SigningError)
          .with.property('code', 'credentials_invalid');
      }
    });

    it('a different region or service changes the signature (they are part of the key and scope)', async () => {
      const creds = { accessKeyId: AKID, secretAccessKey: SECRET };
      const at = Date.UTC(2026, 5, 1);
      const body = Buffer.from('{}');
      for (const [region, service] of [['us-east-1', 'execute-api'], ['ap-southeast-2', 'execute-api'], ['us-east-1', 'other']]) {
        const signer = new ConnectionsSigner({ endpoint: 'https://h.example.com/s', region, service });
        const mine = signer.sign('id=', body.length, sha256Hex(body), creds, at);
        const theirs = await smithySignPost(smithySigner({ region, service, credentials: creds }), { host: signer.host, path: mine.path, body, at });
        expect(mine.headers.authorization).to.equal(theirs.authorization);
        expect(mine.headers.authorization).to.contain(`/${region}/${service}/aws4_request`);
      }
    });
  });

  it('sends the path the SDK client sends (the id encoded once, RFC 3986)', async () => {
    const paths: string[] = [];
    const client = new ApiGatewayManagementApiClient({
      region: 'eu-west-1',
      endpoint: 'https://abc123.execute-api.eu-west-1.amazonaws.com/prod',
      credentials: { accessKeyId: AKID, secretAccessKey: SECRET },
      maxAttempts: 1,
      requestHandler: {
        handle: async (req: { path: string }) => {
          paths.push(req.path);
          return { response: { statusCode: 200, headers: {}, body: Readable.from([]) } };
        },
      } as never,
    });
    const signer = new ConnectionsSigner({ endpoint: 'https://abc123.execute-api.eu-west-1.amazonaws.com/prod', region: 'eu-west-1' });
    try {
      for (const id of IDS) {
        await client.send(new PostToConnectionCommand({ ConnectionId: id, Data: 'x' }));
        expect(signer.pathFor(id), id).to.equal(paths.at(-1));
      }
    } finally {
      client.destroy();
    }
    expect(paths).to.have.length(IDS.length);
    expect(paths[2]).to.equal('/prod/@connections/a%2Bb%2Fc%3Dd');
  });

  it('refuses ids that path normalisation would change', () => {
    const signer = new ConnectionsSigner({ endpoint: 'https://h.example.com/prod', region: 'us-east-1' });
    for (const id of ['', '.', '..']) {
      expect(() => signer.sign(id, 0, sha256Hex(''), { accessKeyId: AKID, secretAccessKey: SECRET }, 0))
        .to.throw(SigningError)
        .with.property('code', 'invalid_connection_id');
    }
  });

  it('formats x-amz-date in UTC without milliseconds', () => {
    expect(amzDate(Date.UTC(2026, 11, 31, 23, 59, 59, 999))).to.equal('20261231T235959Z');
    expect(amzDate(Date.UTC(2027, 0, 1, 0, 0, 0, 0))).to.equal('20270101T000000Z');
  });
});

/** An HTTP/1.1 request head as its request line and headers (lower-case names), checking its framing. */
function parseRequestHead(head: string): { line: string; headers: Record<string, string> } {
  expect(head.endsWith('\r\n\r\n'), 'head ends with a blank line').to.equal(true);
  const [line, ...rest] = head.slice(0, -4).split('\r\n');
  const headers: Record<string, string> = {};
  for (const h of rest) {
    const i = h.indexOf(': ');
    expect(i, h).to.be.greaterThan(0);
    const name = h.slice(0, i).toLowerCase();
    expect(headers, `duplicate ${name}`).to.not.have.property(name);
    headers[name] = h.slice(i + 2);
  }
  return { line, headers };
}
