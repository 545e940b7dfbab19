import net from 'node:net';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { ApiGatewayManagementApiClient } from '@aws-sdk/client-apigatewaymanagementapi';
import { WebSocketEmulator, type WebSocketEmulatorOptions } from '../../../local/apigw/websocket-emulator';
import type { WebsocketEvent } from '../../../local/apigw/events';
import { parseHeader } from '../../../local/apigw/limits';
import { LOCAL_CREDENTIALS } from '../../support/env';

/**
 * How long the helpers wait for an event, a message or frames. Only a failing wait takes this
 * long; it is generous because the first call through a handler can be slow on a loaded host
 * (a child process importing an AWS SDK, a TLS handshake), and 3 s was not always enough.
 */
export const WAIT_MS = 10_000;

/** Records every event a route received, and lets a test wait for the n-th one. */
export class Recorder {
  readonly events: WebsocketEvent[] = [];
  private waiters: Array<() => void> = [];
  push(e: WebsocketEvent) {
    this.events.push(e);
    for (const w of this.waiters.splice(0)) w();
  }
  byRoute(route: string) {
    return this.events.filter((e) => e.requestContext.routeKey === route);
  }
  async waitFor(pred: (events: WebsocketEvent[]) => boolean, timeoutMs = WAIT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this.events)) {
      if (Date.now() > deadline) throw new Error(`timed out waiting; events: ${this.events.map((e) => e.requestContext.routeKey).join(',')}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 50);
        this.waiters.push(() => (clearTimeout(t), r()));
      });
    }
  }
}

/** Starts emulators and closes them all in afterEach. */
export class Emulators {
  private running: WebSocketEmulator[] = [];
  private sockets: WebSocket[] = [];
  private sdks: ApiGatewayManagementApiClient[] = [];
  async start(opts: WebSocketEmulatorOptions): Promise<WebSocketEmulator> {
    const em = await WebSocketEmulator.start(opts);
    this.running.push(em);
    return em;
  }
  /** An emulator whose $connect (accepting), $disconnect and $default routes record into `rec`; `extra` overrides. */
  recording(rec: Recorder, extra: Partial<WebSocketEmulatorOptions> = {}): Promise<WebSocketEmulator> {
    return this.start({
      routes: {
        $connect: async (e) => (rec.push(e), { statusCode: 200 }),
        $disconnect: async (e) => rec.push(e),
        $default: async (e) => rec.push(e),
      },
      ...extra,
    });
  }
  sdk(em: WebSocketEmulator): ApiGatewayManagementApiClient {
    const c = new ApiGatewayManagementApiClient({ endpoint: em.managementUrl, region: 'us-east-1', credentials: LOCAL_CREDENTIALS, maxAttempts: 1 });
    this.sdks.push(c);
    return c;
  }
  /** A `ws` client that is open, with a queue of received text messages. */
  async client(url: string, protocols?: string | string[], opts?: WebSocket.ClientOptions): Promise<Client> {
    const ws = new WebSocket(url, protocols, opts);
    this.sockets.push(ws);
    const c = new Client(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })));
    });
    return c;
  }
  /** The HTTP status of a refused upgrade, or the client-side error message. */
  async refused(url: string, protocols?: string | string[]): Promise<{ status?: number; error?: string; body?: string }> {
    const ws = new WebSocket(url, protocols);
    this.sockets.push(ws);
    return new Promise((resolve) => {
      ws.once('open', () => resolve({}));
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode, body }));
      });
      ws.once('error', (err) => resolve({ error: err.message }));
    });
  }
  async closeAll() {
    for (const ws of this.sockets) ws.terminate();
    this.sockets = [];
    for (const s of this.sdks) s.destroy();
    this.sdks = [];
    await Promise.all(this.running.map((e) => e.close()));
    this.running = [];
  }
}

export class Client {
  readonly messages: Array<{ data: Buffer; isBinary: boolean }> = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters: Array<() => void> = [];
  constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      this.messages.push({ data: data as Buffer, isBinary });
      for (const w of this.waiters.splice(0)) w();
    });
    ws.on('error', () => {});
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }
  /** The n-th (0-based) message, waiting for it. */
  async message(n = this.messages.length, timeoutMs = WAIT_MS): Promise<{ data: Buffer; isBinary: boolean }> {
    const deadline = Date.now() + timeoutMs;
    while (this.messages.length <= n) {
      if (Date.now() > deadline) throw new Error(`no message #${n} within ${timeoutMs} ms (have ${this.messages.length})`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 50);
        this.waiters.push(() => (clearTimeout(t), r()));
      });
    }
    return this.messages[n];
  }
  async text(n?: number): Promise<string> {
    return (await this.message(n)).data.toString('utf8');
  }
  send(text: string): Promise<void> {
    return new Promise((resolve, reject) => this.ws.send(text, (err) => (err ? reject(err) : resolve())));
  }
}

/** Generator that returns the given ids first, then random ones. */
export function idsFrom(first: string[]): () => string {
  const queue = [...first];
  return () => queue.shift() ?? randomBytes(11).toString('base64');
}

export interface RawFrame {
  opcode: number;
  fin: boolean;
  length: number;
}

/**
 * A raw TCP WebSocket client that records the frames the server sends (opcode, fin, length),
 * which `ws` hides: it is how tests see that the emulator splits large messages into ≤ 32 KB frames.
 */
export async function rawClient(url: string): Promise<{ frames: RawFrame[]; payload: Buffer[]; waitFrames(n: number): Promise<void>; destroy(): void }> {
  const u = new URL(url);
  const sock = net.connect(Number(u.port), u.hostname);
  const frames: RawFrame[] = [];
  const payload: Buffer[] = [];
  let buf = Buffer.alloc(0);
  let upgraded = false;
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.on('connect', () =>
      sock.write(
        `GET ${u.pathname} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      ),
    );
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        if (!buf.subarray(0, end).toString().startsWith('HTTP/1.1 101')) return reject(new Error(buf.subarray(0, end).toString()));
        upgraded = true;
        buf = buf.subarray(end + 4);
        resolve();
      }
      for (;;) {
        const h = parseHeader(buf);
        if (!h || buf.length < h.headerLength + h.payloadLength) break;
        frames.push({ opcode: buf[0] & 0x0f, fin: (buf[0] & 0x80) !== 0, length: h.payloadLength });
        payload.push(buf.subarray(h.headerLength, h.headerLength + h.payloadLength));
        buf = buf.subarray(h.headerLength + h.payloadLength);
      }
    });
  });
  return {
    frames,
    payload,
    async waitFrames(n: number) {
      const deadline = Date.now() + WAIT_MS;
      while (frames.length < n) {
        if (Date.now() > deadline) throw new Error(`only ${frames.length} frames`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    destroy: () => sock.destroy(),
  };
}

/** Sends raw bytes over TCP and resolves with the first response line. */
export function rawRequest(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => sock.write(request));
    let buf = '';
    sock.on('data', (c) => {
      buf += c.toString();
      const eol = buf.indexOf('\r\n');
      if (eol >= 0) {
        sock.destroy();
        resolve(buf.slice(0, eol));
      }
    });
    sock.on('error', reject);
    sock.on('close', () => resolve(buf));
  });
}
