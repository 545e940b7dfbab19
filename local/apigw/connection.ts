import { isUtf8 } from 'node:buffer';
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import type { Logger } from '../../lib/log';
import { disconnectReasonFor, type ConnectionFacts } from './events';
import { CLOSE_MESSAGE_TOO_BIG, FrameSizeGuard, sendFragmented } from './limits';
import type { ConnectionInfo, ManagedConnection } from './management-api';

/**
 * One accepted WebSocket: its timers (idle, maximum duration), the size guard, the per-connection
 * invocation queue, and how it ends. The emulator owns routing and invocations; this owns state.
 */

export interface ConnectionLimits {
  idleTimeoutMs: number;
  maxDurationMs: number;
  frameLimitBytes: number;
  messageLimitBytes: number;
  /** Unsent server→client bytes a connection may hold before it is cut off (see LIMITS.sendBufferBytes). */
  sendBufferLimitBytes: number;
}

export interface CloseStatus {
  code: number;
  reason: string;
}

export interface ConnectionHooks {
  /** A text message arrived; invoked sequentially per connection, in arrival order. */
  onMessage(conn: EmulatedConnection, text: string): Promise<void>;
  /** The socket closed; runs after every queued message has been handled. */
  onClosed(conn: EmulatedConnection, status: CloseStatus): Promise<void>;
  log: Logger;
}

/** API Gateway closes idle and over-age connections with 1001 "Going away". */
export const GOING_AWAY: CloseStatus = { code: 1001, reason: 'Going away' };
/** "API Gateway WebSocket APIs don't currently support binary frames in incoming message payloads.
 * If a client app sends a binary frame, API Gateway rejects it and disconnects the client with
 * code 1003." (websocket-api-develop-binary-media-types.html) */
export const BINARY_REJECTED: CloseStatus = { code: 1003, reason: 'Binary frames are not supported' };
export const MESSAGE_TOO_BIG: CloseStatus = { code: CLOSE_MESSAGE_TOO_BIG, reason: 'Message too big' };
/**
 * A client that stopped reading while more than `sendBufferLimitBytes` waited to be sent. AWS
 * documents no figure for this; API Gateway ends connections it closes itself with 1001.
 */
export const SLOW_CONSUMER: CloseStatus = { code: 1001, reason: 'Going away' };
/** DELETE @connections/{id}: a normal server-side close. */
export const SERVER_DISCONNECT: CloseStatus = { code: 1000, reason: 'Connection closed by the server (DELETE @connections)' };

export class EmulatedConnection implements ManagedConnection {
  lastActiveAt: number;
  private state: 'open' | 'closing' | 'closed' = 'open';
  private serverClose?: CloseStatus;
  private queue: Promise<void> = Promise.resolve();
  private idleTimer?: NodeJS.Timeout;
  private maxTimer?: NodeJS.Timeout;
  private graceTimer?: NodeJS.Timeout;
  private resolveDone!: () => void;
  /** Resolves once the socket is closed and `$disconnect` has run. */
  readonly done = new Promise<void>((r) => (this.resolveDone = r));

  constructor(
    readonly facts: ConnectionFacts,
    private readonly ws: WebSocket,
    private readonly socket: Duplex,
    private readonly limits: ConnectionLimits,
    private readonly hooks: ConnectionHooks,
  ) {
    this.lastActiveAt = facts.connectedAt;
  }

  get id(): string {
    return this.facts.connectionId;
  }

  /**
   * Open for the management API and for new messages. A close frame from the client (or a TCP
   * FIN) moves `ws` to CLOSING before its 'close' event: from that moment the connection is gone,
   * as in API Gateway, even though `$disconnect` has not run yet.
   */
  get isOpen(): boolean {
    return this.state === 'open' && this.ws.readyState === this.ws.OPEN;
  }

