import net from 'node:net';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { WebSocketEmulator } from '../local/apigw/websocket-emulator';
import { ensureLocalCa, issueServerCert } from '../local/apigw/tls';
import { serveChild } from './lib/child';

/**
 * Child process of the fan-out benchmark: the API Gateway emulator (its `@connections`
 * management API is what the fan-out posts to). Its WebSocket clients live in yet another child
 * (bench/ws-clients.ts): 10,000 clients and their 10,000 server-side sockets would not fit one
 * process's 20,000 file descriptors.
 *
 * With `caDir`, the same management API is also served over TLS (`managementUrlTls`), with a
 * certificate issued by the local CA there (local/apigw/tls.ts, as `npm start -- --tls` uses):
 * a TLS terminator in this process in front of the emulator's port, so that the fan-out's
 * client side does the TLS work it does against API Gateway while the same 10,000 `ws://`
 * subscribers receive. (Connecting 10,000 `wss://` clients to a second, TLS-serving emulator
 * took over 5 minutes of full handshakes on this 2-core machine; the subscribers' transport is
 * not what this benchmark measures.)
 */
let em: WebSocketEmulator | undefined;
let front: tls.Server | undefined;

serveChild({
  async start(args) {
    const caDir = args.caDir === undefined ? undefined : String(args.caDir);
    em = await WebSocketEmulator.start({
      stage: 'bench',
      routes: { $connect: async () => ({ statusCode: 200 }) },
      managementLatencyMs: Number(args.latencyMs ?? 0),
      // The subscribers never send: API Gateway's 10-minute idle close would cut them off in a
      // run that a loaded machine stretches past 10 minutes. The 2-hour cap still applies.
      idleTimeoutMs: 2 * 3_600_000,
    });
    let managementUrlTls: string | undefined;
    if (caDir) {
      const port = em.port;
      front = tls.createServer(issueServerCert(ensureLocalCa(caDir)), (clear) => {
        const up = net.connect(port, '127.0.0.1');
        up.setNoDelay(true);
        clear.setNoDelay(true);
        clear.pipe(up).pipe(clear);
        clear.on('error', () => up.destroy());
        up.on('error', () => clear.destroy());
        clear.on('close', () => up.destroy());
        up.on('close', () => clear.destroy());
      });
      await new Promise<void>((r) => front!.listen(0, '127.0.0.1', r));
      managementUrlTls = `https://127.0.0.1:${(front.address() as AddressInfo).port}/bench`;
    }
    return { websocketUrl: em.websocketUrl, managementUrl: em.managementUrl, managementUrlTls };
  },
  ids: () => em!.connectionIds(),
  latency(args) {
    em!.managementLatencyMs = Number(args.ms);
    return em!.managementLatencyMs;
  },
  async stop() {
    front?.close();
    await em?.close();
  },
});
