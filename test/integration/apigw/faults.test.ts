import { expect } from 'chai';
import {
  DeleteConnectionCommand,
  LimitExceededException,
  PostToConnectionCommand,
  type ApiGatewayManagementApiClient,
} from '@aws-sdk/client-apigatewaymanagementapi';
import type { WebSocketEmulator } from '../../../local/apigw/websocket-emulator';
import { FaultSpecError, parseFaultsFlag } from '../../../local/apigw/faults';
import { Emulators, Recorder } from './helpers';

/** Fault injection in the management API, driven by the real AWS SDK client and plain HTTP. */
describe('apigw emulator: management API fault injection', () => {
  const ems = new Emulators();
  let rec: Recorder;
  afterEach(() => ems.closeAll());

  async function start(extra: Partial<Parameters<Emulators['start']>[0]> = {}): Promise<WebSocketEmulator> {
    rec = new Recorder();
    return ems.recording(rec, extra);
  }

  const faults = (em: WebSocketEmulator, method: string, body?: unknown) =>
    fetch(`${em.managementUrl}/_emulator/faults`, { method, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const post = async (sdk: ApiGatewayManagementApiClient, id: string) => {
    try {
      await sdk.send(new PostToConnectionCommand({ ConnectionId: id, Data: Buffer.from('x') }));
      return 'ok';
    } catch (err) {
      return `${(err as Error).name} ${(err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode}`;
    }
  };

  it('lists live connections with id, connectedAt, sourceIp and query string (a token redacted)', async () => {
    const em = await start();
    await ems.client(`${em.websocketUrl}?userId=alice&token=secret.jwt.value`);
    await ems.client(em.websocketUrl);
    const r = await fetch(`${em.managementUrl}/_emulator/connections`);
    expect(r.status).to.equal(200);
    const { connections } = (await r.json()) as { connections: { connectionId: string; connectedAt: string; sourceIp: string; queryString: string }[] };
    expect(connections.map((c) => c.connectionId).sort()).to.deep.equal(em.connectionIds().sort());
    const alice = connections.find((c) => c.queryString.includes('alice'))!;
    expect(alice.queryString).to.equal('userId=alice&token=***');
    expect(alice.sourceIp).to.equal('127.0.0.1');
    expect(Date.parse(alice.connectedAt)).to.equal(rec.byRoute('$connect').find((e) => e.requestContext.connectionId === alice.connectionId)!.requestContext.connectedAt);
    expect(connections.find((c) => c !== alice)!.queryString).to.equal('');
  });

  it('a chosen connection always fails PostToConnection with AWS error shapes; others and DELETE still work; DELETE clears', async () => {
    const em = await start();
    await ems.client(em.websocketUrl);
    const other = await ems.client(em.websocketUrl);
    const [bad, good] = em.connectionIds();
    const sdk = ems.sdk(em);
    const put = await faults(em, 'PUT', { connections: { [bad]: 429 } });
    expect(put.status).to.equal(200);

    const raw = await fetch(`${em.managementUrl}/@connections/${encodeURIComponent(bad)}`, { method: 'POST', body: 'x' });
    expect(raw.status).to.equal(429);
    expect(raw.headers.get('x-amzn-errortype')).to.equal('LimitExceededException');
    expect(await raw.json()).to.deep.equal({ message: 'Too Many Requests' });
    try {
      await sdk.send(new PostToConnectionCommand({ ConnectionId: bad, Data: Buffer.from('x') }));
      expect.fail('the post should have been throttled');
    } catch (err) {
      expect(err).to.be.instanceOf(LimitExceededException);
    }
    expect(await post(sdk, good)).to.equal('ok');
    expect((await other.message(0)).data.toString()).to.equal('x');

    expect((await faults(em, 'DELETE')).status).to.equal(204);
    expect(await (await faults(em, 'GET')).json()).to.deep.equal({});
    expect(await post(sdk, bad)).to.equal('ok');
    await sdk.send(new DeleteConnectionCommand({ ConnectionId: bad }));
    await rec.waitFor(() => rec.byRoute('$disconnect').length === 1);
  });

  it('rate fails that fraction of calls with the chosen statuses and adds latency', async () => {
    const em = await start();
    await ems.client(em.websocketUrl);
    const [id] = em.connectionIds();
    const sdk = ems.sdk(em);
    await faults(em, 'PUT', { rate: 0.5, statuses: [429, 500], latencyMs: [20, 30] });
    const t0 = Date.now();
    const outcomes: string[] = [];
    for (let i = 0; i < 100; i++) outcomes.push(await post(sdk, id));
    const perCall = (Date.now() - t0) / 100;
    const count = (s: string) => outcomes.filter((o) => o === s).length;
    expect(count('ok')).to.be.within(25, 75);
    expect(count('LimitExceededException 429')).to.be.greaterThan(8);
    expect(count('InternalServerErrorException 500')).to.be.greaterThan(8);
    expect(count('ok') + count('LimitExceededException 429') + count('InternalServerErrorException 500')).to.equal(100);
    expect(perCall).to.be.at.least(20);
  });

  it('refuses a fault specification it cannot honour, naming the field, and keeps the previous one', async () => {
    const em = await start();
    await faults(em, 'PUT', { rate: 0.1 });
    for (const [body, field] of [
      [{ rate: 2 }, 'rate'],
      [{ statuses: [418] }, 'statuses[0]'],
      [{ latencyMs: [40, 20] }, 'latencyMs'],
      [{ connections: { a: 'x' } }, 'connections.a'],
      [{ rte: 0.2 }, 'rte'],
    ] as const) {
      const r = await faults(em, 'PUT', body);
      expect(r.status, JSON.stringify(body)).to.equal(400);
      expect(((await r.json()) as { message: string }).message).to.contain(`faults.${field}:`);
    }
    const bad = await fetch(`${em.managementUrl}/_emulator/faults`, { method: 'PUT', body: '{nope' });
    expect(bad.status).to.equal(400);
    expect(await (await faults(em, 'GET')).json()).to.deep.include({ rate: 0.1 });
  });

  it('--faults reads rate, statuses and latency, and names a bad key', () => {
    expect(parseFaultsFlag('rate=0.2,statuses=429|500,latencyMs=20|40')).to.deep.equal({ rate: 0.2, statuses: [429, 500], latencyMs: [20, 40], connections: {} });
    expect(() => parseFaultsFlag('rate=0.2,status=429')).to.throw(FaultSpecError, /faults\.status:/);
    expect(() => parseFaultsFlag('rate=lots')).to.throw(FaultSpecError, /faults\.rate:/);
  });
});
