import http from 'node:http';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { handleManagementRequest, type ManagedConnection } from '../local/apigw/management-api';
import { LatencyModel, TokenBucket, parseLatency, parseQuota } from '../local/apigw/quota';
import { createLogger } from '../lib/log';
import { serveChild } from './lib/child';

/**
 * Child process of the quota benchmark: the emulator's `@connections` management API
 * (local/apigw/management-api.ts) with its quota and round trip (local/apigw/quota.ts), in front
 * of N stand-in connections instead of N WebSocket clients. 20,000 real sockets (and their
 * 20,000 server-side peers) would not fit the file descriptors of this machine, and what is
 * measured here is the management API traffic, not the frames. Each stand-in records the seqs it
 * was given, so lost and duplicated deliveries are counted.
 */

const STAGE = 'bench';
const log = createLogger({ level: 'error' });
let server: http.Server | undefined;
let bucket: TokenBucket | undefined;
let latency: LatencyModel | undefined;
const received = new Map<string, number[]>();
let disconnects = 0;
let requestNo = 0;

const conn = (id: string): ManagedConnection => ({
  post(data) {
    // The frame is the fan-out's event JSON; only its seq matters here.
    const m = /"seq":(\d+)/.exec(data.toString('utf8'));
    received.get(id)!.push(m ? Number(m[1]) : -1);
    return true;
  },
  info: () => ({ connectedAt: 0, lastActiveAt: 0, identity: { sourceIp: '127.0.0.1', userAgent: 'bench' } }),
  disconnect: () => {
    disconnects++;
  },
});

serveChild({
  async start(args) {
    latency = new LatencyModel(parseLatency(args.latency));
    server = http.createServer((req, res) => {
      const handled = handleManagementRequest(
        {
          stage: STAGE,
          messageLimitBytes: 128 * 1024,
          lookup: (id) => (received.has(id) ? conn(id) : undefined),
          requestId: () => String(++requestNo),
          log,
          quota: bucket,
          latency,
        },
        req,
        res,
      );
      if (!handled) res.writeHead(404).end();
    });
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    return { managementUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/${STAGE}` };
  },
  connections(args) {
    const n = Number(args.n);
    // `aws`: ids as API Gateway makes them (random base64), which large topics split by (fanout/partitions.ts).
    for (let i = received.size; i < n; i++) received.set(args.aws ? randomBytes(11).toString('base64') : `bench${String(i).padStart(7, '0')}=`, []);
    return [...received.keys()].slice(0, n);
  },
  /** A fresh, full bucket and zeroed counters before each run. */
  reset(args) {
    bucket = new TokenBucket(parseQuota(args.quota));
    for (const list of received.values()) list.length = 0;
    disconnects = 0;
  },
  /** What the run delivered: connections that got `seq` exactly once, more than once, never. */
  stats(args) {
    const seq = Number(args.seq);
    let once = 0;
    let duplicated = 0;
    let never = 0;
    const missing: string[] = [];
    for (const [id, list] of received) {
      const c = list.filter((s) => s === seq).length;
      if (c === 0 && missing.push(id)) never++;
      else if (c === 1) once++;
      else duplicated++;
    }
    return { once, duplicated, never, missing: missing.slice(0, 5), disconnects, ...bucket!.status() };
  },
  async stop() {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  },
});
