import { expect } from 'chai';
import {
  DeleteConnectionCommand,
  GetConnectionCommand,
  GoneException,
  PayloadTooLargeException,
  PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import type { WebSocketEmulator } from '../../../local/apigw/websocket-emulator';
import { EmulatorOptionError } from '../../../local/apigw/errors';
import { Emulators, Recorder, idsFrom, rawClient } from './helpers';

/** The @connections wire contract, driven by the real @aws-sdk/client-apigatewaymanagementapi. */
describe('apigw emulator: management API with the real AWS SDK client', () => {
  const ems = new Emulators();
  let rec: Recorder;
  afterEach(() => ems.closeAll());

  async function start(extra: Partial<Parameters<Emulators['start']>[0]> = {}): Promise<WebSocketEmulator> {
    rec = new Recorder();
    return ems.recording(rec, extra);
  }


  it('POST sends text to the client, GET describes the connection, DELETE closes it and runs $disconnect', async () => {
    const em = await start();
    const client = await ems.client(em.websocketUrl, undefined, { headers: { 'User-Agent': 'rt-test/1.0' } });
    const [id] = em.connectionIds();
    expect(id).to.match(/^[A-Za-z0-9+/]{15}=$/);
    const sdk = ems.sdk(em);

    await sdk.send(new PostToConnectionCommand({ ConnectionId: id, Data: Buffer.from('{"hello":"wörld"}') }));
    const m = await client.message(0);
    expect(m.isBinary).to.equal(false);
    expect(m.data.toString()).to.equal('{"hello":"wörld"}');

    await client.send('{"action":"x"}');
    await rec.waitFor((ev) => ev.some((e) => e.requestContext.eventType === 'MESSAGE'));
    const got = await sdk.send(new GetConnectionCommand({ ConnectionId: id }));
    expect(got.ConnectedAt).to.be.instanceOf(Date);
    expect(got.LastActiveAt).to.be.instanceOf(Date);
    expect(got.ConnectedAt!.getTime()).to.equal(rec.byRoute('$connect')[0].requestContext.connectedAt);
    expect(got.LastActiveAt!.getTime()).to.be.greaterThan(got.ConnectedAt!.getTime() - 1);
    expect(got.Identity).to.deep.equal({ SourceIp: '127.0.0.1', UserAgent: 'rt-test/1.0' });

    await sdk.send(new DeleteConnectionCommand({ ConnectionId: id }));
    const closed = await client.closed;
    expect(closed.code).to.equal(1000);
    await rec.waitFor((ev) => ev.some((e) => e.requestContext.eventType === 'DISCONNECT'));
    expect(rec.byRoute('$disconnect')[0].requestContext.disconnectStatusCode).to.equal(1000);
    expect(em.connectionIds()).to.deep.equal([]);
    // After DELETE the id is gone for every operation.
    const err = await sdk.send(new PostToConnectionCommand({ ConnectionId: id, Data: Buffer.from('x') })).catch((e) => e);
    expect(err).to.be.instanceOf(GoneException);
  });

  it('unknown ids answer 410 GoneException (the SDK names it) for POST, GET and DELETE', async () => {
    const em = await start();
    const sdk = ems.sdk(em);
    for (const cmd of [
      new PostToConnectionCommand({ ConnectionId: 'nope0000000000=', Data: Buffer.from('x') }),
      new GetConnectionCommand({ ConnectionId: 'nope0000000000=' }),
      new DeleteConnectionCommand({ ConnectionId: 'nope0000000000=' }),
    ]) {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const err = await sdk.send(cmd as any).catch((e: unknown) => e);
      expect(err, cmd.constructor.name).to.be.instanceOf(GoneException);
      expect((err as GoneException).$metadata.httpStatusCode).to.equal(410);
      expect((err as GoneException).name).to.equal('GoneException');
    }
    // The raw response carries the header the SDK relies on, and a JSON message.
    const res = await fetch(`${em.managementUrl}/@connections/nope`, { method: 'POST', body: 'x' });
    expect(res.status).to.equal(410);
    expect(res.headers.get('x-amzn-errortype')).to.equal('GoneException');
    expect(await res.json()).to.have.property('message').that.is.a('string');
  });

  it('connection ids containing +, / and = work through the SDK (URL-encoded path segment)', async () => {
    const special = ['a+b/c+d/e+f/gh=', '//++//++//++/A=', 'Zm9vYmFy/+Q0A='];
    const em = await start({ idGenerator: idsFrom(special) });
    const clients = [];
    for (let i = 0; i < special.length; i++) clients.push(await ems.client(em.websocketUrl));
    expect(em.connectionIds().sort()).to.deep.equal([...special].sort());
    const sdk = ems.sdk(em);
    for (const id of special) {
      await sdk.send(new PostToConnectionCommand({ ConnectionId: id, Data: Buffer.from(`for ${id}`) }));
      const got = await sdk.send(new GetConnectionCommand({ ConnectionId: id }));
      expect(got.Identity?.SourceIp).to.equal('127.0.0.1');
    }
    // Each post reached exactly the socket with that id (connect order = id order).
    for (let i = 0; i < special.length; i++) expect(await clients[i].text(0)).to.equal(`for ${special[i]}`);
    await sdk.send(new DeleteConnectionCommand({ ConnectionId: special[1] }));
    expect((await clients[1].closed).code).to.equal(1000);
    expect(em.connectionIds().sort()).to.deep.equal([special[0], special[2]].sort());
  });

  it('POST over 128 KB answers 413 PayloadTooLargeException and sends nothing; exactly 128 KB is delivered', async () => {
    const em = await start();
    const client = await ems.client(em.websocketUrl);
    const [id] = em.connectionIds();
    const sdk = ems.sdk(em);
    const err = await sdk.send(new PostToConnectionCommand({ ConnectionId: id, Data: Buffer.alloc(128 * 1024 + 1, 97) })).catch((e) => e);
    expect(err).to.be.instanceOf(PayloadTooLargeException);
    expect(err.$metadata.httpStatusCode).to.equal(413);
    await sdk.send(new PostToConnectionCommand({ ConnectionId: id, Data: Buffer.alloc(128 * 1024, 98) }));
    const m = await client.message(0);
    expect(m.data.length).to.equal(128 * 1024);
    expect(m.data[0]).to.equal(98); // the 413 payload (97s) never arrived
    expect(client.messages).to.have.length(1);
  });

  it('splits posts over 32 KB into frames of at most 32 KB; non-UTF-8 data goes as binary', async () => {
    const em = await start();
    const raw = await rawClient(em.websocketUrl);
    try {
      await rec.waitFor(() => em.connectionIds().length === 1);
      const [id] = em.connectionIds();
      const sdk = ems.sdk(em);
      await sdk.send(new PostToConnectionCommand({ ConnectionId: id, Data: Buffer.alloc(100 * 1024, 120) }));
      await raw.waitFrames(4);
      expect(raw.frames.map((f) => [f.opcode, f.fin, f.length])).to.deep.equal([
        [1, false, 32768],
        [0, false, 32768],
        [0, false, 32768],
        [0, true, 4096],
      ]);
      await sdk.send(new PostToConnectionCommand({ ConnectionId: id, Data: Buffer.from([0xff, 0xfe, 0x00]) }));
      await raw.waitFrames(5);
      expect(raw.frames[4]).to.deep.equal({ opcode: 2, fin: true, length: 3 });
    } finally {
      raw.destroy();
    }
  });

  it('the connection does not exist for the management API until $connect returns', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let connectId = '';
    const em = await ems.start({
      routes: {
        $connect: async (e) => {
          connectId = e.requestContext.connectionId;
          await gate;
          return { statusCode: 200 };
        },
      },
    });
    const opening = ems.client(em.websocketUrl);
    const sdk = ems.sdk(em);
    while (!connectId) await new Promise((r) => setTimeout(r, 10));
    const err = await sdk.send(new PostToConnectionCommand({ ConnectionId: connectId, Data: Buffer.from('early') })).catch((e) => e);
    expect(err).to.be.instanceOf(GoneException);
    expect(em.connectionIds()).to.deep.equal([]);
    release();
    const client = await opening;
    await sdk.send(new PostToConnectionCommand({ ConnectionId: connectId, Data: Buffer.from('now') }));
    expect(await client.text(0)).to.equal('now');
  });

  it('other paths and methods get AWS-style errors; the stage prefix is required', async () => {
    const em = await start();
    await ems.client(em.websocketUrl);
    const [id] = em.connectionIds();
    const put = await fetch(`${em.managementUrl}/@connections/${encodeURIComponent(id)}`, { method: 'PUT', body: 'x' });
    expect(put.status).to.equal(405);
    expect(put.headers.get('x-amzn-errortype')).to.equal('MethodNotAllowedException');
    const noStage = await fetch(`http://127.0.0.1:${em.port}/@connections/${encodeURIComponent(id)}`);
    expect(noStage.status).to.equal(404);
    expect(noStage.headers.get('x-amzn-errortype')).to.equal('NotFoundException');
    const wrongStage = await fetch(`http://127.0.0.1:${em.port}/prod/@connections/${encodeURIComponent(id)}`);
    expect(wrongStage.status).to.equal(404);
    const ok = await fetch(`${em.managementUrl}/@connections/${encodeURIComponent(id)}`);
    expect(ok.status).to.equal(200);
    expect(Object.keys(await ok.json())).to.deep.equal(['connectedAt', 'identity', 'lastActiveAt']);
  });

  it('managementLatencyMs delays every @connections answer by a fixed time (default 0); bad values are refused', async () => {
    const err = await start({ managementLatencyMs: -1 }).catch((e) => e);
    expect(err).to.be.instanceOf(EmulatorOptionError);
    expect(err.option).to.equal('managementLatencyMs');
    expect((await start()).managementLatencyMs, 'the default').to.equal(0);
    // Large against a loopback call on a loaded host: "no latency" is told apart by being under
    // half of it, with hundreds of ms to spare.
    const LATENCY = 500;
    const em = await start({ managementLatencyMs: LATENCY });
    expect(em.managementLatencyMs).to.equal(LATENCY);
    const client = await ems.client(em.websocketUrl);
    const [id] = em.connectionIds();
    const sdk = ems.sdk(em);
    await sdk.send(new GetConnectionCommand({ ConnectionId: id })); // warm the keep-alive socket
    const timed = async () => {
      const t0 = performance.now();
      await sdk.send(new PostToConnectionCommand({ ConnectionId: id, Data: Buffer.from('x') }));
      return performance.now() - t0;
    };
    expect(await timed()).to.be.at.least(LATENCY - 1);
    expect(await client.text(0)).to.equal('x');
    // Gone answers are delayed too: the latency stands in for the round trip, whatever the outcome.
    const t0 = performance.now();
    const gone = await sdk.send(new PostToConnectionCommand({ ConnectionId: 'AAAAAAAAAAAAAAA=', Data: Buffer.from('x') })).catch((e) => e);
    expect(gone).to.be.instanceOf(GoneException);
    expect(performance.now() - t0).to.be.at.least(LATENCY - 1);
    // Writable at run time (the fan-out benchmark switches it without reconnecting its clients).
    em.managementLatencyMs = 0;
    expect(await timed()).to.be.below(LATENCY / 2);
  });
});
