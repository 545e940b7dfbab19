import net from 'node:net';
import tls from 'node:tls';

/**
 * A minimal HTTP/1.1 client for one origin: keep-alive sockets (at most `maxSockets`), one
 * request in flight per socket, the request written as ONE pre-built buffer (one socket write,
 * one TLS record), and a response parser that reads only the status and how the body ends
 * (Content-Length, chunked, or close) before handing the socket back. Responses are read with
 * `onread` into one buffer per pool and parsed in place as bytes: no Buffer, string or stream
 * event per response. It exists for the fan-out's thousands of tiny `@connections` POSTs, where
 * node's `http.request` (ClientRequest, OutgoingMessage header bookkeeping, agent queues,
 * IncomingMessage streams) cost more CPU than the signing; see docs/performance.md.
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
/** Reads land in one buffer per pool (parsed synchronously; only an incomplete head is copied out). */
const READ_BUFFER_BYTES = 64 * 1024;
const CR = 13;
const LF = 10;
const COLON = 58;
const CRLFCRLF = Buffer.from('\r\n\r\n');
const ascii = (s: string): number[] => Array.from(s, (c) => c.charCodeAt(0));
const HTTP_1 = ascii('HTTP/1.');
const CONTENT_LENGTH = ascii('content-length');
const TRANSFER_ENCODING = ascii('transfer-encoding');
const CONNECTION = ascii('connection');
const CHUNKED = ascii('chunked');
const CLOSE = ascii('close');
const KEEP_ALIVE = ascii('keep-alive');

const enum Phase {
  Head,
  Length,
  Chunked,
  UntilClose,
}

interface Pending {
  readonly data: string | Buffer;
  readonly resolve: (status: number) => void;
}

class Conn {
  /** The request in flight, if any. */
  resolve: ((status: number) => void) | undefined;
  deadline = 0;
  /** Bytes of an incomplete head or chunk-size line, copied out of the shared read buffer. */
  private buf: Buffer | undefined;
  private phase = Phase.Head;
  private status = 0;
  private remaining = 0;
  private keepAlive = true;
  dead = false;
  socket!: net.Socket;

  constructor(private readonly pool: Http1Pool) {}

  /** Called by the pool once the socket exists (its `onread` callback needs this Conn first). */
  attach(socket: net.Socket): void {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('end', () => this.onClose(true));
    socket.on('close', () => this.onClose(false));
    // 'close' follows; the request (if any) fails there.
    socket.on('error', () => {});
  }

