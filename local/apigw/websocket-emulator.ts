import http, { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { silentLogger, type Logger } from '../../lib/log';
import { invokeLambda, LambdaTimeoutError, type AnyHandler } from '../lambda/invoke';
import { authorizerEvent, authorizerOutcome, methodArn, missingIdentitySource, parseIdentitySources, type IdentitySource } from './authorizer';
import { EmulatedConnection, GOING_AWAY, type CloseStatus, type ConnectionLimits } from './connection';
import { awsStyleId, type IdGenerator } from './connection-id';
import { EmulatorOptionError, GoneError } from './errors';
import { connectEvent, disconnectEvent, messageEvent, type ConnectionFacts, type EventIds } from './events';
import { LIMITS } from './limits';
import { handleManagementRequest, sendError, type ManagementApiOptions } from './management-api';
import { FaultInjector, handleEmulatorRequest, type FaultSpec, type Setting } from './faults';
import { LatencyModel, TokenBucket, parseLatency, parseQuota, type LatencySpec, type QuotaSpec } from './quota';
import { DEFAULT_ROUTE_SELECTION_EXPRESSION, routeSelector, type RouteSelector } from './route-selection';

/**
 * A local API Gateway WebSocket API: one port serves both the WebSocket endpoint
 * (`ws://host:port/{stage}`) and the management API (`http://host:port/{stage}/@connections/{id}`),
 * as API Gateway serves both under `https://{api}.execute-api.{region}.amazonaws.com/{stage}`.
 * Handlers get API Gateway-shaped Lambda proxy events through `invokeLambda`, so handlers written
 * for API Gateway run here unchanged. See docs/apigw-emulator.md for the contract and decisions.
 */

export interface RouteTarget {
  handler: AnyHandler;
  functionName?: string;
  /** two-way route: send the integration response body to the client, like a route response */
  returnResponse?: boolean;
  timeoutMs?: number;
}

/** A Lambda REQUEST authorizer on `$connect` (see authorizer.ts for the AWS behaviour it follows). */
export interface AuthorizerTarget {
  handler: AnyHandler;
  /** `route.request.header.NAME` / `route.request.querystring.NAME`; a missing one → 401 without invoking. */
  identitySource?: string[];
  functionName?: string;
  timeoutMs?: number;
}

export interface WebSocketEmulatorOptions {
  port?: number; // default 0
  host?: string; // default '127.0.0.1'
  stage?: string; // default 'local'
  apiId?: string; // default random 10 chars [a-z0-9]
  routeSelectionExpression?: string; // default '$request.body.action'; nested $request.body.a.b supported
  routes: Record<string, AnyHandler | RouteTarget>; // '$connect', '$disconnect', '$default', custom keys
  idleTimeoutMs?: number; // default 600_000
  maxDurationMs?: number; // default 7_200_000
  frameLimitBytes?: number; // default 32 * 1024
  messageLimitBytes?: number; // default 128 * 1024
  log?: Logger;
  /** Connection id generator (default: AWS-style random ids); tests inject one to force `+`, `/` and `=`. */
  idGenerator?: IdGenerator;
  /** Fixed delay (ms) before each `@connections` request is answered, like AWS's round trip (default 0). */
  managementLatencyMs?: number;
  /** Serve `wss://` and `https://` with this certificate (see tls.ts for one made locally). */
  tls?: { cert: string; key: string };
  authorizer?: AuthorizerTarget;
  /** Unsent bytes a connection that does not read may hold before it is closed (default 1 MiB). */
  sendBufferLimitBytes?: number;
  /** IAM check of each `@connections` call (the local stack's, local/iam/); none by default. */
  authorizeManagement?: ManagementApiOptions['authorize'];
  /** Management API faults in force from the start (faults.ts); changed at run time through `_emulator/faults`. */
  faults?: FaultSpec;
  /** The account's `@connections` quota (quota.ts; none by default); changed at run time through `_emulator/quota`. */
  quota?: QuotaSpec;
  /** Round-trip distribution added to each `@connections` call (quota.ts); changed through `_emulator/latency`. */
  managementLatency?: LatencySpec;
}

interface ResolvedRoute {
  handler: AnyHandler;
  functionName: string;
  returnResponse: boolean;
  timeoutMs: number;
}

/** Routes that are lifecycle events, never a MESSAGE route selection result. */
const LIFECYCLE = new Set(['$connect', '$disconnect']);
/** How long `close()` waits for a client to answer the close frame before cutting it off. */
const SHUTDOWN_GRACE_MS = 1_000;

function randomApiId(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  let s = '';
  for (let i = 0; i < 10; i++) s += alphabet[Math.floor(Math.random() * alphabet.length)];
  return s;
}

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) throw new EmulatorOptionError(name, `expected a positive number, got ${String(value)}`);
  return value;
}