  start(): void {
    const guard = new FrameSizeGuard(this.limits.frameLimitBytes, this.limits.messageLimitBytes);
    // Prepended so the guard sees each chunk before `ws` parses it (see limits.ts).
    this.socket.prependListener('data', (chunk: Buffer) => {
      const v = guard.push(chunk);
      if (v) {
        this.hooks.log.warn('apigw.limit_exceeded', { connectionId: this.id, ...v });
        this.close(MESSAGE_TOO_BIG);
      }
    });
    this.ws.on('message', (data, isBinary) => {
      if (this.state !== 'open') return;
      if (isBinary) return this.close(BINARY_REJECTED);
      this.lastActiveAt = Date.now();
      this.armIdle();
      const text = Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.concat(data as Buffer[]).toString('utf8');
      this.enqueue(() => this.hooks.onMessage(this, text));
    });
    this.ws.on('error', (err) => this.hooks.log.warn('apigw.socket_error', { connectionId: this.id, err }));
    this.ws.on('close', (code, reason) => this.onClose(code, reason.toString('utf8')));
    this.armIdle();
    // The 2 h cap counts from connectedAt, which includes the time `$connect` took.
    const left = Math.max(0, this.facts.connectedAt + this.limits.maxDurationMs - Date.now());
    this.maxTimer = setTimeout(() => this.close(GOING_AWAY), left);
  }

  /** Idle means no client→server message for idleTimeoutMs; server posts and pings do not count. */
  private armIdle(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.close(GOING_AWAY), this.limits.idleTimeoutMs);
  }

  private enqueue(task: () => Promise<void>): void {
    this.queue = this.queue.then(task).catch((err) => this.hooks.log.error('apigw.task_failed', { connectionId: this.id, err }));
  }

  info(): ConnectionInfo {
    return { connectedAt: this.facts.connectedAt, lastActiveAt: this.lastActiveAt, identity: { ...this.facts.identity } };
  }

  /**
   * @connections POST: a text frame when the data is valid UTF-8, else a binary frame. False when
   * the connection is gone, including when this post would push what waits unsent for a client
   * that does not read past the bound: the connection is then cut off instead of growing memory.
   */
  post(data: Buffer): boolean {
    return this.send(data, isUtf8(data));
  }

  /** A server-generated text message (error frames, route responses). */
  sendText(text: string): void {
    this.send(Buffer.from(text, 'utf8'), true);
  }

  private send(data: Buffer, text: boolean): boolean {
    if (!this.isOpen) return false;
    // bufferedAmount: bytes `ws` and the socket hold that the kernel has not taken yet, i.e. what
    // a client that stopped reading makes us keep once its TCP window and our send buffer are full.
    const pending = this.ws.bufferedAmount;
    if (pending + data.length > this.limits.sendBufferLimitBytes) {
      this.hooks.log.warn('apigw.slow_consumer', { connectionId: this.id, pendingBytes: pending, limit: this.limits.sendBufferLimitBytes });
      // The close frame would queue behind the unsent data and never arrive: cut the socket.
      this.close(SLOW_CONSUMER, 0);
      return false;
    }
    sendFragmented(this.ws, data, text, this.limits.frameLimitBytes);
    return true;
  }

  disconnect(): void {
    this.close(SERVER_DISCONNECT);
  }

  /**
   * Starts a server-side close. `$disconnect` reports this status (not whatever the client echoes
   * back). A client that never answers the close frame is cut off after `graceMs`.
   */
  close(status: CloseStatus, graceMs = 5_000): void {
    if (this.state !== 'open') return;
    this.state = 'closing';
    this.serverClose = status;
    this.clearTimers();
    try {
      this.ws.close(status.code, status.reason);
    } catch {
      this.ws.terminate();
    }
    this.graceTimer = setTimeout(() => this.ws.terminate(), graceMs);
  }

  private onClose(code: number, reason: string): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.clearTimers();
    const status = this.serverClose ?? { code, reason: disconnectReasonFor(code, reason) };
    this.enqueue(() => this.hooks.onClosed(this, status));
    this.queue.then(() => this.resolveDone());
  }

  private clearTimers(): void {
    clearTimeout(this.idleTimer);
    clearTimeout(this.maxTimer);
    clearTimeout(this.graceTimer);
  }
}
