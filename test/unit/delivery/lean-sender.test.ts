import { expect } from 'chai';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AwsCredentialIdentity } from '@smithy/types';
import { LeanSender } from '../../../lib/delivery/lean-sender';
import { createLogger } from '../../../lib/log';
import { smithySigner, smithySignPost } from '../subscriber/support/smithy-signer';

/**
 * The lean sender against a real HTTP server on loopback that VERIFIES each request's SigV4
 * signature by re-signing what it received with @smithy/signature-v4 (the emulator does not
 * check signatures, API Gateway does).
 */
describe('LeanSender on the wire (signature verified by the server)', () => {
  interface Seen {
    path: string;
    accessKeyId: string;
    token?: string;
    verified: boolean;
    body: string;
  }
  let server: http.Server;
  let endpoint: string;
  let seen: Seen[];
  let statuses: number[];
  let connections: number;
  let hang = false;
  const keys = new Map<string, AwsCredentialIdentity>();
  const senders: LeanSender[] = [];
  const sender = (opts: Partial<ConstructorParameters<typeof LeanSender>[0]> & Pick<ConstructorParameters<typeof LeanSender>[0], 'credentials'>) => {
    const s = new LeanSender({ endpoint, region: 'eu-west-1', ...opts });
    senders.push(s);
    return s;
  };
  const register = (c: AwsCredentialIdentity) => (keys.set(c.accessKeyId, c), c);

  before(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', async () => {
        if (hang) return;
        const body = Buffer.concat(chunks);
        const auth = String(req.headers.authorization ?? '');
        const accessKeyId = /Credential=([^/]+)\//.exec(auth)?.[1] ?? '';
        const creds = keys.get(accessKeyId);
        let verified = false;
        if (creds) {
          const d = String(req.headers['x-amz-date']);
          const at = Date.UTC(+d.slice(0, 4), +d.slice(4, 6) - 1, +d.slice(6, 8), +d.slice(9, 11), +d.slice(11, 13), +d.slice(13, 15));
          const ref = await smithySignPost(smithySigner({ region: 'eu-west-1', credentials: creds }), { host: String(req.headers.host), path: req.url!, body, at });
          verified = ref.authorization === auth && ref['x-amz-security-token'] === req.headers['x-amz-security-token'];
        }
        seen.push({ path: req.url!, accessKeyId, token: req.headers['x-amz-security-token'] as string | undefined, verified, body: body.toString('utf8') });
        res.statusCode = verified ? (statuses.shift() ?? 200) : 403;
        res.end(res.statusCode === 200 ? '' : '{"message":"x"}');
      });
    });
    server.on('connection', () => connections++);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/test-stage`;
  });
  beforeEach(() => {
    seen = [];
    statuses = [];
    connections = 0;
    hang = false;
  });
  afterEach(() => {
    for (const s of senders.splice(0)) s.close();
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('Lambda-style session credentials: token sent as x-amz-security-token and signed; the server accepts', async () => {
    const creds = register({ accessKeyId: 'ASIALAMBDA', secretAccessKey: 'lambda/secret+key', sessionToken: 'FwoGZXIvYXdzEJr//////////wEaD+session=' });
    const s = sender({ credentials: async () => creds });
    const ids = ['L0SM9cOFvHcCIhw=', 'a+b/c=d', "(e)*!f'"];
    const out = await Promise.all(ids.map((id) => s.send(id, '{"type":"event","data":"é"}')));
    expect(out).to.deep.equal(['ok', 'ok', 'ok']);
    expect(seen.every((x) => x.verified && x.token === creds.sessionToken && x.body === '{"type":"event","data":"é"}')).to.equal(true);
    expect(seen.map((x) => x.path).sort()).to.deep.equal(
      ['/test-stage/@connections/L0SM9cOFvHcCIhw%3D', '/test-stage/@connections/a%2Bb%2Fc%3Dd', '/test-stage/@connections/%28e%29%2A%21f%27'].sort(),
    );
  });

  it('a wrongly signed request is what the server refuses (the check can fail)', async () => {
    register({ accessKeyId: 'AKIDKNOWN', secretAccessKey: 'the-real-secret' });
    const s = sender({ credentials: { accessKeyId: 'AKIDKNOWN', secretAccessKey: 'a-wrong-secret' } });
    expect(await s.send('abc=', '{}')).to.equal('error');
    expect(seen).to.have.length(1);
    expect(seen[0].verified).to.equal(false);
  });

  it('rotating credentials: refreshed before expiry without blocking, and the new keys sign', async () => {
    let now = Date.now();
    let n = 0;
    const provider = async () => register({ accessKeyId: `ASIAROT${++n}`, secretAccessKey: `secret-${n}`, sessionToken: `token-${n}`, expiration: new Date(now + 15 * 60_000) });
    const s = sender({ credentials: provider, now: () => now });
    expect(await s.send('one', '{}')).to.equal('ok');
    now += 11 * 60_000; // 4 min before expiry: inside the 5-min refresh window
    expect(await s.send('two', '{}')).to.equal('ok'); // still the old keys, refresh started
    expect(await s.send('three', '{}')).to.equal('ok');
    expect(seen.map((x) => [x.accessKeyId, x.verified])).to.deep.equal([
      ['ASIAROT1', true],
      ['ASIAROT1', true],
      ['ASIAROT2', true],
    ]);
    expect(n).to.equal(2);
    now += 20 * 60_000; // past the expiry of ASIAROT2: the send waits for the provider
    expect(await s.send('four', '{}')).to.equal('ok');
    expect(seen.at(-1)).to.include({ accessKeyId: 'ASIAROT3', token: 'token-3', verified: true });
  });

  it('no usable credentials → error outcome, logged without the secret, nothing sent', async () => {
    const lines: string[] = [];
    const s = sender({
      credentials: async () => ({ accessKeyId: 'ASIAOLD', secretAccessKey: 'very-secret-value', expiration: new Date(Date.now() - 1000) }),
      log: createLogger({ write: (l) => lines.push(l) }),
    });
    expect(await s.send('abc', '{}')).to.equal('error');
    expect(seen).to.have.length(0);
    expect(lines.join('\n')).to.contain('credentials_expired').and.not.contain('very-secret-value');
  });

  it('a failing provider past expiry: sends fail fast, one provider call and one log line per retry window', async () => {
    let now = Date.now();
    let calls = 0;
    let down = false;
    const provider = async () => {
      calls++;
      if (down) throw new Error('IMDS unreachable');
      return register({ accessKeyId: `ASIADOWN${calls}`, secretAccessKey: `secret-${calls}`, expiration: new Date(now + 15 * 60_000) });
    };
    const lines: string[] = [];
    const s = sender({ credentials: provider, now: () => now, log: createLogger({ write: (l) => lines.push(l) }) });
    expect(await s.send('first', '{}')).to.equal('ok');
    now += 16 * 60_000; // expired
    down = true;
    const outcomes = new Set<string>();
    for (let i = 0; i < 2000; i++) outcomes.add(await s.send(`c${i}`, '{}'));
    expect([...outcomes]).to.deep.equal(['error']);
    expect(calls, 'provider calls').to.equal(2);
    expect(lines, lines.join('\n')).to.have.length(1);
    expect(lines[0]).to.contain('credentials_unavailable').and.contain('IMDS unreachable').and.not.contain('secret-');
    expect(seen).to.have.length(1);

    down = false;
    now += 10_000; // after the window the next send asks again, and recovers
    expect(await s.send('after', '{}')).to.equal('ok');
    expect(seen.at(-1)).to.include({ accessKeyId: 'ASIADOWN3', verified: true });
    expect(calls).to.equal(3);
  });

  it('maps statuses to the same outcomes as the SDK sender', async () => {
    register({ accessKeyId: 'AKIDSTATUS', secretAccessKey: 's' });
    const s = sender({ credentials: { accessKeyId: 'AKIDSTATUS', secretAccessKey: 's' }, maxSockets: 1 });
    statuses = [410, 429, 413, 500, 403, 204];
    const out: string[] = [];
    for (let i = 0; i < 6; i++) out.push(await s.send(`c${i}`, '{}'));
    expect(out).to.deep.equal(['gone', 'throttled', 'too_large', 'error', 'error', 'ok']);
  });

  it('nothing listening: posts and DeleteConnection are the error outcome (retried by fan-out), not a rejection', async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const s = new LeanSender({ endpoint: `http://127.0.0.1:${port}/test-stage`, region: 'eu-west-1', credentials: { accessKeyId: 'AKIDNET', secretAccessKey: 's' } });
    senders.push(s);
    expect(await Promise.all([s.send('a', '{}'), s.disconnect('b')])).to.deep.equal(['error', 'error']);
  });

  it('reuses keep-alive sockets (at most maxSockets) and times out a silent server', async () => {
    register({ accessKeyId: 'AKIDKA', secretAccessKey: 's' });
    // The short timeout is only for the silent server: 40 requests queued on 4 sockets of a loaded
    // machine can each take longer than 100 ms, and that is not what this test is about.
    const s = sender({ credentials: { accessKeyId: 'AKIDKA', secretAccessKey: 's' }, maxSockets: 4 });
    const out = await Promise.all(Array.from({ length: 40 }, (_, i) => s.send(`k${i}`, `{"i":${i % 3}}`)));
    expect(out.every((o) => o === 'ok')).to.equal(true);
    expect(seen.every((x) => x.verified)).to.equal(true);
    expect(seen.map((x) => x.body).filter((b) => b === '{"i":2}')).to.have.length(13);
    expect(connections).to.be.at.most(4);
    hang = true;
    const impatient = sender({ credentials: { accessKeyId: 'AKIDKA', secretAccessKey: 's' }, maxSockets: 1, timeoutMs: 100 });
    const t0 = Date.now();
    expect(await impatient.send('silent', '{}')).to.equal('error');
    expect(Date.now() - t0).to.be.lessThan(2000);
  });
});
