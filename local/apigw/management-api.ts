import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../../lib/log';
import type { WebsocketIdentity } from './events';
import { AWS_ERRORS, type FaultInjector } from './faults';
import type { LatencyModel, TokenBucket } from './quota';

/**
 * The API Gateway Management API (`@connections`) with the wire contract of
 * `@aws-sdk/client-apigatewaymanagementapi` (restJson1, service model "ApiGatewayManagementApi"):
 *
 *   POST   {stage}/@connections/{id}  body = raw data            → 200 (empty)
 *   GET    {stage}/@connections/{id}                             → 200 {"connectedAt","identity":{"sourceIp","userAgent"},"lastActiveAt"}
 *   DELETE {stage}/@connections/{id}                             → 204
 *
 * Errors carry `x-amzn-errortype` because that header is how the SDK names the exception: without
 * it a 410 surfaces as "Unknown", not `GoneException`. Timestamps are ISO-8601 strings (the
 * model's default timestamp format for restJson1). Requests are NOT SigV4-verified: any
 * credentials work locally, unless `authorize` (the local stack's IAM check) refuses them.
 */

export interface ConnectionInfo {
  connectedAt: number;
  lastActiveAt: number;
  identity: WebsocketIdentity;
}

/** What the management API needs from a live connection. */
export interface ManagedConnection {
  /** Sends `data` to the client (text frame when valid UTF-8, else binary); false when the connection is gone. */
  post(data: Buffer): boolean;
  info(): ConnectionInfo;
  /** Starts a server-side close; the `$disconnect` route runs when it completes. */
  disconnect(): void;
}

export interface ManagementApiOptions {
  stage: string;
  messageLimitBytes: number;
  /** A connection that is open for the management API (after `$connect`, before close). */
  lookup(connectionId: string): ManagedConnection | undefined;
  requestId(): string;
  log: Logger;
  /**
   * Fixed delay (ms) before each `@connections` request is served, to stand in for the round trip
   * to API Gateway (a few ms from a Lambda in the same region); benchmarks set it. Default 0.
   */
  latencyMs?: number;
  /** Decides whether the signer may make this call (the local stack's IAM check, local/iam/). */
  authorize?(req: IncomingMessage): Promise<{ status: number; errorType: string; message: string } | undefined>;
  /** Injected failures and latency (faults.ts). */
  faults?: FaultInjector;
  /** The account's `@connections` quota (quota.ts); every call takes a token or is answered 429. */
  quota?: TokenBucket;
  /** The round trip drawn per call (quota.ts), added to `latencyMs`. */
  latency?: LatencyModel;
}

const PREFIX = '/@connections/';

export function sendError(res: ServerResponse, status: number, errorType: string, message: string, requestId: string, extra: Record<string, string> = {}) {
  const body = JSON.stringify({ message });
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-amzn-requestid': requestId,
    'x-amzn-errortype': errorType,
    ...extra,
  });
  res.end(body);
}

/** Routes one HTTP request; returns false when the path is not under `/{stage}/@connections/`. */
export function handleManagementRequest(opts: ManagementApiOptions, req: IncomingMessage, res: ServerResponse): boolean {
  const rawPath = (req.url ?? '/').split('?')[0];
  const stagePrefix = `/${opts.stage}${PREFIX}`;
  if (!rawPath.startsWith(stagePrefix)) return false;
  const latency = (opts.latencyMs ?? 0) + (opts.latency?.sample() ?? 0) + (opts.faults?.latency() ?? 0);
  // The quota counts a call when it arrives, before IAM, as the account throttle does; the 429
  // still takes the round trip back.
  const go =
    opts.quota && !opts.quota.take()
      ? () => {
          req.resume();
          sendError(res, 429, AWS_ERRORS[429].type, AWS_ERRORS[429].message, opts.requestId());
        }
      : opts.authorize
        ? () => authorized(opts, req, res, () => serve(opts, req, res, rawPath, stagePrefix))
        : () => serve(opts, req, res, rawPath, stagePrefix);
  if (latency > 0) setTimeout(go, latency);
  else go();
  return true;
}