function nonNegative(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) throw new EmulatorOptionError(name, `expected a number >= 0, got ${String(value)}`);
  return value;
}

function resolveRoutes(routes: WebSocketEmulatorOptions['routes']): Map<string, ResolvedRoute> {
  if (!routes || typeof routes !== 'object') throw new EmulatorOptionError('routes', 'expected an object of route key → handler');
  const out = new Map<string, ResolvedRoute>();
  for (const [key, value] of Object.entries(routes)) {
    const target: RouteTarget | undefined = typeof value === 'function' ? { handler: value } : value;
    if (!target || typeof target.handler !== 'function') {
      throw new EmulatorOptionError(`routes.${key}`, 'expected a handler function or { handler, functionName?, returnResponse?, timeoutMs? }');
    }
    if (!key) throw new EmulatorOptionError('routes', 'route keys must be non-empty');
    out.set(key, {
      handler: target.handler,
      functionName: target.functionName ?? `ws-${key.replace(/^\$/, '')}`,
      returnResponse: target.returnResponse ?? false,
      timeoutMs: positive(`routes.${key}.timeoutMs`, target.timeoutMs, LIMITS.integrationTimeoutMs),
    });
  }
  return out;
}

/** The error frame API Gateway sends for a message it could not route or whose integration failed, byte for byte. */
export function awsErrorFrame(message: 'Forbidden' | 'Internal server error', connectionId: string, requestId: string): string {
  return `{"message": ${JSON.stringify(message)}, "connectionId":${JSON.stringify(connectionId)}, "requestId":${JSON.stringify(requestId)}}`;
}

/** A proxy integration's response body for a two-way route (`{ body }`, or a bare string). */
function responseBody(result: unknown): string | undefined {
  if (typeof result === 'string') return result;
  if (result && typeof result === 'object' && 'body' in result) {
    const body = (result as { body?: unknown }).body;
    if (typeof body === 'string') return body;
    if (body !== undefined && body !== null) return JSON.stringify(body);
  }
  return undefined;
}

/** `$connect`'s decision: statusCode (absent → 200) and the Sec-WebSocket-Protocol header, if any. */
function connectDecision(result: unknown): { status: number; protocol?: string } {
  if (!result || typeof result !== 'object') return { status: 200 };
  const r = result as { statusCode?: unknown; headers?: Record<string, unknown> };
  let status = 200;
  if (r.statusCode !== undefined) {
    const n = Number(r.statusCode);
    // A malformed proxy response is an integration failure: API Gateway answers 502.
    status = Number.isInteger(n) && n >= 100 && n <= 599 ? n : 502;
  }
  let protocol: string | undefined;
  for (const [k, v] of Object.entries(r.headers ?? {})) {
    if (k.toLowerCase() === 'sec-websocket-protocol' && v !== undefined && v !== null) protocol = String(v);
  }
  if (protocol !== undefined && /[\r\n]/.test(protocol)) return { status: 502 };
  return { status, protocol };
}

