import net from 'node:net';
import tls from 'node:tls';

/**
 * A minimal HTTP/1.1 client for one origin: keep-alive sockets (at most `maxSockets`), one
 * request in flight per socket, the request written as ONE pre-built string (one socket write,
 * one TLS record), and a response parser that reads only the status and how the body ends
 * (Content-Length, chunked, or close) before handing the socket back. It exists for the fan-out's
 * thousands of tiny `@connections` POSTs, where node's `http.request` (ClientRequest,
 * OutgoingMessage header bookkeeping, agent queues, IncomingMessage streams) cost more CPU than
 * the signing; see docs/performance.md.
 *
 * Outcomes are plain numbers: the response status, or 0 when no complete response arrived
 * (connect failure, TLS failure, reset, timeout, a malformed response). A request is never
 * retried here: a POST that reached the server may have been delivered.
 *
 * TLS: certificates are verified against the default trust store (with NODE_EXTRA_CA_CERTS),
 * the server name is sent for host names, and the last session ticket is offered to new
 * sockets, so only the first handshake is a full one.
 */

export interface Http1PoolOptions {
  /** `http://` or `https://` origin; the path is ignored. */
  readonly origin: URL;
  readonly maxSockets: number;
  /** A request with no complete response this long after it was written fails (status 0). */
  readonly timeoutMs: number;
  /** Trust these CAs (PEM) instead of the default store; tests only. */
  readonly ca?: string;
}

/** Status when there was no (complete) response. */
export const NO_RESPONSE = 0;

/** Longest response head we accept: API Gateway's are a few hundred bytes. */
const MAX_HEAD_BYTES = 64 * 1024;
const CRLFCRLF = Buffer.from('\r\n\r\n');

const enum Phase {
  Head,
  Length,
  Chunked,
  UntilClose,
}

interface Pending {
  readonly data: string;
  readonly resolve: (status: number) => void;
}

class Conn {
  /** The request in flight, if any. */
  resolve: ((status: number) => void) | undefined;
  deadline = 0;
  private buf: Buffer | undefined;
  private phase = Phase.Head;
  private status = 0;
  private remaining = 0;
  private keepAlive = true;
  dead = false;

