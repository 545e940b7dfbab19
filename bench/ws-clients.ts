import WebSocket from 'ws';
import { serveChild } from './lib/child';

/**
 * Child process holding N `ws` clients on loopback: the subscribers of the fan-out benchmark.
 * Counts every message received, so the parent can check that each delivery arrived.
 */
const sockets: WebSocket[] = [];
let received = 0;

function open(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    ws.once('open', () => {
      ws.off('error', reject);
      ws.on('error', () => {});
      resolve(ws);
    });
    ws.once('error', reject);
    ws.on('message', () => {
      received++;
    });
  });
}

serveChild({
  async connect(args) {
    const url = String(args.url);
    const n = Number(args.n);
    const parallel = Number(args.parallel ?? 64);
    let next = 0;
    // A bounded number of handshakes in flight: a burst of 10,000 SYNs overflows the accept backlog.
    await Promise.all(
      Array.from({ length: Math.min(parallel, n) }, async () => {
        while (next < n) {
          next++;
          sockets.push(await open(url));
        }
      }),
    );
    return sockets.length;
  },
  count: () => received,
  async stop() {
    for (const s of sockets) s.terminate();
  },
});
