import { expect } from 'chai';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { startTestStack, type LocalStack } from '../../support/stack';
import { TestClient } from './support/client';
import { rowCount, waitForNoConnections } from './support/rows';

/** $connect authentication in jwt mode, end to end through the emulator's upgrade handling. */
describe('subscriber auth (local stack, AUTH_MODE=jwt)', function () {
  this.timeout(30_000);
  const SECRET = 'test-secret-of-at-least-thirty-two-bytes!!';
  let stack: LocalStack;
  const clients: TestClient[] = [];
  const token = (claims: Record<string, unknown>, opts: { exp?: string | number; secret?: string; sub?: string } = {}) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(opts.sub ?? 'carol')
      .setIssuedAt()
      .setExpirationTime(opts.exp ?? '5m')
      .sign(new TextEncoder().encode(opts.secret ?? SECRET));
  const connectionRows = () => rowCount(stack, stack.tables.connections);
  const url = (q = '') => `${stack.endpoints.websocketUrl}${q}`;
  const open = async (q: string, opts: Parameters<typeof TestClient.connect>[1] = {}) => {
    const c = await TestClient.connect(url(q), opts);
    clients.push(c);
    return c;
  };

  before(async () => {
    stack = await startTestStack({ env: { AUTH_MODE: 'jwt', JWT_HS256_SECRET: SECRET } });
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    // $disconnect runs after the close completes; wait for it so row counts start from zero.
    await waitForNoConnections(stack);
  });
  after(async () => {
    await stack?.stop();
  });

  it('accepts a token in Sec-WebSocket-Protocol ("bearer, <jwt>") and echoes "bearer", not the token', async () => {
    const t = await token({ topics: ['vehicle:*'] });
    const c = await open('', { protocols: ['bearer', t] });
    expect(c.protocol).to.equal('bearer');
    expect((await c.request({ action: 'subscribe', topic: 'vehicle:1' }, 'snapshot')).seq).to.equal(0);
  });

  it('accepts a token in the Authorization header and in ?token=', async () => {
    const t = await token({ topics: ['vehicle:*'] });
    const a = await open('', { headers: { Authorization: `Bearer ${t}` } });
    expect((await a.request({ action: 'ping' }, 'pong')).type).to.equal('pong');
    const b = await open(`?token=${t}`);
    expect((await b.request({ action: 'ping' }, 'pong')).type).to.equal('pong');
  });

  it('refuses a missing token with 401 and writes no row', async () => {
    const before = await connectionRows();
    expect(await TestClient.refusedStatus(url('?userId=mallory'))).to.equal(401);
    expect(await connectionRows()).to.equal(before);
  });

  it('refuses a forged signature with 401 and writes no row', async () => {
    const before = await connectionRows();
    const t = await token({ topics: ['*'] }, { secret: 'another-secret-of-at-least-thirty-two-bytes' });
    expect(await TestClient.refusedStatus(url(`?token=${t}`))).to.equal(401);
    expect(await connectionRows()).to.equal(before);
  });

  it('refuses an expired token with 401 and writes no row', async () => {
    const before = await connectionRows();
    const t = await token({ topics: ['*'] }, { exp: Math.floor(Date.now() / 1000) - 60 });
    expect(await TestClient.refusedStatus(url(`?token=${t}`))).to.equal(401);
    expect(await connectionRows()).to.equal(before);
  });

  it('refuses an item-key topic outside the token with 403 and writes no row', async () => {
    const before = await connectionRows();
    const t = await token({ topics: ['vehicleId:1'] });
    expect(await TestClient.refusedStatus(url(`?token=${t}&vehicleId=2`))).to.equal(403);
    expect(await connectionRows()).to.equal(before);
    // The allowed one connects.
    await open(`?token=${t}&vehicleId=1`);
  });

  it('answers forbidden for a subscribe outside the allowed patterns, and writes nothing', async () => {
    const t = await token({ topics: ['vehicle:*'] });
    const c = await open(`?token=${t}`);
    const subsBefore = (await stack.clients.doc.send(new ScanCommand({ TableName: stack.tables.subscriptions, Select: 'COUNT' }))).Count;
    const err = await c.request({ action: 'subscribe', topic: 'battery:1' }, 'error');
    expect(err).to.include({ type: 'error', code: 'forbidden', topic: 'battery:1' });
    expect((await stack.clients.doc.send(new ScanCommand({ TableName: stack.tables.subscriptions, Select: 'COUNT' }))).Count).to.equal(subsBefore);
    expect((await c.request({ action: 'subscribe', topic: 'vehicle:9' }, 'snapshot')).topic).to.equal('vehicle:9');
  });

  it('allows a collection subscribe only when the topics claim allows the pattern, not one member', async () => {
    const member = await open(`?token=${await token({ topics: ['battery:1'] })}`);
    const subsBefore = (await stack.clients.doc.send(new ScanCommand({ TableName: stack.tables.subscriptions, Select: 'COUNT' }))).Count;
    const err = await member.request({ action: 'subscribe', topic: 'battery:*' }, 'error');
    expect(err).to.include({ type: 'error', code: 'forbidden', topic: 'battery:*' });
    expect((await stack.clients.doc.send(new ScanCommand({ TableName: stack.tables.subscriptions, Select: 'COUNT' }))).Count).to.equal(subsBefore);
    const fleet = await open(`?token=${await token({ topics: ['battery:*'] })}`);
    const snap = await fleet.request({ action: 'subscribe', topic: 'battery:*' }, 'snapshot');
    expect(snap).to.deep.include({ topic: 'battery:*', items: [] });
  });

  // API Gateway does not pass a $connect body to the client (the emulator answers its own
  // {"message":"Unauthorized"}); the reason, with the fix, is in the connect log and the handler's answer.
  it('never echoes the token: an upgrade offering only a token is refused with 401 and writes nothing', async () => {
    const t = await token({ topics: ['vehicle:*'] });
    const before = await connectionRows();
    const refused = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const ws = new WebSocket(url(), [t]);
      ws.once('open', () => reject(new Error('the upgrade was accepted')));
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString('utf8')));
        res.on('end', () => {
          ws.terminate();
          resolve({ status: res.statusCode ?? 0, body });
        });
      });
      ws.once('error', () => {});
    });
    expect(refused.status).to.equal(401);
    expect(refused.body).to.not.include(t);
    expect(await connectionRows()).to.equal(before);
    // Two tokens and another protocol: the other protocol is echoed, never a token.
    const c = await open('', { protocols: [t, t.split('').reverse().join(''), 'rtg.v1'] });
    expect(c.protocol).to.equal('rtg.v1');
  });

});
