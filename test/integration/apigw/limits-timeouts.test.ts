import { expect } from 'chai';
import net from 'node:net';
import WebSocket from 'ws';
import { PostToConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import type { WebsocketEvent } from '../../../local/apigw/events';
import type { WebSocketEmulatorOptions } from '../../../local/apigw/websocket-emulator';
import { GoneError } from '../../../local/apigw/errors';
import { FrameSizeGuard } from '../../../local/apigw/limits';
import { Emulators, Recorder } from './helpers';
import { waitFor } from '../../support/wait';

const KB = 1024;

/** Live TCP handles of this process on `port`: a listener on it, or either end of a connection to it. */
function tcpHandlesOn(port: number): number {
  // Undocumented but stable since Node 0.x (what why-is-node-running reads); the public
  // getActiveResourcesInfo() gives only type names, which cannot tell this emulator's apart.
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  return handles.filter((h) => {
    if (h instanceof net.Socket) return !h.destroyed && (h.localPort === port || h.remotePort === port);
    if (h instanceof net.Server) return (h.address() as net.AddressInfo | null)?.port === port;
    return false;
  }).length;
}

/** Frame/message limits, binary frames, idle and maximum-duration timeouts, robustness, shutdown. */
describe('apigw emulator: limits, timeouts and robustness', () => {
  const ems = new Emulators();
  afterEach(() => ems.closeAll());

  function echoRoutes(rec: Recorder): WebSocketEmulatorOptions['routes'] {
    return {
      $connect: async (e: WebsocketEvent) => (rec.push(e), { statusCode: 200 }),
      $disconnect: async (e: WebsocketEvent) => rec.push(e),
      $default: {
        handler: async (e: WebsocketEvent) => (rec.push(e), { statusCode: 200, body: `len:${e.body!.length}` }),
        returnResponse: true,
      },
    };
  }
  const disconnects = (rec: Recorder) => rec.byRoute('$disconnect').map((e) => e.requestContext.disconnectStatusCode);

  describe('FrameSizeGuard (frame header parser)', () => {
    const frame = (opcode: number, fin: boolean, len: number) => {
      const ext = len < 126 ? Buffer.alloc(0) : len < 65536 ? Buffer.alloc(2) : Buffer.alloc(8);
      if (ext.length === 2) ext.writeUInt16BE(len);
      if (ext.length === 8) ext.writeBigUInt64BE(BigInt(len));
      const b1 = 0x80 | (len < 126 ? len : len < 65536 ? 126 : 127);
      return Buffer.concat([Buffer.from([(fin ? 0x80 : 0) | opcode, b1]), ext, Buffer.alloc(4), Buffer.alloc(len)]);
    };
    it('finds oversized frames and messages across arbitrary chunk boundaries', () => {
      const stream = Buffer.concat([frame(1, true, 100), frame(9, true, 4), frame(1, false, 300), frame(0, false, 300), frame(0, true, 300)]);
      for (const chunk of [1, 3, 7, 64, stream.length]) {
        const g = new FrameSizeGuard(400, 800);
        let v;
        for (let o = 0; o < stream.length && !v; o += chunk) v = g.push(stream.subarray(o, o + chunk));
        expect(v, `chunk ${chunk}`).to.deep.equal({ kind: 'message', bytes: 900, limit: 800 });
      }
      const g = new FrameSizeGuard(400, 800);
      expect(g.push(frame(2, true, 70_000).subarray(0, 14))).to.deep.equal({ kind: 'frame', bytes: 70_000, limit: 400 });
      const ok = new FrameSizeGuard(400, 800);
      expect(ok.push(Buffer.concat([frame(1, false, 400), frame(0, true, 400), frame(1, true, 400)]))).to.equal(undefined);
    });
  });

  it('a frame over 32 KB closes with 1009 before any handler sees it; exactly 32 KB is fine', async () => {
    const rec = new Recorder();
    const em = await ems.start({ routes: echoRoutes(rec) });
    const c = await ems.client(em.websocketUrl);
    await c.send('a'.repeat(32 * KB));
    expect(await c.text(0)).to.equal(`len:${32 * KB}`);
    await c.send('b'.repeat(32 * KB + 1)); // ws sends one frame per unfragmented message
    expect(await c.closed).to.deep.equal({ code: 1009, reason: 'Message too big' });
    await rec.waitFor(() => disconnects(rec).length === 1);
    expect(disconnects(rec)).to.deep.equal([1009]);
    expect(rec.byRoute('$default').map((e) => e.body!.length)).to.deep.equal([32 * KB]);
  });

  it('fragmented messages: each frame ≤ 32 KB and 128 KB in total pass; more than 128 KB closes with 1009', async () => {
    const rec = new Recorder();
    const em = await ems.start({ routes: echoRoutes(rec) });
    const c = await ems.client(em.websocketUrl);
    for (let i = 0; i < 4; i++) c.ws.send('x'.repeat(32 * KB), { fin: i === 3 });
    expect(await c.text(0)).to.equal(`len:${128 * KB}`);
    for (let i = 0; i < 5; i++) c.ws.send('y'.repeat(30 * KB), { fin: i === 4 });
    expect((await c.closed).code).to.equal(1009);
    await rec.waitFor(() => disconnects(rec).length === 1);
    expect(rec.byRoute('$default')).to.have.length(1);
  });

  it('limits are configurable', async () => {
    const rec = new Recorder();
    const em = await ems.start({ routes: echoRoutes(rec), frameLimitBytes: 10, messageLimitBytes: 25 });
    const c = await ems.client(em.websocketUrl);
    c.ws.send('0123456789', { fin: false });
    c.ws.send('0123456789', { fin: true });
    expect(await c.text(0)).to.equal('len:20');
    await c.send('01234567890');
    expect((await c.closed).code).to.equal(1009);
  });

  it('a binary frame closes with 1003 (API Gateway does not accept binary frames); others keep working', async () => {
    const rec = new Recorder();
    const em = await ems.start({ routes: echoRoutes(rec) });
    const bad = await ems.client(em.websocketUrl);
    const good = await ems.client(em.websocketUrl);
    bad.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    expect(await bad.closed).to.deep.equal({ code: 1003, reason: 'Binary frames are not supported' });
    await good.send('still here');
    expect(await good.text(0)).to.equal('len:10');
    await rec.waitFor(() => disconnects(rec).length === 1);
    expect(disconnects(rec)).to.deep.equal([1003]);
    expect(rec.byRoute('$default').map((e) => e.body)).to.deep.equal(['still here']);
  });

  it('invalid UTF-8 in a text frame closes with 1007 (ws validation); others keep working', async () => {
    const rec = new Recorder();
    const em = await ems.start({ routes: echoRoutes(rec) });
    const bad = await ems.client(em.websocketUrl);
    const good = await ems.client(em.websocketUrl);
    bad.ws.send(Buffer.from([0xc3, 0x28]), { binary: false });
    expect((await bad.closed).code).to.equal(1007);
    await good.send('ok');
    expect(await good.text(0)).to.equal('len:2');
  });

  it('idle timeout: no client message for idleTimeoutMs closes with 1001 and runs $disconnect; server posts do not count', async () => {
    const rec = new Recorder();
    // Both bounds below leave half a period to spare: a second, not tens of ms, for a loaded host
    // to run the sleeps and calls late.
    const idleTimeoutMs = 2000;
    const em = await ems.start({ routes: echoRoutes(rec), idleTimeoutMs });
    const c = await ems.client(em.websocketUrl);
    const [id] = em.connectionIds();
    const sdk = ems.sdk(em);
    await new Promise((r) => setTimeout(r, idleTimeoutMs / 2));
    // Taken before the send: the emulator cannot receive (and re-arm on) it any earlier.
    const lastClientMessage = Date.now();
    await c.send('keepalive'); // resets the idle timer
    await new Promise((r) => setTimeout(r, idleTimeoutMs / 2));
    const postedAt = Date.now();
    await sdk.send(new PostToConnectionCommand({ ConnectionId: id, Data: Buffer.from('server push') })); // does not reset it
    const closed = await c.closed;
    const closedAt = Date.now();
    expect(closed).to.deep.equal({ code: 1001, reason: 'Going away' });
    // Idle counts from the keepalive (without its reset the close would come half a period after it)...
    expect(closedAt - lastClientMessage).to.be.at.least(idleTimeoutMs - 5);
    // ...and not from the post: one that re-armed the timer could not close before a whole
    // period after postedAt, whatever the load; honestly it closes about half a period after it.
    expect(closedAt - postedAt).to.be.below(idleTimeoutMs);
    await rec.waitFor(() => disconnects(rec).length === 1);
    expect(rec.byRoute('$disconnect')[0].requestContext).to.include({ disconnectStatusCode: 1001, disconnectReason: 'Going away' });
  });

  it('maximum duration closes an active connection with 1001', async () => {
    const rec = new Recorder();
    const maxDurationMs = 500;
    const em = await ems.start({ routes: echoRoutes(rec), maxDurationMs });
    // Taken before connecting: the cap counts from connectedAt, which is before the client sees
    // the upgrade (and before $connect ran), so it cannot close sooner than this after t0.
    const t0 = Date.now();
    const c = await ems.client(em.websocketUrl);
    const timer = setInterval(() => c.ws.readyState === WebSocket.OPEN && c.ws.send('tick'), 40);
    try {
      expect((await c.closed).code).to.equal(1001);
    } finally {
      clearInterval(timer);
    }
    // Not before the cap, and long before the idle timeout (10 min by default) could close it.
    expect(Date.now() - t0).to.be.within(maxDurationMs - 5, maxDurationMs + 5000);
    await rec.waitFor(() => disconnects(rec).length === 1);
  });

  it('disconnect(id) closes, runs $disconnect and resolves after it; unknown ids reject with GoneError', async () => {
    const rec = new Recorder();
    const em = await ems.start({ routes: echoRoutes(rec) });
    const c = await ems.client(em.websocketUrl);
    const [id] = em.connectionIds();
    await em.disconnect(id);
    expect(disconnects(rec)).to.deep.equal([1000]);
    expect((await c.closed).code).to.equal(1000);
    const err = await em.disconnect(id).catch((e) => e);
    expect(err).to.be.instanceOf(GoneError);
    expect(err.code).to.equal('GoneException');
  });

  it('a client reset during $connect does not crash the emulator; the accepted connection gets $disconnect 1006', async () => {
    const rec = new Recorder();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const em = await ems.start({
      routes: {
        $connect: async (e) => (rec.push(e), await gate, { statusCode: 200 }),
        $disconnect: async (e) => rec.push(e),
        $default: { handler: async () => ({ body: 'alive' }), returnResponse: true },
      },
    });
    const sock = net.connect(em.port, '127.0.0.1', () =>
      sock.write(`GET /${em.stage} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`),
    );
    await rec.waitFor((ev) => ev.length === 1);
    sock.resetAndDestroy();
    await new Promise((r) => setTimeout(r, 30));
    release();
    await rec.waitFor(() => disconnects(rec).length === 1);
    expect(disconnects(rec)).to.deep.equal([1006]);
    expect(em.connectionIds()).to.deep.equal([]);
    const c = await ems.client(em.websocketUrl);
    await c.send('x');
    expect(await c.text(0)).to.equal('alive');
  });

  it('bad input on some connections never affects the others', async () => {
    const rec = new Recorder();
    const em = await ems.start({
      routes: {
        $disconnect: async (e) => rec.push(e),
        boom: async () => {
          throw new TypeError('handler bug');
        },
        $default: { handler: async (e) => ({ body: `echo:${e.body}` }), returnResponse: true },
      },
    });
    const watcher = await ems.client(em.websocketUrl);
    const victims = await Promise.all([1, 2, 3, 4].map(() => ems.client(em.websocketUrl)));
    victims[0].ws.send('z'.repeat(40 * KB));
    victims[1].ws.send(Buffer.from([0]), { binary: true });
    victims[2].ws.terminate();
    await victims[3].send('{"action":"boom"}');
    await victims[3].send('{not json');
    await watcher.send('{"action":"hello"}');
    expect(await watcher.text(0)).to.equal('echo:{"action":"hello"}');
    expect(JSON.parse(await victims[3].text(0)).message).to.equal('Internal server error');
    expect(await victims[3].text(1)).to.equal('echo:{not json');
    await rec.waitFor(() => disconnects(rec).length === 3);
    expect(disconnects(rec).sort()).to.deep.equal([1003, 1006, 1009]);
    expect(em.connectionIds()).to.have.length(2);
  });

  it('close() runs $disconnect for every open socket, closes the port and leaves no sockets', async () => {
    // Timers are not counted here: mocha keeps its own. A standalone script that starts the
    // emulator, connects and calls close() exits at once (see docs/apigw-emulator.md).
    // Only this emulator's handles count (its listener, both ends of every socket to its port):
    // sockets of earlier tests still being torn down, or closing at any time, are not its own.
    const rec = new Recorder();
    const em = await ems.start({ routes: echoRoutes(rec) });
    const onPort = () => tcpHandlesOn(em.port);
    expect(onPort(), 'the listener counts').to.be.greaterThan(0);
    const clients = await Promise.all([1, 2, 3].map(() => ems.client(em.websocketUrl)));
    const sdk = ems.sdk(em);
    await sdk.send(new PostToConnectionCommand({ ConnectionId: em.connectionIds()[0], Data: Buffer.from('x') }));
    await em.close();
    expect(disconnects(rec)).to.deep.equal([1001, 1001, 1001]);
    for (const c of clients) expect((await c.closed).code).to.equal(1001);
    expect(em.connectionIds()).to.deep.equal([]);
    const refused = await new Promise<string>((resolve) => {
      const s = net.connect(em.port, '127.0.0.1');
      s.on('connect', () => (s.destroy(), resolve('connected')));
      s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    });
    expect(refused).to.equal('ECONNREFUSED');
    sdk.destroy();
    // Handle teardown is asynchronous (libuv closes a handle on a later tick of the loop).
    await waitFor(() => onPort() === 0, 5000, () => `no handle left on port ${em.port} (${onPort()} left)`);
    await em.close(); // idempotent
  });
});