  constructor(
    readonly socket: net.Socket,
    private readonly pool: Http1Pool,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onClose(true));
    socket.on('close', () => this.onClose(false));
    // 'close' follows; the request (if any) fails there.
    socket.on('error', () => {});
  }

  write(data: string, resolve: (status: number) => void, now: number): void {
    this.resolve = resolve;
    this.deadline = now + this.pool.timeoutMs;
    this.phase = Phase.Head;
    this.keepAlive = true;
    this.socket.write(data, 'utf8');
  }

  /** Fails the request in flight (if any) and closes the socket for good. */
  kill(): void {
    if (this.dead) return;
    this.dead = true;
    this.buf = undefined;
    this.socket.destroy();
    // Out of the pool now, not at the socket's (later) 'close': no request may pick it meanwhile.
    this.pool.forget(this);
    this.finish(NO_RESPONSE);
  }

  private onClose(ended: boolean): void {
    // A body delimited by the end of the stream is complete when the server ends it.
    if (ended && this.resolve && this.phase === Phase.UntilClose) {
      this.keepAlive = false;
      this.finish(this.status);
    }
    this.kill();
  }

  private finish(status: number): void {
    const resolve = this.resolve;
    if (!resolve) return;
    this.resolve = undefined;
    this.pool.released(this, !this.dead && this.keepAlive);
    resolve(status);
  }

  private onData(chunk: Buffer): void {
    if (!this.resolve) {
      // Bytes nobody asked for: the stream can no longer be trusted to frame the next response.
      this.kill();
      return;
    }
    let buf = this.buf ? Buffer.concat([this.buf, chunk]) : chunk;
    this.buf = undefined;
    for (;;) {
      if (this.phase === Phase.Head) {
        const end = buf.indexOf(CRLFCRLF);
        if (end < 0) {
          if (buf.length > MAX_HEAD_BYTES) return this.kill();
          this.buf = buf;
          return;
        }
        if (!this.parseHead(buf.toString('latin1', 0, end))) return this.kill();
        buf = buf.subarray(end + 4);
        if (this.status < 200) continue; // 1xx interim response: the real one follows
      }
      if (this.phase === Phase.Length) {
        const n = Math.min(this.remaining, buf.length);
        this.remaining -= n;
        buf = buf.subarray(n);
        if (this.remaining > 0) return;
        break;
      }
      if (this.phase === Phase.Chunked) {
        const r = this.skipChunks(buf);
        if (r === false) return this.kill();
        if (r === undefined) return;
        buf = r;
        break;
      }
      // UntilClose: the body ends with the stream (onClose).
      return;
    }
    // One response per request: more bytes than it framed mean a confused stream.
    if (buf.length > 0) this.keepAlive = false;
    this.finish(this.status);
    if (!this.keepAlive) this.kill();
  }

  /** Status line and the framing headers; false for a response we cannot frame. */
  private parseHead(head: string): boolean {
    // "HTTP/1.1 200 OK"
    if (!head.startsWith('HTTP/1.') || head.charCodeAt(12) !== 32 && head.length !== 12) return false;
    const status = Number(head.slice(9, 12));
    if (!(status >= 100 && status <= 599)) return false;
    this.status = status;
    if (status < 200) return true;
    const lower = head.toLowerCase();
    if (head.charCodeAt(7) === 48 /* HTTP/1.0 */ ? !/\r\nconnection:[^\r]*keep-alive/.test(lower) : /\r\nconnection:[^\r]*close/.test(lower)) {
      this.keepAlive = false;
    }
    if (status === 204 || status === 304) {
      this.phase = Phase.Length;
      this.remaining = 0;
    } else if (/\r\ntransfer-encoding:[^\r]*chunked/.test(lower)) {
      this.phase = Phase.Chunked;
      this.remaining = -1;
    } else {
      const m = /\r\ncontent-length:[ \t]*(\d+)[ \t]*(?:\r|$)/.exec(lower);
      if (m) {
        this.phase = Phase.Length;
        this.remaining = Number(m[1]);
      } else {
        this.phase = Phase.UntilClose;
        this.keepAlive = false;
      }
    }
    return true;
  }

  /**
   * Consumes chunked body bytes: the rest after the last chunk and its trailers, undefined when
   * more bytes are needed (the unconsumed part is kept), false for a malformed body.
   * `remaining` is the data still to skip in the current chunk, -1 before a size line, -2 in
   * the trailers.
   */
  private skipChunks(buf: Buffer): Buffer | false | undefined {
    for (;;) {
      if (this.remaining === -2) {
        // Trailer lines until an empty one.
        const eol = buf.indexOf('\r\n');
        if (eol < 0) return (this.buf = buf), undefined;
        buf = buf.subarray(eol + 2);
        if (eol === 0) return buf;
        continue;
      }
      if (this.remaining === -1) {
        const eol = buf.indexOf('\r\n');
        if (eol < 0) return buf.length > 1024 ? false : ((this.buf = buf), undefined);
        const size = parseInt(buf.toString('latin1', 0, eol), 16);
        if (!(size >= 0)) return false;
        buf = buf.subarray(eol + 2);
        // data, then its CRLF; the last (0-size) chunk is followed by trailers instead
        this.remaining = size === 0 ? -2 : size + 2;
        continue;
      }
      const n = Math.min(this.remaining, buf.length);
      this.remaining -= n;
      buf = buf.subarray(n);
      if (this.remaining > 0) return undefined;
      this.remaining = -1;
    }
  }
}

