import { expect } from 'chai';
import { LimitExceededException, PostToConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import type { WebSocketEmulator } from '../../../local/apigw/websocket-emulator';
import { Emulators } from './helpers';

/** The account's @connections quota and the round trip, driven by the real AWS SDK client and plain HTTP. */
describe('apigw emulator: @connections quota and round trip', () => {
  const ems = new Emulators();
  afterEach(() => ems.closeAll());

  const start = (extra: Partial<Parameters<Emulators['start']>[0]> = {}) => ems.start({ routes: { $connect: async () => ({ statusCode: 200 }), $default: async () => {} }, ...extra });
  const setting = (em: WebSocketEmulator, what: string, method: string, body?: unknown) =>
    fetch(`${em.managementUrl}/_emulator/${what}`, { method, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });

  it('past its burst every @connections call is answered 429 LimitExceededException, as the SDK names it', async () => {
    // A refill slower than the test (one token per 1,000 s): three SDK calls may take over a
    // second on a loaded host, and at 1/s a token refilled meanwhile would admit the fourth.
    const em = await start({ quota: { rps: 0.001, burst: 3 } });
    const client = await ems.client(em.websocketUrl);
    const [id] = em.connectionIds();
    const sdk = ems.sdk(em);
    for (let i = 0; i < 3; i++) await sdk.send(new PostToConnectionCommand({ ConnectionId: id, Data: Buffer.from(`m${i}`) }));
    try {
      await sdk.send(new PostToConnectionCommand({ ConnectionId: id, Data: Buffer.from('over') }));
      expect.fail('the fourth post should have been throttled');
    } catch (err) {
      expect(err).to.be.instanceOf(LimitExceededException);
      expect((err as LimitExceededException).$metadata.httpStatusCode).to.equal(429);
    }
    const raw = await fetch(`${em.managementUrl}/@connections/${encodeURIComponent(id)}`);
    expect(raw.status).to.equal(429);
    expect(raw.headers.get('x-amzn-errortype')).to.equal('LimitExceededException');
    expect(await raw.json()).to.deep.equal({ message: 'Too Many Requests' });
    // What was admitted arrived; what was throttled did not.
    expect((await client.message(2)).data.toString()).to.equal('m2');
    expect(await (await setting(em, 'quota', 'GET')).json()).to.deep.equal({ rps: 0.001, burst: 3, admitted: 3, throttled: 2 });
  });

  it('_emulator/quota puts a quota in force at run time (a full bucket), shows it, and DELETE lifts it', async () => {
    const em = await start();
    await ems.client(em.websocketUrl);
    const [id] = em.connectionIds();
    const post = () => fetch(`${em.managementUrl}/@connections/${encodeURIComponent(id)}`, { method: 'POST', body: 'x' }).then((r) => r.status);
    expect(await (await setting(em, 'quota', 'GET')).json()).to.deep.equal({});
    const bad = await setting(em, 'quota', 'PUT', { rps: -1 });
    expect(bad.status).to.equal(400);
    expect(((await bad.json()) as { message: string }).message).to.contain('quota.rps');
    expect(await post()).to.equal(200);

    expect((await setting(em, 'quota', 'PUT', { rps: 0.001, burst: 1 })).status).to.equal(200);
    expect([await post(), await post()]).to.deep.equal([200, 429]);
    expect((await setting(em, 'quota', 'DELETE')).status).to.equal(204);
    expect([await post(), await post()]).to.deep.equal([200, 200]);
  });

  it('_emulator/latency adds a round trip drawn from its distribution to every call', async () => {
    const em = await start();
    await ems.client(em.websocketUrl);
    const [id] = em.connectionIds();
    const timed = async () => {
      const t = performance.now();
      await fetch(`${em.managementUrl}/@connections/${encodeURIComponent(id)}`, { method: 'POST', body: 'x' });
      return performance.now() - t;
    };
    // The added round trip is large against what a loopback call takes on a loaded host, so
    // "no latency" is told apart with hundreds of ms to spare: under half the injected minimum.
    const MIN = 500;
    const MAX = 550;
    await timed(); // keep-alive socket open
    expect(await timed()).to.be.below(MIN / 2);
    expect(await (await setting(em, 'latency', 'PUT', { min: MIN, max: MAX })).json()).to.deep.equal({ kind: 'uniform', min: MIN, max: MAX });
    for (let i = 0; i < 2; i++) expect(await timed()).to.be.at.least(MIN - 1);
    expect(await (await setting(em, 'latency', 'GET')).json()).to.deep.equal({ kind: 'uniform', min: MIN, max: MAX });
    expect((await setting(em, 'latency', 'PUT', { min: 9, max: 1 })).status).to.equal(400);
    expect((await setting(em, 'latency', 'DELETE')).status).to.equal(204);
    expect(await timed()).to.be.below(MIN / 2);
  });
});
