import WebSocket, { type RawData } from 'ws';
import type { Logger } from '../lib/log';
import type { Credentials } from '../lib/upstream/headers';
import type { ResolvedAddress, SsrfGuard } from '../lib/upstream/ssrf';
import { backoffDelay } from '../lib/retry';

/**
 * One long-lived WebSocket to an upstream platform: dial, redial with backoff and jitter after
 * every drop, answer health probes with a ping/pong round trip, close on request.
 *
 * Every dial re-runs the SSRF check and connects to the address it checked (a pinned `lookup`),
 * so a DNS answer that changed since the control API's check (rebinding) cannot steer the socket
 * to a private address; TLS still verifies the certificate against the hostname. Redirects are
 * not followed (ws's default), for the same reason.
 */

export interface ConnectionHandlers {
  onOpen(): void;
  onMessage(data: RawData, isBinary: boolean): void;
  /** A frame over `maxPayload` arrived; ws closes the connection (1009) without reading it. */
  onTooLarge(): void;
  /** The socket dropped or a dial failed; the next dial is in `retryInMs`. */
  onDown(reason: string, retryInMs: number): void;
}

export interface UpstreamConnectionOptions {
  readonly url: URL;
  readonly credentials: Credentials;
  readonly guard: SsrfGuard;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  readonly handshakeTimeoutMs: number;
  /** Largest frame accepted (bytes); bigger ones close the connection with 1009. */
  readonly maxPayload: number;
  readonly handlers: ConnectionHandlers;
  readonly log: Logger;
}

/** RFC 7617 Basic credentials: base64(user-id ":" password), UTF-8. */
export function basicAuthorization(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.email}:${c.pass}`, 'utf8').toString('base64')}`;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | { address: string; family: number }[], family?: number) => void;

/**
 * A `lookup` for net.connect that answers with the address the guard checked. Node 20 calls it
 * with `all: true` when autoSelectFamily (happy eyeballs) is on, and expects an array then.
 */
export function pinnedLookup(addr: ResolvedAddress) {
  return (_hostname: string, options: unknown, callback?: LookupCallback) => {
    const cb = (typeof options === 'function' ? options : callback) as LookupCallback;
    const all = typeof options === 'object' && options !== null && (options as { all?: boolean }).all;
    if (all) cb(null, [{ address: addr.address, family: addr.family }]);
    else cb(null, addr.address, addr.family);
  };
}

export class UpstreamConnection {
  private ws?: WebSocket;
  private stopped = false;
  private started = false;
  private attempt = 0;
  private timer?: NodeJS.Timeout;
  private readonly authorization: string;

  constructor(private readonly opts: UpstreamConnectionOptions) {
    this.authorization = basicAuthorization(opts.credentials);
  }

  get isOpen(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    void this.dial();
  }

  private async dial(): Promise<void> {
    this.timer = undefined;
    if (this.stopped) return;
    let addr: ResolvedAddress;
    try {
      addr = (await this.opts.guard.check(this.opts.url)).addresses[0];
    } catch (err) {
      this.scheduleRedial(`connect refused: ${(err as Error).message}`);
      return;
    }
    if (this.stopped) return;
    const ws = new WebSocket(this.opts.url, {
      headers: { Authorization: this.authorization },
      handshakeTimeout: this.opts.handshakeTimeoutMs,
      lookup: pinnedLookup(addr) as never,
      followRedirects: false,
      maxPayload: this.opts.maxPayload,
    });
    this.ws = ws;
    let lastError = '';
    ws.on('open', () => {
      this.attempt = 0;
      this.opts.handlers.onOpen();
    });
    ws.on('message', (data, isBinary) => this.opts.handlers.onMessage(data, isBinary));
    // ws emits 'error' then 'close'; the reason is reported once, at close.
    ws.on('error', (err) => {
      lastError = err.message;
      if ((err as { code?: string }).code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') this.opts.handlers.onTooLarge();
    });
    ws.on('close', (code, reason) => {
      if (this.ws === ws) this.ws = undefined;
      if (this.stopped) return;
      this.scheduleRedial(lastError || `closed ${code}${reason.length ? ` ${reason.toString('utf8').slice(0, 120)}` : ''}`);
    });
  }

  private scheduleRedial(reason: string): void {
    if (this.stopped || this.timer) return;
    const delay = backoffDelay(this.attempt++, { baseMs: this.opts.backoffBaseMs, maxMs: this.opts.backoffMaxMs, jitter: 'equal' });
    this.opts.handlers.onDown(reason, delay);
    this.timer = setTimeout(() => void this.dial(), delay);
  }

  /** A ping/pong round trip: true when the pong arrives within `timeoutMs`. */
  ping(timeoutMs: number): Promise<boolean> {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(t);
        ws.off('pong', onPong);
        ws.off('close', onClose);
        resolve(ok);
      };
      const onPong = () => done(true);
      const onClose = () => done(false);
      const t = setTimeout(() => done(false), timeoutMs);
      ws.on('pong', onPong);
      ws.on('close', onClose);
      try {
        ws.ping();
      } catch {
        done(false);
      }
    });
  }

  /** Drops the current socket (if any) and redials with backoff. */
  reconnect(): void {
    if (this.stopped) return;
    this.ws?.terminate();
  }

  /** Stops for good, with a close frame (the upstream sees a clean close); waits up to `graceMs`. */
  async close(code = 1000, reason = 'closed', graceMs = 1000): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const ws = this.ws;
    this.ws = undefined;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    if (ws.readyState !== WebSocket.OPEN) {
      ws.terminate();
      return;
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        ws.terminate();
        resolve();
      }, graceMs);
      ws.once('close', () => {
        clearTimeout(t);
        resolve();
      });
      ws.close(code, reason);
    });
  }

  /** Stops for good at once, without a closing handshake (lease lost: not ours to use any more). */
  terminate(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.ws?.terminate();
    this.ws = undefined;
  }
}
