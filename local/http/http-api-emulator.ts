import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes, randomUUID } from 'node:crypto';
import { invokeLambda, type AnyHandler } from '../lambda/invoke';
import type { Logger } from '../../lib/log';
import { buildHttpEvent, routeMatcher, type CompiledRoute } from './http-event';

/**
 * A local API Gateway HTTP API: invokes handlers with payload-format-2.0 events and turns
 * their results into HTTP responses with HTTP API's rules (a result without `statusCode` is a
 * 200 JSON body; a thrown error is a 500 `{"message":"Internal Server Error"}`; no route is a
 * 404 `{"message":"Not Found"}`). Requests over 10 MB (HTTP API's payload limit) get 413.
 */

export interface HttpRouteTarget {
  readonly handler: AnyHandler;
  readonly functionName?: string;
  readonly timeoutMs?: number;
}

/** Extra request handlers (the dashboard) tried before the routes; return true when handled. */
export type Mount = (req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean>;

export interface HttpApiEmulatorOptions {
  readonly port?: number;
  readonly host?: string;
  /** `"POST /publish"`, `"GET /items/{id}"`, `"ANY /{proxy+}"`, `"$default"`. */
  readonly routes: Record<string, AnyHandler | HttpRouteTarget>;
  readonly mounts?: Mount[];
  readonly log?: Logger;
}

export const HTTP_API_PAYLOAD_LIMIT = 10 * 1024 * 1024;

export class HttpApiEmulator {
  private constructor(
    private readonly server: http.Server,
    readonly url: string,
    readonly port: number,
  ) {}

  static async start(opts: HttpApiEmulatorOptions): Promise<HttpApiEmulator> {
    const apiId = randomBytes(5).toString('hex');
    const routes: CompiledRoute<HttpRouteTarget>[] = Object.entries(opts.routes).map(([key, t]) =>
      routeMatcher(key, typeof t === 'function' ? { handler: t } : t),
    );
    const server = http.createServer((req, res) => {
      handle(req, res).catch((err) => {
        opts.log?.error('http api emulator failure', { err });
        if (!res.headersSent) send(res, 500, { message: 'Internal Server Error' });
        else res.destroy();
      });
    });

    async function handle(req: IncomingMessage, res: ServerResponse) {
      for (const m of opts.mounts ?? []) if (await m(req, res)) return;
      const url = new URL(req.url ?? '/', 'http://local');
      const method = (req.method ?? 'GET').toUpperCase();
      const match = matchRoute(routes, method, url.pathname);
      if (!match) return send(res, 404, { message: 'Not Found' });
      const body = await readBody(req, HTTP_API_PAYLOAD_LIMIT);
      if (body === 'too-large') return send(res, 413, { message: 'Request Entity Too Large' });
      const event = buildHttpEvent({
        req,
        url,
        body,
        routeKey: match.route.key,
        pathParameters: match.params,
        apiId,
        host: req.headers.host ?? `127.0.0.1`,
        requestId: randomUUID(),
      });
      let result: unknown;
      try {
        result = await invokeLambda(match.route.target.handler, event, {
          functionName: match.route.target.functionName ?? match.route.key,
          timeoutMs: match.route.target.timeoutMs,
        });
      } catch (err) {
        opts.log?.error('http handler failed', { route: match.route.key, err });
        return send(res, 500, { message: 'Internal Server Error' });
      }
      writeResult(res, result);
    }

    await new Promise<void>((resolve) => server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    return new HttpApiEmulator(server, `http://${opts.host ?? '127.0.0.1'}:${port}`, port);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.closeAllConnections();
      this.server.close(() => resolve());
    });
  }
}

function matchRoute<T>(routes: CompiledRoute<T>[], method: string, path: string) {
  // API Gateway picks the most specific route: exact method before ANY, literal paths before
  // parameters, greedy last; `$default` only when nothing else matches.
  let best: { route: CompiledRoute<T>; params: Record<string, string> } | undefined;
  for (const r of routes) {
    const params = r.match(method, path);
    if (params && (!best || r.specificity > best.route.specificity)) best = { route: r, params };
  }
  return best;
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer | 'too-large'> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) over = true;
      else chunks.push(c);
    });
    req.on('end', () => resolve(over ? 'too-large' : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { 'content-type': 'application/json', 'apigw-requestid': randomBytes(8).toString('base64') });
  res.end(JSON.stringify(body));
}

interface ProxyResult {
  statusCode?: number;
  headers?: Record<string, string | number | boolean>;
  multiValueHeaders?: Record<string, (string | number | boolean)[]>;
  cookies?: string[];
  body?: string;
  isBase64Encoded?: boolean;
}

/** Payload format 2.0 response rules. */
export function writeResult(res: ServerResponse, result: unknown) {
  const r = result as ProxyResult | undefined;
  if (r === undefined || r === null || typeof r !== 'object' || r.statusCode === undefined) {
    // "If your Lambda function returns valid JSON and doesn't return a statusCode, API Gateway
    // assumes 200 and a JSON content type" (HTTP API payload format 2.0).
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(typeof result === 'string' ? result : JSON.stringify(result ?? null));
    return;
  }
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(r.headers ?? {})) headers[k.toLowerCase()] = String(v);
  for (const [k, vs] of Object.entries(r.multiValueHeaders ?? {})) headers[k.toLowerCase()] = vs.map(String);
  if (r.cookies?.length) headers['set-cookie'] = r.cookies;
  res.writeHead(r.statusCode, headers);
  res.end(r.body === undefined ? undefined : r.isBase64Encoded ? Buffer.from(r.body, 'base64') : r.body);
}
