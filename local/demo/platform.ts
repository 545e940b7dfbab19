import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import { WebSocketServer, WebSocket } from 'ws';
import { initialBattery, initialVehicle, nextBattery, nextVehicle, vehicleMessage, type BatteryMetrics, type VehiclePosition } from './generators';

/**
 * A sample third-party "upstream platform": a WebSocket server on loopback that, like the
 * platforms seed 000's connector talks to, requires credentials (HTTP Basic on the upgrade) and
 * then streams JSON messages. One path per data stream, so each upstream socket the control API
 * opens maps to one topic:
 *   /battery/{n}  battery metrics (seed 003)        → topic batteryId:{n}
 *   /vehicle/{n}  vehicle positions (seed 002)      → topic vehicleId:{n}
 * The topics use the local stack's item keys (ITEM_KEYS=vehicleId,batteryId), so
 * `wscat -c "ws://127.0.0.1:3001?vehicleId=1"` subscribes at connect, as in seed 002.
 */

export interface DemoStream {
  kind: 'battery' | 'vehicle';
  index: number;
  path: string;
  topic: string;
}

export interface DemoPlatformOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Message period per stream. Default 500 ms. */
  intervalMs?: number;
  batteries?: number;
  vehicles?: number;
  credentials: { email: string; pass: string };
  random?: () => number;
  now?: () => number;
}

export interface DemoPlatform {
  readonly url: string;
  readonly streams: readonly DemoStream[];
  /** Upstream sockets currently connected (all paths). */
  connections(): number;
  /** Messages sent so far, per path. */
  sent(path: string): number;
  stop(): Promise<void>;
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Parses `Authorization: Basic base64(email:pass)` (RFC 7617). */
export function basicCredentials(header: string | undefined): { user: string; pass: string } | undefined {
  const m = header ? /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header) : null;
  if (!m) return undefined;
  const text = Buffer.from(m[1], 'base64').toString('utf8');
  const i = text.indexOf(':');
  return i < 0 ? undefined : { user: text.slice(0, i), pass: text.slice(i + 1) };
}

export async function startDemoPlatform(opts: DemoPlatformOptions): Promise<DemoPlatform> {
  const host = opts.host ?? '127.0.0.1';
  const intervalMs = opts.intervalMs ?? 500;
  const rand = opts.random ?? Math.random;
  const now = opts.now ?? Date.now;
  const streams: DemoStream[] = [];
  for (let i = 1; i <= (opts.batteries ?? 3); i++) streams.push({ kind: 'battery', index: i, path: `/battery/${i}`, topic: `batteryId:${i}` });
  for (let i = 1; i <= (opts.vehicles ?? 2); i++) streams.push({ kind: 'vehicle', index: i, path: `/vehicle/${i}`, topic: `vehicleId:${i}` });

  const batteries = new Map<string, Omit<BatteryMetrics, 'timestamp'>>();
  const vehicles = new Map<string, VehiclePosition & { heading: number }>();
  for (const s of streams) {
    if (s.kind === 'battery') batteries.set(s.path, initialBattery(s.index, rand));
    else vehicles.set(s.path, { ...initialVehicle(s.index, rand), timestamp: now() });
  }
  const counts = new Map<string, number>();

  const server = http.createServer((_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain' }).end('WebSocket only\n');
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const creds = basicCredentials(req.headers.authorization);
    if (!creds || !safeEqual(creds.user, opts.credentials.email) || !safeEqual(creds.pass, opts.credentials.pass)) {
      socket.end('HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm="demo-platform"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    if (!streams.some((s) => s.path === path)) {
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });
  const byPath = new Map<string, Set<WebSocket>>();
  wss.on('connection', (ws: WebSocket, req: http.IncomingMessage) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const set = byPath.get(path) ?? new Set();
    byPath.set(path, set);
    set.add(ws);
    ws.on('close', () => set.delete(ws));
    ws.on('error', () => set.delete(ws));
  });

  let last = now();
  const tick = () => {
    const t = now();
    const dt = t - last;
    last = t;
    for (const s of streams) {
      let msg: BatteryMetrics | VehiclePosition;
      if (s.kind === 'battery') {
        const b = nextBattery(batteries.get(s.path)!, t, rand);
        batteries.set(s.path, b);
        msg = b;
      } else {
        const v = nextVehicle(vehicles.get(s.path)!, t, dt, rand);
        vehicles.set(s.path, v);
        msg = vehicleMessage(v);
      }
      const text = JSON.stringify(msg);
      for (const ws of byPath.get(s.path) ?? []) {
        if (ws.readyState === WebSocket.OPEN) {
          ws.send(text);
          counts.set(s.path, (counts.get(s.path) ?? 0) + 1);
        }
      }
    }
  };
  const timer = setInterval(tick, intervalMs);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    url: `ws://${host}:${port}`,
    streams,
    connections: () => [...byPath.values()].reduce((n, s) => n + s.size, 0),
    sent: (path) => counts.get(path) ?? 0,
    stop: async () => {
      clearInterval(timer);
      for (const ws of wss.clients) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
