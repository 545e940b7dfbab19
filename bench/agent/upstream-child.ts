import http from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { serveChild } from '../lib/child';

/**
 * Child process playing the upstream platforms of the agent benchmark, on 127.0.0.1:
 * - a `ws` server that accepts the agent's sockets (Basic auth checked: the agent must send the
 *   credentials seeded through the control path) and, on `send`, pushes messages at a total
 *   rate spread round-robin over every open socket;
 * - the HTTP sink (`SINK_URL`) that counts the records the agent POSTs.
 * Kept out of the agent's process so that the agent's RSS and CPU are its own.
 */

const sockets: WebSocket[] = [];
const byPath = new Map<string, Set<WebSocket>>();
let authFailures = 0;
let sinkRecords = 0;
let sinkPosts = 0;
let lastSinkAt = 0;
let expectedAuth = '';

const httpServer = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    // The agent posts JSON arrays of records; counting them is all the sink does.
    const batch = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown[];
    sinkRecords += batch.length;
    sinkPosts++;
    lastSinkAt = performance.now();
    res.writeHead(204).end();
  });
});
// Several thousand handshakes can arrive at once: listen() below asks for a deep backlog.
const wsHttp = http.createServer();
const wss = new WebSocketServer({ server: wsHttp, perMessageDeflate: false });

wss.on('connection', (ws, req) => {
  if (req.headers.authorization !== expectedAuth) {
    authFailures++;
    ws.close(4401, 'bad credentials');
    return;
  }
  sockets.push(ws);
  // Connections by path: one upstream socket (a path) may have two, with redundant homing.
  const key = req.url ?? '/';
  const group = byPath.get(key) ?? new Set<WebSocket>();
  byPath.set(key, group.add(ws));
  ws.on('error', () => {});
  ws.on('close', () => {
    const i = sockets.indexOf(ws);
    if (i >= 0) sockets.splice(i, 1);
    group.delete(ws);
  });
});

function listen(server: http.Server): Promise<number> {
  return new Promise((resolve) => server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => resolve((server.address() as AddressInfo).port)));
}

/** One JSON message of about `bytes` bytes, with its own timestamp (the agent reads it as `ts`). */
function message(n: number, pad: string): string {
  return `{"vehicleId":"v${n % 1000}","n":${n},"timestamp":${Date.now()},"speed":${n % 130},"pad":"${pad}"}`;
}

serveChild({
  async listen(args) {
    expectedAuth = String(args.authorization);
    const [wsPort, sinkPort] = [await listen(wsHttp), await listen(httpServer)];
    return { wsUrl: `ws://127.0.0.1:${wsPort}/feed`, sinkUrl: `http://127.0.0.1:${sinkPort}/sink` };
  },
  stats: () => ({ connections: sockets.length, authFailures, sinkRecords, sinkPosts, lastSinkAt }),
  /** How many connections each of `paths` has now. */
  connectionsByPath: (args) => (args.paths as string[]).map((p) => byPath.get(p)?.size ?? 0),
  /**
   * A platform that does not replay: every path in `paths` gets `{"id":"<path>#<n>","n":n}`,
   * n = 0, 1, …, `rate` a second for `seconds`, sent to each connection open on that path at
   * that moment (none: that message is gone). How many messages each path was sent.
   */
  async stream(args) {
    const paths = args.paths as string[];
    const rate = Number(args.rate);
    const total = Math.round(rate * Number(args.seconds));
    const t0 = performance.now();
    let sent = 0;
    while (sent < total) {
      const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate) + 1);
      for (; sent < due; sent++) {
        for (const p of paths) for (const ws of byPath.get(p) ?? []) ws.send(JSON.stringify({ id: `${p}#${sent}`, n: sent, timestamp: Date.now() }));
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    return { perPath: sent, seconds: (performance.now() - t0) / 1000 };
  },
  /** Sends `rate` messages/s in total for `seconds`, paced by the clock in 10 ms steps. */
  async send(args) {
    const rate = Number(args.rate);
    const seconds = Number(args.seconds);
    const pad = 'x'.repeat(Math.max(0, Number(args.bytes ?? 120) - 90));
    const total = Math.round(rate * seconds);
    const t0 = performance.now();
    let sent = 0;
    let next = 0;
    while (sent < total) {
      const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate) + 1);
      while (sent < due && sockets.length) {
        sockets[next++ % sockets.length].send(message(sent, pad));
        sent++;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    return { sent, seconds: (performance.now() - t0) / 1000 };
  },
  async stop() {
    for (const s of sockets) s.terminate();
    wss.close();
    wsHttp.close();
    httpServer.closeAllConnections();
    httpServer.close();
  },
});