export class Http1Pool {
  readonly timeoutMs: number;
  private readonly host: string;
  private readonly port: number;
  private readonly secure: boolean;
  private readonly servername: string | undefined;
  private readonly maxSockets: number;
  /** One TLS context for every socket: building one (the root store included) per connect cost ~5 % of a fan-out's CPU. */
  private readonly secureContext: tls.SecureContext | undefined;
  private readonly idle: Conn[] = [];
  private readonly all = new Set<Conn>();
  private readonly waiting: Pending[] = [];
  private tlsSession: Buffer | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(opts: Http1PoolOptions) {
    const u = opts.origin;
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new TypeError(`expected an http:// or https:// endpoint, got ${u.protocol}`);
    if (!(Number.isInteger(opts.maxSockets) && opts.maxSockets > 0)) throw new TypeError(`maxSockets must be a positive integer, got ${opts.maxSockets}`);
    if (!(opts.timeoutMs > 0)) throw new TypeError(`timeoutMs must be positive, got ${opts.timeoutMs}`);
    this.secure = u.protocol === 'https:';
    this.host = u.hostname.replace(/^\[(.*)\]$/, '$1');
    this.port = u.port ? Number(u.port) : this.secure ? 443 : 80;
    this.servername = this.secure && net.isIP(this.host) === 0 ? this.host : undefined;
    this.maxSockets = opts.maxSockets;
    this.timeoutMs = opts.timeoutMs;
    this.secureContext = this.secure ? tls.createSecureContext(opts.ca === undefined ? {} : { ca: opts.ca }) : undefined;
  }

  /**
   * Writes `data` (a complete request: head and body) on a free keep-alive socket, a new one, or
   * the next to be freed; resolves the response status, or NO_RESPONSE.
   */
  request(data: string): Promise<number> {
    return new Promise<number>((resolve) => {
      if (this.closed) return resolve(NO_RESPONSE);
      const conn = this.idle.pop() ?? (this.all.size < this.maxSockets ? this.connect() : undefined);
      if (conn) this.start(conn, data, resolve);
      else this.waiting.push({ data, resolve });
    });
  }

  /** Closes every socket; requests in flight or waiting resolve NO_RESPONSE. */
  close(): void {
    this.closed = true;
    for (const w of this.waiting.splice(0)) w.resolve(NO_RESPONSE);
    for (const c of [...this.all]) c.kill();
    clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  /** Sockets open now (idle or busy). */
  get sockets(): number {
    return this.all.size;
  }

  /** Called by a connection that is closing: it no longer counts or serves. */
  forget(conn: Conn): void {
    this.all.delete(conn);
    const idx = this.idle.indexOf(conn);
    if (idx >= 0) this.idle.splice(idx, 1);
  }

  /** Called by a connection when its request finished; `reusable` puts it back in the pool. */
  released(conn: Conn, reusable: boolean): void {
    if (!reusable) this.forget(conn);
    const next = this.waiting.shift();
    if (next) {
      const c = reusable ? conn : this.all.size < this.maxSockets && !this.closed ? this.connect() : undefined;
      if (c) {
        // After the current resolve() has run: the caller may still be reading its status.
        queueMicrotask(() => (c.dead ? this.request(next.data).then(next.resolve) : this.start(c, next.data, next.resolve)));
        return;
      }
      this.waiting.unshift(next);
    }
    if (reusable) this.idle.push(conn);
  }

  private start(conn: Conn, data: string, resolve: (status: number) => void): void {
    conn.write(data, resolve, Date.now());
    this.sweeper ??= setInterval(() => this.sweep(), Math.max(5, Math.min(1000, this.timeoutMs / 4))).unref();
  }

  /** Times out requests past their deadline (one timer for the pool instead of one per request). */
  private sweep(): void {
    const now = Date.now();
    let busy = 0;
    for (const c of this.all) {
      if (!c.resolve) continue;
      if (now >= c.deadline) c.kill();
      else busy++;
    }
    if (busy === 0 && this.waiting.length === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  private connect(): Conn {
    const socket = this.secure
      ? tls.connect({ host: this.host, port: this.port, servername: this.servername, session: this.tlsSession, ALPNProtocols: ['http/1.1'], secureContext: this.secureContext })
      : net.connect({ host: this.host, port: this.port });
    if (this.secure) socket.on('session', (s: Buffer) => (this.tlsSession = s));
    const conn = new Conn(socket, this);
    this.all.add(conn);
    return conn;
  }
}