function authorized(opts: ManagementApiOptions, req: IncomingMessage, res: ServerResponse, next: () => void): void {
  opts.authorize!(req).then(
    (denial) => {
      if (!denial) return next();
      req.resume();
      sendError(res, denial.status, denial.errorType, denial.message, opts.requestId());
    },
    (err: unknown) => {
      opts.log.error('apigw.management.authorize_failed', { err });
      req.resume();
      sendError(res, 500, 'InternalServerErrorException', 'Authorization failed', opts.requestId());
    },
  );
}

function serve(opts: ManagementApiOptions, req: IncomingMessage, res: ServerResponse, rawPath: string, stagePrefix: string): void {
  const requestId = opts.requestId();
  // The SDK sends the id URL-encoded (`%2B`, `%2F`, `%3D`); take the rest of the path whole so an
  // unencoded `/` from a hand-written client also works.
  let id: string;
  try {
    id = decodeURIComponent(rawPath.slice(stagePrefix.length));
  } catch {
    sendError(res, 400, 'BadRequestException', 'Invalid connection id encoding in path', requestId);
    return;
  }
  if (!id) {
    sendError(res, 404, 'NotFoundException', 'Missing connection id: use @connections/{connectionId}', requestId);
    return;
  }
  const method = req.method ?? 'GET';
  if (method !== 'POST' && method !== 'GET' && method !== 'DELETE') {
    sendError(res, 405, 'MethodNotAllowedException', `Method ${method} is not allowed on @connections/{connectionId}`, requestId, {
      allow: 'POST, GET, DELETE',
    });
    return;
  }
  const injected = opts.faults?.failure(method, id);
  if (injected) {
    req.resume();
    sendError(res, injected.status, injected.type, injected.message, requestId);
    return;
  }
  const gone = () => sendError(res, 410, 'GoneException', `Connection ${id} is gone`, requestId);

  if (method === 'GET') {
    const conn = opts.lookup(id);
    if (!conn) return gone();
    const info = conn.info();
    const body = JSON.stringify({
      connectedAt: new Date(info.connectedAt).toISOString(),
      identity: info.identity,
      lastActiveAt: new Date(info.lastActiveAt).toISOString(),
    });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-amzn-requestid': requestId });
    res.end(body);
    return;
  }
  if (method === 'DELETE') {
    const conn = opts.lookup(id);
    if (!conn) return gone();
    conn.disconnect();
    res.writeHead(204, { 'x-amzn-requestid': requestId });
    res.end();
    return;
  }
  readBody(req, opts.messageLimitBytes).then(
    (data) => {
      if (data === 'too_large') {
        // The data never reaches the client. Node keeps reading the rest of the request to
        // keep the connection reusable; `connection: close` tells the SDK not to reuse it.
        sendError(res, 413, 'PayloadTooLargeException', `Message payload exceeds the ${opts.messageLimitBytes} bytes limit`, requestId, {
          connection: 'close',
        });
        return;
      }
      const conn = opts.lookup(id);
      if (!conn || !conn.post(data)) return gone();
      res.writeHead(200, { 'content-length': 0, 'x-amzn-requestid': requestId });
      res.end();
    },
    (err: unknown) => {
      opts.log.warn('apigw.management.read_failed', { err });
      if (!res.headersSent) sendError(res, 400, 'BadRequestException', 'Could not read the request body', requestId);
    },
  );
}

/** The request body, or 'too_large' as soon as it exceeds `limit` (remaining bytes are discarded). */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | 'too_large'> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      req.resume();
      resolve('too_large');
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size > limit) {
        over = true;
        chunks.length = 0;
        resolve('too_large');
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (!over) resolve(Buffer.concat(chunks));
    });
    req.on('error', reject);
  });
}
