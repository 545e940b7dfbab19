import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A loopback proxy in front of the emulator's `@connections` API that answers 429
 * LimitExceededException (API Gateway's throttling error, with the header the SDK reads) for
 * chosen connection ids and forwards everything else unchanged. Counts POSTs per connection.
 */
export class ThrottleProxy {
  readonly throttled = new Set<string>();
  readonly posts = new Map<string, number>();
  private constructor(
    private readonly server: http.Server,
    readonly url: string,
  ) {}

  static async start(target: string): Promise<ThrottleProxy> {
    const t = new URL(target);
    let proxy!: ThrottleProxy;
    const server = http.createServer((req, res) => {
      const m = /\/@connections\/([^/?]+)/.exec(req.url ?? '');
      const id = m ? decodeURIComponent(m[1]) : undefined;
      if (id && req.method === 'POST') proxy.posts.set(id, (proxy.posts.get(id) ?? 0) + 1);
      if (id && proxy.throttled.has(id)) {
        req.resume();
        res.writeHead(429, { 'content-type': 'application/json', 'x-amzn-errortype': 'LimitExceededException' });
        res.end('{"message":"Too Many Requests"}');
        return;
      }
      const up = http.request(
        { host: t.hostname, port: t.port, method: req.method, path: req.url, headers: { ...req.headers, host: t.host } },
        (ur) => {
          res.writeHead(ur.statusCode ?? 502, ur.headers);
          ur.pipe(res);
        },
      );
      up.on('error', () => {
        res.writeHead(502);
        res.end();
      });
      req.pipe(up);
    });
    server.keepAliveTimeout = 1000;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    proxy = new ThrottleProxy(server, `http://127.0.0.1:${port}${t.pathname.replace(/\/+$/, '')}`);
    return proxy;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}
