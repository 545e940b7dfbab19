import { WebSocketEmulator } from '../local/apigw/websocket-emulator';
import { ensureLocalCa, issueServerCert } from '../local/apigw/tls';
import { serveChild } from './lib/child';

/**
 * Child process of the fan-out benchmark: the API Gateway emulator (its `@connections`
 * management API is what the fan-out posts to). Its WebSocket clients live in yet another child
 * (bench/ws-clients.ts): 10,000 clients and their 10,000 server-side sockets would not fit one
 * process's 20,000 file descriptors. With `caDir`, it serves `wss://` and `https://` with a
 * certificate issued by the local CA there (local/apigw/tls.ts), as `npm start -- --tls` does.
 */
let em: WebSocketEmulator | undefined;

serveChild({
  async start(args) {
    const caDir = args.caDir === undefined ? undefined : String(args.caDir);
    em = await WebSocketEmulator.start({
      stage: 'bench',
      routes: { $connect: async () => ({ statusCode: 200 }) },
      managementLatencyMs: Number(args.latencyMs ?? 0),
      ...(caDir ? { tls: issueServerCert(ensureLocalCa(caDir)) } : {}),
    });
    return { websocketUrl: em.websocketUrl, managementUrl: em.managementUrl };
  },
  ids: () => em!.connectionIds(),
  latency(args) {
    em!.managementLatencyMs = Number(args.ms);
    return em!.managementLatencyMs;
  },
  async stop() {
    await em?.close();
  },
});
