import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A loopback proxy in front of the emulator's `@connections` API that refuses chosen
 * PostToConnection calls with 500 (as a failing API Gateway would) and forwards the rest: the
 * handlers' replies to a subscribe can be lost on purpose. It listens before the stack starts
 * (the stack's handlers are configured with its URL) and learns its target afterwards.
 */
export class ReplyFaultProxy {
  target?: URL;
  /** Return true to refuse this post (its body is the frame the handler is sending). */
  refuse: (body: string) => boolean = () => false;
  refused = 0;
  private constructor(
    private readonly server: http.Server,
    readonly port: number,
  ) {}

  static async start(): Promise<ReplyFaultProxy> {
    let proxy!: ReplyFaultProxy;
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        if (req.method === 'POST' && proxy.refuse(body.toString('utf8'))) {
          proxy.refused += 1;
          res.writeHead(500, { 'content-type': 'application/json', 'x-amzn-errortype': 'InternalServerErrorException' });
          res.end('{"message":"Internal server error"}');
          return;
        }
        const t = proxy.target!;
        const up = http.request({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: { ...req.headers, host: t.host } }, (ur) => {
          res.writeHead(ur.statusCode ?? 502, ur.headers);
          ur.pipe(res);
        });
        up.on('error', () => {
          res.writeHead(502);
          res.end();
        });
        up.end(body);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    proxy = new ReplyFaultProxy(server, (server.address() as AddressInfo).port);
    return proxy;
  }

  /** The management endpoint handlers should use, for the emulator's stage. */
  endpoint(stage = 'local'): string {
    return `http://127.0.0.1:${this.port}/${stage}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}
