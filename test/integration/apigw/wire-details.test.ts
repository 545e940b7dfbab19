import net from 'node:net';
import { expect } from 'chai';
import { GoneException, PostToConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import WebSocket from 'ws';
import { Emulators, Recorder } from './helpers';
import { waitFor } from '../../support/wait';

const UPGRADE = (stage: string) =>
  `GET /${stage} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';

/** A raw TCP WebSocket client: upgraded, then left to the test (it reads nothing unless told). */
async function rawUpgraded(port: number, stage: string): Promise<net.Socket> {
  const sock = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.once('connect', () => sock.write(UPGRADE(stage)));
    let head = '';
    const onData = (c: Buffer) => {
      head += c.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      sock.off('data', onData);
      sock.pause();
      if (head.startsWith('HTTP/1.1 101')) resolve();
      else reject(new Error(head.split('\r\n')[0]));
    };
    sock.on('data', onData);
  });
  return sock;
}

const disconnects = (rec: Recorder) => rec.byRoute('$disconnect').map((e) => e.requestContext.disconnectStatusCode);

describe('apigw emulator: wire details AWS shows', () => {
  const ems = new Emulators();
  const raw: net.Socket[] = [];
  afterEach(async () => {
    for (const s of raw.splice(0)) s.destroy();
    await ems.closeAll();
  });

  it('@connections answers 410 from the moment the client sends its close frame, before $disconnect has run', async () => {
    const rec = new Recorder();
    const em = await ems.start({ routes: { $connect: async (e) => rec.push(e), $disconnect: async (e) => rec.push(e) } });
    const sock = await rawUpgraded(em.port, em.stage);
    raw.push(sock);
    const [id] = em.connectionIds();
    const sdk = ems.sdk(em);
    await sdk.send(new PostToConnectionCommand({ ConnectionId: id, Data: Buffer.from('before') }));
    // A masked close frame (1000) with a zero mask; the TCP connection stays open, so the
    // closing handshake does not complete and `ws` emits no 'close' yet.
    sock.write(Buffer.from([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]));
    // The emulator has read the close frame once the connection is no longer open for it.
    await waitFor(() => em.connectionIds().length === 0, 5000, 'the close frame read by the emulator');
    const err = await sdk.send(new PostToConnectionCommand({ ConnectionId: id, Data: Buffer.from('after') })).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(GoneException);
    expect(disconnects(rec)).to.deep.equal([]);
    expect(em.connectionIds()).to.deep.equal([]);
    sock.destroy();
    await rec.waitFor(() => disconnects(rec).length === 1);
  });

  it('a client that half-closes while $connect runs still gets $disconnect once $connect succeeded', async () => {
    const rec = new Recorder();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const em = await ems.start({
      routes: { $connect: async (e) => (rec.push(e), await gate, { statusCode: 200 }), $disconnect: async (e) => rec.push(e) },
    });
    const sock = net.connect(em.port, '127.0.0.1', () => sock.write(UPGRADE(em.stage)));
    raw.push(sock);
    await rec.waitFor((ev) => ev.length === 1);
    sock.end(); // FIN only: Node's HTTP server keeps the socket half-open (writable)
    await new Promise((r) => setTimeout(r, 50));
    release();
    await rec.waitFor(() => disconnects(rec).length === 1);
    expect(disconnects(rec)).to.deep.equal([1006]);
    expect(rec.byRoute('$disconnect')[0].requestContext.connectionId).to.equal(rec.byRoute('$connect')[0].requestContext.connectionId);
  });

  it('a ws client that gives up while $connect runs still gets $disconnect once $connect succeeded', async () => {
    const rec = new Recorder();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const em = await ems.start({
      routes: { $connect: async (e) => (rec.push(e), await gate, { statusCode: 200 }), $disconnect: async (e) => rec.push(e) },
    });
    const ws = new WebSocket(em.websocketUrl);
    ws.on('error', () => {});
    await rec.waitFor((ev) => ev.length === 1);
    ws.close();
    await new Promise((r) => setTimeout(r, 50));
    release();
    await rec.waitFor(() => disconnects(rec).length === 1);
    expect(disconnects(rec)).to.deep.equal([1006]);
  });

  it('a plain GET on the WebSocket URL answers 426; other paths stay 404', async () => {
    const em = await ems.start({ routes: {} });
    const res = await fetch(`http://127.0.0.1:${em.port}/${em.stage}`);
    expect(res.status).to.equal(426);
    expect(res.headers.get('x-amzn-errortype')).to.equal('UpgradeRequiredException');
    expect((await res.json()).message).to.include(em.websocketUrl);
    expect((await fetch(`http://127.0.0.1:${em.port}/${em.stage}/`)).status).to.equal(426);
    expect((await fetch(`http://127.0.0.1:${em.port}/other`)).status).to.equal(404);
  });

  it('a client that stops reading is closed once its unsent data passes the bound; posts then answer 410', async () => {
    const rec = new Recorder();
    const limit = 256 * 1024;
    const em = await ems.start({
      routes: { $disconnect: async (e) => rec.push(e) },
      sendBufferLimitBytes: limit,
    });
    const sock = await rawUpgraded(em.port, em.stage); // paused: reads nothing
    raw.push(sock);
    const [id] = em.connectionIds();
    const sdk = ems.sdk(em);
    const chunk = Buffer.alloc(100 * 1024, 'x');
    let accepted = 0;
    let gone: unknown;
    // Loopback TCP buffers absorb a few MB before anything stays in the emulator; 64 MB is a
    // ceiling the test would reach only if nothing bounded the buffer.
    for (let i = 0; i < 640 && !gone; i++) {
      await sdk.send(new PostToConnectionCommand({ ConnectionId: id, Data: chunk })).then(
        () => (accepted += chunk.length),
        (e: unknown) => (gone = e),
      );
    }
    expect(gone, `all ${accepted} bytes were accepted for a client that reads nothing`).to.be.instanceOf(GoneException);
    await rec.waitFor(() => disconnects(rec).length === 1);
    expect(rec.byRoute('$disconnect')[0].requestContext).to.include({ disconnectStatusCode: 1001, disconnectReason: 'Going away' });
    const again = await sdk.send(new PostToConnectionCommand({ ConnectionId: id, Data: Buffer.from('x') })).catch((e: unknown) => e);
    expect(again).to.be.instanceOf(GoneException);
  });

  it('a client that reads keeps receiving far more than the bound', async () => {
    const em = await ems.start({ routes: {}, sendBufferLimitBytes: 64 * 1024 });
    const c = await ems.client(em.websocketUrl);
    const [id] = em.connectionIds();
    const sdk = ems.sdk(em);
    const chunk = Buffer.alloc(32 * 1024, 'y');
    for (let i = 0; i < 64; i++) await sdk.send(new PostToConnectionCommand({ ConnectionId: id, Data: chunk }));
    await c.message(63);
    expect(c.messages).to.have.length(64);
  });
});