  write(data: string | Buffer, resolve: (status: number) => void, now: number): void {
    this.resolve = resolve;
    this.deadline = now + this.pool.timeoutMs;
    this.phase = Phase.Head;
    this.keepAlive = true;
    this.socket.write(data);
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

  /**
   * `n` bytes arrived in `shared` (the pool's read buffer, overwritten by the next read: nothing
   * may keep a reference to it).
   */
  onRead(shared: Buffer, n: number): void {
    if (this.dead) return;
    if (!this.resolve) {
      // Bytes nobody asked for: the stream can no longer be trusted to frame the next response.
      this.kill();
      return;
    }
    let buf = shared;
    let pos = 0;
    let end = n;
    if (this.buf) {
      buf = Buffer.concat([this.buf, shared.subarray(0, n)]);
      end = buf.length;
      this.buf = undefined;
    }
    for (;;) {
      if (this.phase === Phase.Head) {
        const h = indexOfCrlfCrlf(buf, pos, end);
        if (h < 0) {
          if (end - pos > MAX_HEAD_BYTES) return this.kill();
          this.buf = Buffer.from(buf.subarray(pos, end));
          return;
        }
        if (!this.parseHead(buf, pos, h)) return this.kill();
        pos = h + 4;
        if (this.status < 200) continue; // 1xx interim response: the real one follows
      }
      if (this.phase === Phase.Length) {
        const k = Math.min(this.remaining, end - pos);
        this.remaining -= k;
        pos += k;
        if (this.remaining > 0) return;
        break;
      }
      if (this.phase === Phase.Chunked) {
        const r = this.skipChunks(buf, pos, end);
        if (r === false) return this.kill();
        if (r === undefined) return;
        pos = r;
        break;
      }
      // UntilClose: the body ends with the stream (onClose).
      return;
    }
    // One response per request: more bytes than it framed mean a confused stream.
    if (pos < end) this.keepAlive = false;
    this.finish(this.status);
    if (!this.keepAlive) this.kill();
  }

  /**
   * Status line and the framing headers of the head in buf[start, end) (end at its CRLFCRLF),
   * read in place: no string per response. False for a response we cannot frame.
   */
  private parseHead(buf: Buffer, start: number, end: number): boolean {
    // "HTTP/1.1 200 OK" (the reason phrase may be empty, and so may be the space before it)
    if (end - start < 12 || !matchesAt(buf, start, HTTP_1)) return false;
    const minor = buf[start + 7];
    const d0 = buf[start + 9] - 48;
    const d1 = buf[start + 10] - 48;
    const d2 = buf[start + 11] - 48;
    if ((minor !== 48 && minor !== 49) || buf[start + 8] !== 32 || !(d0 >= 1 && d0 <= 5 && d1 >= 0 && d1 <= 9 && d2 >= 0 && d2 <= 9)) return false;
    if (end - start > 12 && buf[start + 12] !== 32 && buf[start + 12] !== CR) return false;
    const status = d0 * 100 + d1 * 10 + d2;
    this.status = status;
    if (status < 200) return true;
    const http10 = minor === 48;
    let length = -1;
    let chunked = false;
    let close = false;
    let keepAlive = false;
    // Header lines: each starts after a CRLF and ends at the next CR (or at `end`).
    let line = buf.indexOf(LF, start) + 1;
    while (line > 0 && line < end) {
      let eol = line;
      while (eol < end && buf[eol] !== CR) eol++;
      let colon = line;
      while (colon < eol && buf[colon] !== COLON) colon++;
      if (colon < eol) {
        const len = colon - line;
        if (len === CONTENT_LENGTH.length && length < 0 && nameIs(buf, line, CONTENT_LENGTH)) length = parseLength(buf, colon + 1, eol);
        else if (len === TRANSFER_ENCODING.length && nameIs(buf, line, TRANSFER_ENCODING)) chunked ||= contains(buf, colon + 1, eol, CHUNKED);
        else if (len === CONNECTION.length && nameIs(buf, line, CONNECTION)) {
          close ||= contains(buf, colon + 1, eol, CLOSE);
          keepAlive ||= contains(buf, colon + 1, eol, KEEP_ALIVE);
        }
      }
      line = eol + 2;
    }
    if (http10 ? !keepAlive : close) this.keepAlive = false;
    if (status === 204 || status === 304) {
      this.phase = Phase.Length;
      this.remaining = 0;
    } else if (chunked) {
      this.phase = Phase.Chunked;
      this.remaining = -1;
    } else if (length >= 0) {
      this.phase = Phase.Length;
      this.remaining = length;
    } else {
      this.phase = Phase.UntilClose;
      this.keepAlive = false;
    }
    return true;
  }

  /**
   * Consumes chunked body bytes from buf[pos, end): the position after the last chunk and its
   * trailers, undefined when more bytes are needed (the unconsumed part is kept), false for a
   * malformed body. `remaining` is the data still to skip in the current chunk, -1 before a size
   * line, -2 in the trailers.
   */
  private skipChunks(buf: Buffer, pos: number, end: number): number | false | undefined {
    for (;;) {
      if (this.remaining === -2) {
        // Trailer lines until an empty one.
        const eol = indexOfCrlf(buf, pos, end);
        if (eol < 0) return this.keep(buf, pos, end);
        const empty = eol === pos;
        pos = eol + 2;
        if (empty) return pos;
        continue;
      }
      if (this.remaining === -1) {
        const eol = indexOfCrlf(buf, pos, end);
        if (eol < 0) return end - pos > 1024 ? false : this.keep(buf, pos, end);
        const size = parseInt(buf.toString('latin1', pos, eol), 16);
        if (!(size >= 0)) return false;
        pos = eol + 2;
        // data, then its CRLF; the last (0-size) chunk is followed by trailers instead
        this.remaining = size === 0 ? -2 : size + 2;
        continue;
      }
      const k = Math.min(this.remaining, end - pos);
      this.remaining -= k;
      pos += k;
      if (this.remaining > 0) return undefined;
      this.remaining = -1;
    }
  }

  /** Keeps buf[pos, end) (a partial line) for the next read; undefined: more bytes needed. */
  private keep(buf: Buffer, pos: number, end: number): undefined {
    this.buf = Buffer.from(buf.subarray(pos, end));
    return undefined;
  }
}

/** The first CRLFCRLF in buf[from, to), or -1. */
function indexOfCrlfCrlf(buf: Buffer, from: number, to: number): number {
  const i = buf.indexOf(CRLFCRLF, from);
  return i >= 0 && i + 4 <= to ? i : -1;
}

/** The first CRLF in buf[from, to), or -1. */
function indexOfCrlf(buf: Buffer, from: number, to: number): number {
  for (let i = from; i + 1 < to; i++) if (buf[i] === CR && buf[i + 1] === LF) return i;
  return -1;
}

function matchesAt(buf: Buffer, at: number, bytes: readonly number[]): boolean {
  for (let i = 0; i < bytes.length; i++) if (buf[at + i] !== bytes[i]) return false;
  return true;
}

/** Header name at `at` equals `lower` ignoring ASCII case (the caller checked the length). */
function nameIs(buf: Buffer, at: number, lower: readonly number[]): boolean {
  for (let i = 0; i < lower.length; i++) {
    const b = buf[at + i];
    if (b !== lower[i] && (b | 0x20) !== lower[i]) return false;
  }
  return true;
}

/** buf[from, to) contains `lower` ignoring ASCII case. */
function contains(buf: Buffer, from: number, to: number, lower: readonly number[]): boolean {
  const last = to - lower.length;
  outer: for (let i = from; i <= last; i++) {
    for (let j = 0; j < lower.length; j++) {
      const b = buf[i + j];
      if (b !== lower[j] && (b | 0x20) !== lower[j]) continue outer;
    }
    return true;
  }
  return false;
}

/** A Content-Length value (digits between optional blanks), or -1 when it is not one. */
function parseLength(buf: Buffer, from: number, to: number): number {
  while (from < to && (buf[from] === 32 || buf[from] === 9)) from++;
  while (to > from && (buf[to - 1] === 32 || buf[to - 1] === 9)) to--;
  if (from === to || to - from > 15) return -1;
  let n = 0;
  for (let i = from; i < to; i++) {
    const d = buf[i] - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
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
  private readonly readBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
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
  request(data: string | Buffer): Promise<number> {
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

  private start(conn: Conn, data: string | Buffer, resolve: (status: number) => void): void {
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
    const conn = new Conn(this);
    // `onread`: bytes are copied into the pool's one read buffer and handed straight to the
    // parser, without a Buffer per read nor the Readable stream's push/emit machinery.
    const buffer = this.readBuffer;
    const onread: net.OnReadOpts = { buffer, callback: (n) => (conn.onRead(buffer, n), true) };
    const socket = this.secure
      ? // tls.connect documents `onread` (for a socket it creates) though @types/node lacks it.
        tls.connect({ host: this.host, port: this.port, servername: this.servername, session: this.tlsSession, ALPNProtocols: ['http/1.1'], secureContext: this.secureContext, onread } as tls.ConnectionOptions)
      : net.connect({ host: this.host, port: this.port, onread });
    if (this.secure) socket.on('session', (s: Buffer) => (this.tlsSession = s));
    conn.attach(socket);
    this.all.add(conn);
    return conn;
  }
}