function rejectUpgrade(socket: Duplex, status: number, message = STATUS_CODES[status] ?? 'Error'): void {
  if (socket.destroyed) return;
  const body = JSON.stringify({ message });
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
      'Connection: close\r\nContent-Type: application/json\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

/** The checks `ws` makes before upgrading, done before `$connect` so it never runs for a request `ws` would refuse. */
function upgradeProblem(req: IncomingMessage): string | undefined {
  if (req.method !== 'GET') return 'WebSocket upgrade must be a GET';
  if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return 'Missing or invalid Upgrade header';
  if (!/^[+/0-9A-Za-z]{22}==$/.test(req.headers['sec-websocket-key'] ?? '')) return 'Missing or invalid Sec-WebSocket-Key header';
  if (req.headers['sec-websocket-version'] !== '13' && req.headers['sec-websocket-version'] !== '8')
    return 'Missing or invalid Sec-WebSocket-Version header';
  return undefined;
}

function sourceIpOf(socket: Duplex): string {
  const ip = (socket as Duplex & { remoteAddress?: string }).remoteAddress ?? '127.0.0.1';
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
}

export class WebSocketEmulator {
  private readonly server: http.Server | https.Server;
  private readonly wss: WebSocketServer;
  private readonly connections = new Map<string, EmulatedConnection>();
  /** Sockets whose `$connect` is running: the connection does not exist yet (POST → 410). */
  private readonly pendingSockets = new Set<Duplex>();
  private readonly pendingUpgrades = new Set<Promise<void>>();
  private readonly reservedIds = new Set<string>();
  private readonly chosenProtocol = new WeakMap<IncomingMessage, string>();
  private readonly routes: Map<string, ResolvedRoute>;
  private readonly messageRouteKeys: Set<string>;
  private readonly selector: RouteSelector;
  private readonly log: Logger;
  private readonly authorizer?: { handler: AnyHandler; sources: IdentitySource[]; functionName: string; timeoutMs: number };
  private readonly newConnectionId: IdGenerator;
  private readonly newId: IdGenerator = awsStyleId;
  private closing?: Promise<void>;
  private boundPort = 0;
  /**
   * Delay before each `@connections` request is answered (the `managementLatencyMs` option).
   * Writable so a benchmark can compare latencies without reconnecting thousands of clients.
   */
  managementLatencyMs: number;
  private readonly authorizeManagement?: WebSocketEmulatorOptions['authorizeManagement'];
  /** Injected management API failures and latency (faults.ts). */
  readonly faults: FaultInjector;
  /** The `@connections` quota in force (quota.ts), undefined when calls are not throttled. */
  quota?: TokenBucket;
  /** The round-trip distribution in force (quota.ts), on top of `managementLatencyMs`. */
  managementLatency?: LatencyModel;

  readonly stage: string;
  readonly apiId: string;
  readonly host: string;
  readonly scheme: 'http' | 'https';
  private readonly limits: ConnectionLimits;

  private constructor(opts: WebSocketEmulatorOptions) {
    this.stage = opts.stage ?? 'local';
    if (!/^[A-Za-z0-9_-]+$/.test(this.stage)) throw new EmulatorOptionError('stage', `expected [A-Za-z0-9_-]+, got ${JSON.stringify(this.stage)}`);
    this.apiId = opts.apiId ?? randomApiId();
    this.host = opts.host ?? '127.0.0.1';
    this.routes = resolveRoutes(opts.routes);
    this.messageRouteKeys = new Set([...this.routes.keys()].filter((k) => !LIFECYCLE.has(k)));
    this.selector = routeSelector(opts.routeSelectionExpression ?? DEFAULT_ROUTE_SELECTION_EXPRESSION);
    this.log = (opts.log ?? silentLogger).child({ component: 'apigw-ws', apiId: this.apiId });
    this.newConnectionId = opts.idGenerator ?? awsStyleId;
    this.managementLatencyMs = opts.managementLatencyMs === undefined ? 0 : nonNegative('managementLatencyMs', opts.managementLatencyMs);
    this.authorizeManagement = opts.authorizeManagement;
    this.faults = new FaultInjector(opts.faults);
    if (opts.quota) this.quota = new TokenBucket(parseQuota(opts.quota));
    if (opts.managementLatency) this.managementLatency = new LatencyModel(parseLatency(opts.managementLatency));
    this.limits = {
      idleTimeoutMs: positive('idleTimeoutMs', opts.idleTimeoutMs, LIMITS.idleTimeoutMs),
      maxDurationMs: positive('maxDurationMs', opts.maxDurationMs, LIMITS.maxDurationMs),
      frameLimitBytes: positive('frameLimitBytes', opts.frameLimitBytes, LIMITS.frameBytes),
      messageLimitBytes: positive('messageLimitBytes', opts.messageLimitBytes, LIMITS.messageBytes),
      sendBufferLimitBytes: positive('sendBufferLimitBytes', opts.sendBufferLimitBytes, LIMITS.sendBufferBytes),
    };
    if (opts.authorizer !== undefined) {
      const a = opts.authorizer;
      if (!a || typeof a.handler !== 'function') throw new EmulatorOptionError('authorizer', 'expected { handler, identitySource?, functionName?, timeoutMs? }');
      this.authorizer = {
        handler: a.handler,
        sources: parseIdentitySources('authorizer.identitySource', a.identitySource),
        functionName: a.functionName ?? 'ws-authorizer',
        timeoutMs: positive('authorizer.timeoutMs', a.timeoutMs, LIMITS.integrationTimeoutMs),
      };
    }
    if (opts.tls !== undefined && (typeof opts.tls?.cert !== 'string' || typeof opts.tls?.key !== 'string')) {
      throw new EmulatorOptionError('tls', 'expected { cert, key } as PEM strings (see local/apigw/tls.ts)');
    }
    this.scheme = opts.tls ? 'https' : 'http';
    const onRequest = (req: IncomingMessage, res: ServerResponse) => this.onHttp(req, res);
    this.server = opts.tls ? https.createServer({ cert: opts.tls.cert, key: opts.tls.key }, onRequest) : http.createServer(onRequest);
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
    this.server.on('clientError', (_err, socket) => socket.destroy());
    this.wss = new WebSocketServer({
      noServer: true,
      // API Gateway does not negotiate permessage-deflate; keeping it off also keeps frame
      // header lengths equal to payload sizes for the 32 KB frame check.
      perMessageDeflate: false,
      // Backstop only: FrameSizeGuard closes with 1009 first (ws's own limit would close 1009 too).
      maxPayload: this.limits.messageLimitBytes + 1,
      // ws would otherwise pick the client's first offered subprotocol. API Gateway selects one
      // only when $connect's response sets Sec-WebSocket-Protocol, so the choice comes from there.
      handleProtocols: (_offered, req) => this.chosenProtocol.get(req) ?? false,
    });
    // handleProtocols only runs when the client offered subprotocols; API Gateway echoes the
    // handler's header regardless, so add it here when ws did not.
    this.wss.on('headers', (headers, req) => {
      const p = this.chosenProtocol.get(req);
      if (p !== undefined && !headers.some((h) => /^sec-websocket-protocol:/i.test(h))) headers.push(`Sec-WebSocket-Protocol: ${p}`);
    });
  }

  static async start(opts: WebSocketEmulatorOptions): Promise<WebSocketEmulator> {
    const em = new WebSocketEmulator(opts);
    await new Promise<void>((resolve, reject) => {
      em.server.once('error', reject);
      em.server.listen(opts.port ?? 0, em.host, () => {
        em.server.off('error', reject);
        resolve();
      });
    });
    em.boundPort = (em.server.address() as AddressInfo).port;
    em.log.info('apigw.listening', { websocketUrl: em.websocketUrl, managementUrl: em.managementUrl });
    return em;
  }

  get port(): number {
    return this.boundPort;
  }
  get websocketUrl(): string {
    return `${this.scheme === 'https' ? 'wss' : 'ws'}://${this.hostForUrl()}:${this.port}/${this.stage}`;
  }
  /** SDK endpoint: requests go to `{managementUrl}/@connections/{id}`. */
  get managementUrl(): string {
    return `${this.scheme}://${this.hostForUrl()}:${this.port}/${this.stage}`;
  }
  private hostForUrl(): string {
    return this.host.includes(':') ? `[${this.host}]` : this.host;
  }

  /** Ids of connections open for the management API. */
  connectionIds(): string[] {
    return [...this.connections.values()].filter((c) => c.isOpen).map((c) => c.id);
  }

  /** Open connections as `GET _emulator/connections` lists them. */
  private listConnections() {
    return [...this.connections.values()]
      .filter((c) => c.isOpen)
      .map((c) => ({ connectionId: c.id, connectedAt: c.facts.connectedAt, sourceIp: c.facts.identity.sourceIp, queryString: c.facts.queryString ?? '' }));
  }

  /** Server-side disconnect, same as DELETE @connections/{id}; resolves once `$disconnect` has run. */
  async disconnect(connectionId: string): Promise<void> {
    const conn = this.connections.get(connectionId);
    if (!conn?.isOpen) throw new GoneError(connectionId);
    conn.disconnect();
    await conn.done;
  }

  /** Closes every socket (running `$disconnect` for each) and the server. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    for (const s of this.pendingSockets) s.destroy();
    await Promise.allSettled([...this.pendingUpgrades]);
    const conns = [...this.connections.values()];
    for (const c of conns) c.close(GOING_AWAY, SHUTDOWN_GRACE_MS);
    await Promise.all(conns.map((c) => c.done));
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
    this.log.info('apigw.closed');
  }

  // ---- HTTP: management API -------------------------------------------------------------------

  private onHttp(req: IncomingMessage, res: ServerResponse): void {
    const handled = handleManagementRequest(
      {
        stage: this.stage,
        messageLimitBytes: this.limits.messageLimitBytes,
        lookup: (id) => {
          const c = this.connections.get(id);
          return c?.isOpen ? c : undefined;
        },
        requestId: this.newId,
        log: this.log,
        latencyMs: this.managementLatencyMs,
        authorize: this.authorizeManagement,
        faults: this.faults,
        quota: this.quota,
        latency: this.managementLatency,
      },
      req,
      res,
    );
    if (handled) return;
    if (handleEmulatorRequest({ stage: this.stage, faults: this.faults, quota: this.quotaSetting, latency: this.latencySetting, connections: () => this.listConnections(), requestId: this.newId }, req, res)) return;
    const pathname = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && (pathname === `/${this.stage}` || pathname === `/${this.stage}/`)) {
      // The WebSocket URL asked for without an upgrade: API Gateway answers 426.
      sendError(res, 426, 'UpgradeRequiredException', `${this.websocketUrl} is a WebSocket endpoint: connect with a WebSocket client`, this.newId(), {
        upgrade: 'websocket',
      });
      return;
    }
    sendError(res, 404, 'NotFoundException', `No route for ${req.method} ${pathname}: the management API is ${this.managementUrl}/@connections/{connectionId}`, this.newId());
  }

  private readonly quotaSetting: Setting<QuotaSpec> = {
    current: () => this.quota?.status(),
    set: (body) => {
      const spec = parseQuota(body);
      this.quota = new TokenBucket(spec);
      return spec;
    },
    clear: () => (this.quota = undefined),
  };

  private readonly latencySetting: Setting<LatencySpec> = {
    current: () => this.managementLatency?.spec,
    set: (body) => {
      const spec = parseLatency(body);
      this.managementLatency = new LatencyModel(spec);
      return spec;
    },
    clear: () => (this.managementLatency = undefined),
  };

  // ---- WebSocket: upgrade, $connect -------------------------------------------------------------

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // Without a listener an abrupt client reset during $connect would be an uncaught error.
    socket.on('error', (err) => this.log.debug('apigw.upgrade_socket_error', { err }));
    if (this.closing) return rejectUpgrade(socket, 503, 'The emulator is shutting down');
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== `/${this.stage}` && url.pathname !== `/${this.stage}/`) {
      return rejectUpgrade(socket, 404, `No WebSocket API at ${url.pathname}; connect to /${this.stage}`);
    }
    const problem = upgradeProblem(req);
    if (problem) return rejectUpgrade(socket, 400, problem);
    this.pendingSockets.add(socket);
    const p = this.connect(req, socket, head, url.search.slice(1))
      .catch((err) => {
        this.log.error('apigw.upgrade_failed', { err });
        rejectUpgrade(socket, 500, 'Internal server error');
      })
      .finally(() => {
        this.pendingSockets.delete(socket);
        this.pendingUpgrades.delete(p);
      });
    this.pendingUpgrades.add(p);
  }

  private eventIds(message = false): EventIds {
    return { requestId: this.newId(), extendedRequestId: this.newId(), ...(message ? { messageId: this.newId() } : {}) };
  }

  private uniqueConnectionId(): string {
    for (let i = 0; i < 100; i++) {
      const id = this.newConnectionId();
      if (typeof id !== 'string' || !id) throw new EmulatorOptionError('idGenerator', 'must return a non-empty string');
      if (!this.connections.has(id) && !this.reservedIds.has(id)) return id;
    }
    throw new Error('connection id generator keeps returning ids in use');
  }

  private async connect(req: IncomingMessage, socket: Duplex, head: Buffer, query: string): Promise<void> {
    const connectionId = this.uniqueConnectionId();
    this.reservedIds.add(connectionId);
    try {
      const ua = req.headers['user-agent'];
      const facts: ConnectionFacts = {
        connectionId,
        connectedAt: Date.now(),
        stage: this.stage,
        apiId: this.apiId,
        // Handlers build the management endpoint from domainName + stage; locally that must be
        // this host:port (API Gateway: {api}.execute-api.{region}.amazonaws.com).
        domainName: req.headers.host ?? `${this.hostForUrl()}:${this.port}`,
        identity: { sourceIp: sourceIpOf(socket), ...(ua ? { userAgent: ua } : {}) },
        queryString: query,
      };
      if (this.authorizer) {
        const refusal = await this.authorize(facts, req, query);
        if (refusal) return rejectUpgrade(socket, refusal);
      }
      let decision: { status: number; protocol?: string } = { status: 200 };
      const route = this.routes.get('$connect');
      if (route) {
        const event = connectEvent(facts, { rawHeaders: req.rawHeaders, query, localPort: this.port, proto: this.scheme }, this.eventIds(), Date.now());
        try {
          decision = connectDecision(await invokeLambda(route.handler, event, route));
        } catch (err) {
          // A throwing handler is an integration error: the upgrade fails with 500. A timeout
          // too (API Gateway gives up after its 29 s integration timeout).
          this.log.warn('apigw.connect_failed', { connectionId, timeout: err instanceof LambdaTimeoutError, err });
          decision = { status: 500 };
        }
      }
      if (decision.status < 200 || decision.status > 299) {
        this.log.info('apigw.connect_rejected', { connectionId, status: decision.status });
        return rejectUpgrade(socket, decision.status);
      }
      // Node's HTTP server allows half-open sockets: a client that left during $connect may
      // only have sent its FIN (readable false, still writable), which `ws` would refuse silently.
      if (socket.destroyed || !socket.readable || !socket.writable || this.closing) {
        // $connect accepted but the client left (or we are shutting down): the handler may have
        // stored the connection, so it gets its $disconnect like any abnormal close.
        socket.destroy();
        await this.runDisconnect(facts, { code: 1006, reason: 'Connection closed abnormally' });
        return;
      }
      if (decision.protocol !== undefined) this.chosenProtocol.set(req, decision.protocol);
      const opened = await new Promise<boolean>((resolve) => {
        this.wss.handleUpgrade(req, socket, head, (ws) => {
          this.open(facts, ws, socket);
          resolve(true);
        });
        // ws destroys a socket that closed meanwhile without calling back.
        socket.once('close', () => resolve(false));
      });
      // $connect succeeded, so the handler may have stored the connection: $disconnect runs for it
      // even though the socket never opened.
      if (!opened) await this.runDisconnect(facts, { code: 1006, reason: 'Connection closed abnormally' });
    } finally {
      this.reservedIds.delete(connectionId);
    }
  }

  /** Runs the `$connect` authorizer; the HTTP status to refuse the upgrade with, or undefined when allowed. */
  private async authorize(facts: ConnectionFacts, req: IncomingMessage, query: string): Promise<number | undefined> {
    const a = this.authorizer!;
    const request = connectEvent(
      facts,
      { rawHeaders: req.rawHeaders, query, localPort: this.port, proto: this.scheme, keepHopByHop: true },
      this.eventIds(),
      Date.now(),
    );
    const missing = missingIdentitySource(a.sources, request);
    if (missing) {
      this.log.info('apigw.unauthorized', { connectionId: facts.connectionId, missing });
      return 401;
    }
    const arn = methodArn('us-east-1', '000000000000', this.apiId, this.stage);
    const result = await invokeLambda(a.handler, authorizerEvent(request, arn), a).then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    );
    const outcome = authorizerOutcome(result, arn);
    if (!outcome.allowed) {
      this.log.info('apigw.authorizer_refused', { connectionId: facts.connectionId, status: outcome.status, reason: outcome.reason });
      return outcome.status;
    }
    facts.authorizer = outcome.authorizer;
    return undefined;
  }

  private open(facts: ConnectionFacts, ws: WebSocket, socket: Duplex): void {
    const conn = new EmulatedConnection(facts, ws, socket, this.limits, {
      log: this.log,
      onMessage: (c, text) => this.dispatch(c, text),
      onClosed: async (c, status) => {
        this.connections.delete(c.id);
        await this.runDisconnect(c.facts, status);
      },
    });
    this.connections.set(facts.connectionId, conn);
    conn.start();
    this.log.info('apigw.connected', { connectionId: facts.connectionId });
  }

  // ---- MESSAGE, $disconnect --------------------------------------------------------------------

  private async dispatch(conn: EmulatedConnection, text: string): Promise<void> {
    const ids = this.eventIds(true);
    const routeKey = this.selector.select(text, this.messageRouteKeys);
    if (!routeKey) {
      // No matching route and no $default: API Gateway answers with this error frame.
      conn.sendText(awsErrorFrame('Forbidden', conn.id, ids.requestId));
      return;
    }
    const route = this.routes.get(routeKey)!;
    const now = Date.now();
    try {
      const result = await invokeLambda(route.handler, messageEvent(conn.facts, routeKey, text, ids, now), route);
      if (route.returnResponse) {
        const body = responseBody(result);
        if (body !== undefined) conn.sendText(body);
      }
    } catch (err) {
      this.log.warn('apigw.integration_failed', { connectionId: conn.id, routeKey, err });
      conn.sendText(awsErrorFrame('Internal server error', conn.id, ids.requestId));
    }
  }

  private async runDisconnect(facts: ConnectionFacts, status: CloseStatus): Promise<void> {
    this.log.info('apigw.disconnected', { connectionId: facts.connectionId, code: status.code });
    const route = this.routes.get('$disconnect');
    if (!route) return;
    try {
      await invokeLambda(route.handler, disconnectEvent(facts, status, this.eventIds(), Date.now()), route);
    } catch (err) {
      // $disconnect is best effort in API Gateway too; a failure reaches nobody but the log.
      this.log.warn('apigw.disconnect_failed', { connectionId: facts.connectionId, err });
    }
  }
}
