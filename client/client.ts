import { backoffDelay } from './backoff';
import type { Conn } from './conn';
import { CollectionView } from './collection-view';
import { Emitter } from './emitter';
import { RealtimeError, RETRYABLE_CODES } from './errors';
import { collectionOf, collectionPattern, isCollectionPattern } from '../lib/protocol/collections';
import type { ClientFrame as ClientMessage, CollectionSnapshotMessage, ServerMessage } from '../lib/protocol/frames';
import { API_GATEWAY_IDLE_TIMEOUT_MS, API_GATEWAY_MAX_CONNECTION_MS, MAX_IDEMPOTENCY_KEY_LENGTH } from '../lib/protocol/limits';
import { parseServerMessage } from '../lib/protocol/parse';
import { resolveOptions, type ResolvedOptions } from './options';
import { RequestLedger } from './requests';
import { Rotation } from './rotation';
import { TopicTracker, type Delivery } from './topic-tracker';
import { OPEN, buildConnectRequest, frameText, isProtocolToken, type WebSocketLike } from './transport';
import type {
  ClientEvents,
  CollectionMember,
  CollectionSnapshotHandler,
  ConnectOptions,
  ConnectionState,
  EventHandler,
  SnapshotHandler,
  StateChange,
  SubscribeOptions,
  Subscription,
  PresenceInfo,
} from './types';

/**
 * The connection state machine: one socket serving subscriptions (`current`), at most one attempt
 * in flight (`pending`) and, during a proactive rotation, the previous socket still draining.
 *
 * API Gateway limits that shape it:
 *  - idle timeout 10 minutes → an application `ping` every `pingIntervalMs` (default 5 min);
 *    browsers cannot send WebSocket ping frames, so the ping is a message (route `ping`).
 *  - maximum connection duration 2 hours → a rotation after `rotateAfterMs` (default 115 min minus
 *    up to 5 min jitter): the new socket opens and resubscribes every topic with `sinceSeq` while
 *    the old one still delivers; the old one is closed once each topic got an answer on the new
 *    one (the server has then recorded the subscription, so every later change reaches the new
 *    socket or is in the history it replays) or after `rotateOverlapMs`. Duplicates from the
 *    overlap are dropped by seq.
 * Unplanned losses reconnect with exponential backoff and full jitter and resubscribe with
 * `sinceSeq` = the last seq delivered, so the application sees each change once and in order.
 */

interface TopicEntry {
  readonly tracker: TopicTracker;
  /** A collection subscription (`battery:*`): its members' trackers (`tracker` is then unused). */
  readonly collection?: CollectionView;
  readonly onCollectionSnapshot?: CollectionSnapshotHandler;
  readonly onSnapshot?: SnapshotHandler;
  readonly onEvent?: EventHandler;
  readonly onError?: (err: RealtimeError) => void;
  gapTimer?: unknown;
  /** A subscribe sent on `conn` and not yet answered; `attempt` counts its re-sends (backoff exponent). */
  /** `progressAt`: when the last replayed event of this subscribe arrived. */
  awaiting?: { conn: Conn; attempt: number; timer?: unknown; progressAt?: number };
}

/** API Gateway WebSocket idle timeout (10 min) and maximum connection duration (2 h): part of the SDK's API. */
export { API_GATEWAY_IDLE_TIMEOUT_MS, API_GATEWAY_MAX_CONNECTION_MS };

const noop = () => {};
// With the `u` flag a surrogate class matches only unpaired halves (a pair is one code point).
const LONE_SURROGATE = /[\ud800-\udfff]/u;

export class RealtimeClient extends Emitter<ClientEvents> {
  private readonly opts: ResolvedOptions;
  private currentState: ConnectionState = 'connecting';
  private current?: Conn;
  private pending?: Conn;
  /** A proactive rotation in its overlap: `current` is its new socket, its `previous` still delivers. */
  private rotation?: Rotation;
  /** A token is being fetched for the next attempt. */
  private fetchingToken = false;
  /** Retries scheduled since the last successful open: the backoff exponent. */
  private retries = 0;
  /** Consecutive attempts that did not open (reset when one opens); bounded by maxAttempts. */
  private failures = 0;
  private retryTimer?: unknown;
  private closed = false;
  private nextConnId = 1;
  private readonly entries = new Map<string, TopicEntry>();
  private openWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private readonly requests = new RequestLedger();
  private nextRequestId = 1;

  constructor(
    readonly url: string,
    options: ConnectOptions = {},
  ) {
    super();
    this.opts = resolveOptions(url, options);
    for (const t of options.topics ?? []) this.subscribe(t);
    void this.attemptConnect();
  }

  get state(): ConnectionState {
    return this.currentState;
  }

  /** Topics currently subscribed (in subscription order). */
  get topics(): string[] {
    return [...this.entries.keys()];
  }

  /** Last seq delivered for a topic: the resume position. */
  lastSeq(topic: string): number | undefined {
    return this.entries.get(topic)?.tracker.lastSeq;
  }

  /** Frames dropped as duplicates for a topic (diagnostics). */
  duplicates(topic: string): number {
    return this.entries.get(topic)?.tracker.duplicates ?? 0;
  }

  /** Resolves when the client is (next) open; rejects if it is closed first. */
  whenOpen(): Promise<void> {
    if (this.currentState === 'open') return Promise.resolve();
    if (this.closed) return Promise.reject(new RealtimeError('closed', 'the client is closed'));
    return new Promise((resolve, reject) => this.openWaiters.push({ resolve, reject }));
  }

  /**
   * Subscribes a topic: `onSnapshot` gets the current state (and later `reset` snapshots),
   * `onEvent` every change after it, exactly once and in seq order, across reconnects.
   */
  subscribe<T = unknown>(pattern: `${string}:*`, onSnapshot?: CollectionSnapshotHandler<T>, onEvent?: EventHandler<T>, opts?: SubscribeOptions): Subscription;
  subscribe<T = unknown>(topic: string, onSnapshot?: SnapshotHandler<T>, onEvent?: EventHandler<T>, opts?: SubscribeOptions): Subscription;
  subscribe<T = unknown>(
    topic: string,
    onSnapshot?: SnapshotHandler<T> | CollectionSnapshotHandler<T>,
    onEvent?: EventHandler<T>,
    opts: SubscribeOptions = {},
  ): Subscription {
    if (this.closed) throw new RealtimeError('closed', 'the client is closed', topic);
    if (typeof topic !== 'string' || topic.length === 0 || topic.length > 256) {
      throw new RealtimeError('invalid_topic', 'topic must be a string of 1 to 256 characters', typeof topic === 'string' ? topic : undefined);
    }
    // The server refuses these too (no UTF-8 form); failing here keeps the error synchronous.
    if (LONE_SURROGATE.test(topic)) throw new RealtimeError('invalid_topic', 'topic must not contain a lone UTF-16 surrogate', topic);
    if (this.entries.has(topic)) throw new RealtimeError('already_subscribed', `already subscribed to "${topic}"`, topic);
    const collection = isCollectionPattern(topic);
    const entry: TopicEntry = {
      tracker: new TopicTracker(topic, { maxBuffered: this.opts.maxBuffered }),
      ...(collection
        ? { collection: new CollectionView(topic, this.opts.maxBuffered), onCollectionSnapshot: onSnapshot as CollectionSnapshotHandler | undefined }
        : { onSnapshot: onSnapshot as SnapshotHandler | undefined }),
      onEvent: onEvent as EventHandler | undefined,
      onError: opts.onError,
    };
    this.entries.set(topic, entry);
    if (this.current?.opened) this.requestTopic(this.current, topic, entry);
    return { topic, unsubscribe: () => this.unsubscribe(topic) };
  }

  /** Stops a topic at once: nothing more is delivered for it, and it is not resubscribed on reconnect. */
  unsubscribe(topic: string): void {
    const entry = this.entries.get(topic);
    if (!entry) return;
    this.clearTimer(entry.gapTimer);
    this.stopAwaiting(entry);
    this.entries.delete(topic);
    if (this.current?.opened) {
      this.sendFrame(this.current, { action: 'unsubscribe', topic });
      this.confirm(this.current, topic);
    }
  }

  /**
   * Publishes `data` on `topic` from the socket; resolves with the seq it was written at. Sent
   * again with the same `id` on a new socket until answered, so it is applied once.
   */
  publish(topic: string, data: unknown, opts: { id?: string } = {}): Promise<{ seq: number }> {
    return this.request({ action: 'publish', topic, data }, opts.id) as Promise<{ seq: number }>;
  }

  /**
   * Sends an application action (one of the stack's APP_ACTIONS) to the application through the
   * inbound queue; resolves once the gateway accepted it. The answer, if any, arrives as a
   * `message` event (`POST /publish {"connectionId"}`).
   */
  send(action: string, data: unknown, opts: { id?: string } = {}): Promise<void> {
    if (typeof action !== 'string' || action.length === 0 || ['subscribe', 'unsubscribe', 'ping', 'publish', 'presence'].includes(action)) {
      return Promise.reject(new RealtimeError('invalid_action', `send() takes an application action name, got ${JSON.stringify(action)}`));
    }
    return this.request({ action, data }, opts.id).then(() => undefined);
  }

  /**
   * Who is on `topic` now: its users with their connection counts and the totals. Needs the same
   * right as subscribing to it; works whether or not this client is subscribed.
   */
  presence(topic: string): Promise<PresenceInfo> {
    return this.request({ action: 'presence', topic }, undefined) as Promise<PresenceInfo>;
  }

  private request(frame: Record<string, unknown>, id: string | undefined): Promise<unknown> {
    if (this.closed) return Promise.reject(new RealtimeError('closed', 'the client is closed'));
    if (id !== undefined && (typeof id !== 'string' || id.length === 0 || id.length > MAX_IDEMPOTENCY_KEY_LENGTH)) {
      return Promise.reject(new RealtimeError('invalid_idempotency_key', `id must be a string of 1-${MAX_IDEMPOTENCY_KEY_LENGTH} characters`));
    }
    // A generated id still makes the re-send after a reconnect idempotent.
    const rid = id ?? `${this.opts.timers.now().toString(36)}-${Math.floor(this.opts.random() * 2 ** 40).toString(36)}-${this.nextRequestId++}`;
    let text: string;
    try {
      text = JSON.stringify({ ...frame, id: rid });
    } catch (err) {
      return Promise.reject(new RealtimeError('invalid_data', `data cannot be sent as JSON: ${errText(err)}`));
    }
    return new Promise((resolve, reject) => {
      this.requests.add({ id: rid, text, resolve, reject });
      if (this.current?.opened) this.sendText(this.current, text);
    });
  }

  /** Closes the client for good: no reconnect, no more callbacks. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.clearTimer(this.retryTimer);
    this.rotation?.stop();
    for (const conn of [this.current, this.pending, this.rotation?.previous]) if (conn) this.retire(conn, 'client closed');
    this.current = this.pending = this.rotation = undefined;
    for (const e of this.entries.values()) {
      this.clearTimer(e.gapTimer);
      this.stopAwaiting(e);
    }
    this.setState('closed', { reason: 'client closed' });
    this.requests.rejectAll(new RealtimeError('closed', 'the client was closed before the request was answered'));
    const waiters = this.openWaiters;
    this.openWaiters = [];
    for (const w of waiters) w.reject(new RealtimeError('closed', 'the client was closed before it opened'));
  }

  // ---- connection lifecycle -------------------------------------------------------------------

  private async attemptConnect(): Promise<void> {
    if (this.closed || this.pending || this.fetchingToken) return;
    this.fetchingToken = true;
    let token: string | undefined;
    try {
      token = await this.resolveToken();
    } catch (err) {
      this.fetchingToken = false;
      if (this.closed) return;
      this.report(err instanceof RealtimeError ? err : new RealtimeError('token_failed', `token function failed: ${errText(err)}`, undefined, { cause: err }));
      this.attemptFailed('token_failed');
      return;
    }
    this.fetchingToken = false;
    if (this.closed) return;

    const req = buildConnectRequest(this.url, {
      userId: this.opts.userId,
      token,
      tokenIn: this.opts.tokenIn,
      protocol: this.opts.protocol,
      params: this.opts.params,
    });
    let ws: WebSocketLike;
    try {
      ws = req.protocols ? new this.opts.WebSocket(req.url, req.protocols) : new this.opts.WebSocket(req.url);
    } catch (err) {
      this.report(new RealtimeError('connect_failed', `cannot open a WebSocket to ${this.url}: ${errText(err)}`, undefined, { cause: err }));
      this.attemptFailed('connect_failed');
      return;
    }
    const conn: Conn = { id: this.nextConnId++, ws, opened: false, gone: false };
    this.pending = conn;
    conn.connectTimer = this.opts.timers.setTimeout(() => {
      this.report(new RealtimeError('connect_timeout', `the socket did not open within ${this.opts.connectTimeoutMs} ms`));
      this.abandon(conn, 'connect_timeout');
    }, this.opts.connectTimeoutMs);
    ws.onopen = () => this.onOpen(conn);
    ws.onmessage = (ev: { data?: unknown }) => this.onFrame(conn, ev?.data);
    // Browsers give no detail on errors; the close event that always follows carries the code.
    ws.onerror = noop;
    ws.onclose = (ev: { code?: number; reason?: string }) => this.onGone(conn, `closed (code ${ev?.code ?? 'unknown'}${ev?.reason ? `: ${ev.reason}` : ''})`);
  }

  private async resolveToken(): Promise<string | undefined> {
    const src = this.opts.token;
    if (src === undefined) return undefined;
    const token = typeof src === 'function' ? await src() : src;
    if (typeof token !== 'string' || token.length === 0) {
      throw new RealtimeError('token_failed', 'the token (or the token function result) must be a non-empty string');
    }
    if (this.opts.tokenIn === 'protocol' && !isProtocolToken(token)) {
      throw new RealtimeError(
        'token_failed',
        'the token contains characters a Sec-WebSocket-Protocol value cannot carry (RFC 6455); use a base64url token or tokenIn: "query"',
      );
    }
    return token;
  }

  private onOpen(conn: Conn): void {
    if (conn !== this.pending || this.closed) return;
    this.clearTimer(conn.connectTimer);
    this.pending = undefined;
    conn.opened = true;
    this.failures = 0;
    this.retries = 0;
    const previous = this.current?.opened ? this.current : undefined;
    this.current = conn;
    this.schedulePing(conn);
    this.scheduleRotation(conn);
    if (previous) {
      // Rotation: the previous socket keeps delivering until this one is confirmed per topic.
      this.stopTimers(previous);
      this.endRotation('superseded');
      const rotation: Rotation = new Rotation(conn, previous, this.entries.keys(), this.opts.timers, this.opts.rotateOverlapMs, () =>
        this.finishRotation(rotation),
      );
      this.rotation = rotation;
    }
    for (const [topic, e] of this.entries) this.requestTopic(conn, topic, e);
    for (const text of this.requests.frames()) this.sendText(conn, text);
    if (this.rotation?.next === conn && this.rotation.confirmed) this.finishRotation(this.rotation);
    this.setState('open');
    const waiters = this.openWaiters;
    this.openWaiters = [];
    for (const w of waiters) w.resolve();
  }

  /** A socket closed (or was abandoned). Decides what replaces it. */
  private onGone(conn: Conn, reason: string): void {
    if (conn.gone) return;
    conn.gone = true;
    this.stopTimers(conn);
    this.clearTimer(conn.connectTimer);
    if (this.closed) return;
    if (this.rotation && conn === this.rotation.previous) {
      this.rotation.previous = undefined;
      return;
    }
    if (conn === this.pending) {
      this.pending = undefined;
      this.attemptFailed(reason);
      return;
    }
    if (conn !== this.current) return;
    this.current = undefined;
    // The new socket of a rotation died during the overlap: start clean rather than promote the
    // old one back (its timers are stopped); resubscribing with sinceSeq loses nothing.
    this.endRotation('replaced');
    if (this.pending || this.fetchingToken) {
      // A rotation attempt is already under way; it becomes the reconnect.
      this.setState('reconnecting', { reason });
      return;
    }
    this.scheduleAttempt(reason);
  }

  private attemptFailed(reason: string): void {
    if (this.closed) return;
    this.failures += 1;
    if (this.current?.opened) {
      // A rotation attempt failed while the current socket still serves: retry it later.
      this.retryLater(backoffDelay(this.retries++, this.opts.backoff, this.opts.random));
      return;
    }
    if (this.failures >= this.opts.maxAttempts) {
      this.report(new RealtimeError('closed', `giving up after ${this.failures} failed attempts (last: ${reason})`));
      this.close();
      return;
    }
    this.scheduleAttempt(reason);
  }

  private scheduleAttempt(reason: string): void {
    const delayMs = backoffDelay(this.retries, this.opts.backoff, this.opts.random);
    this.retries += 1;
    this.setState('reconnecting', { attempt: this.retries, delayMs, reason });
    this.retryLater(delayMs);
  }

  /** The one reconnect timer: a later attempt replaces any scheduled one. */
  private retryLater(delayMs: number): void {
    this.clearTimer(this.retryTimer);
    this.retryTimer = this.opts.timers.setTimeout(() => {
      this.retryTimer = undefined;
      void this.attemptConnect();
    }, delayMs);
  }

  /** Treats a socket as dead now: a closing handshake on a dead network can take minutes in browsers. */
  private abandon(conn: Conn, reason: string): void {
    this.retire(conn, reason);
    this.onGone(conn, reason);
  }

  /** Closes a socket we no longer want; its close event no longer matters. */
  private retire(conn: Conn, reason: string): void {
    this.stopTimers(conn);
    this.clearTimer(conn.connectTimer);
    const ws = conn.ws;
    // No-ops rather than null: `ws` (Node) throws an unhandled 'error' event when nobody listens.
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = noop;
    try {
      // 1000 is one of the few codes browsers let a script send (plus 3000–4999).
      ws.close(1000, reason.slice(0, 120));
    } catch {
      /* already closing */
    }
  }

  /** The new socket took over every topic (or the overlap ended): the old one goes. */
  private finishRotation(rotation: Rotation): void {
    rotation.stop();
    if (rotation !== this.rotation) return;
    this.rotation = undefined;
    if (rotation.previous) this.retire(rotation.previous, 'rotated');
    this.emitSafely('rotated', [], (err) => this.handlerThrew(err));
  }

  /** Abandons a rotation in its overlap (no `rotated` event): its old socket is closed. */
  private endRotation(reason: string): void {
    const rotation = this.rotation;
    if (!rotation) return;
    this.rotation = undefined;
    rotation.stop();
    if (rotation.previous) this.retire(rotation.previous, reason);
  }

  private confirm(conn: Conn, topic: string): void {
    if (this.rotation?.confirm(conn, topic)) this.finishRotation(this.rotation);
  }

  // ---- timers: ping / pong / rotation / gaps ---------------------------------------------------

  private schedulePing(conn: Conn): void {
    conn.pingTimer = this.opts.timers.setTimeout(() => {
      if (conn.gone) return;
      conn.pingSentAt = this.opts.timers.now();
      this.sendFrame(conn, { action: 'ping' });
      if (conn.pongTimer === undefined) {
        conn.pongTimer = this.opts.timers.setTimeout(() => {
          conn.pongTimer = undefined;
          this.report(new RealtimeError('pong_timeout', `no pong within ${this.opts.pongTimeoutMs} ms; replacing the socket`));
          this.abandon(conn, 'pong_timeout');
        }, this.opts.pongTimeoutMs);
      }
      this.schedulePing(conn);
    }, this.opts.pingIntervalMs);
  }

  private scheduleRotation(conn: Conn): void {
    const after = this.opts.rotateAfterMs - this.opts.random() * this.opts.rotateJitterMs;
    conn.rotateTimer = this.opts.timers.setTimeout(() => {
      if (conn === this.current && !this.closed) void this.attemptConnect();
    }, after);
  }

  private stopTimers(conn: Conn): void {
    this.clearTimer(conn.pingTimer);
    this.clearTimer(conn.pongTimer);
    this.clearTimer(conn.rotateTimer);
    conn.pingTimer = conn.pongTimer = conn.rotateTimer = undefined;
  }

  private checkGap(topic: string, entry: TopicEntry): void {
    const state = entry.collection ?? entry.tracker;
    if (state.takeOverflow()) this.resync(topic, entry, true);
    if (!state.needsResync()) {
      this.clearTimer(entry.gapTimer);
      entry.gapTimer = undefined;
      return;
    }
    if (entry.gapTimer !== undefined) return;
    entry.gapTimer = this.opts.timers.setTimeout(() => {
      entry.gapTimer = undefined;
      if (this.entries.get(topic) !== entry || !(entry.collection ?? entry.tracker).needsResync()) return;
      this.resync(topic, entry);
      this.checkGap(topic, entry);
    }, this.opts.gapTimeoutMs);
  }

  /**
   * Re-requests what is missing: history after the last delivered seq, or a (reset) snapshot.
   * Not while a subscribe of this topic is being answered on the current socket with a replay
   * that progressed within `gapTimeoutMs`: that replay is what fills the gap (live events overtake
   * it), and a second subscribe would only start the same range again. A replay that stalled (it
   * failed part-way, its error frame lost) is re-requested as before. `force`: the reorder
   * buffer overflowed and dropped events the running replay may not cover.
   */
  private resync(topic: string, entry: TopicEntry, force = false): void {
    if (!this.current?.opened) return; // the reconnect resubscribes anyway
    const a = entry.awaiting;
    if (!force && a?.conn === this.current && a.progressAt !== undefined && this.opts.timers.now() - a.progressAt < this.opts.gapTimeoutMs) return;
    this.requestTopic(this.current, topic, entry);
  }

  // ---- subscribe requests: answered, or sent again ---------------------------------------------

  /**
   * Sends `subscribe` (with `sinceSeq` once something was delivered) and waits for its answer: a
   * snapshot, `subscribed`, or an error for the topic. API Gateway gives no delivery guarantee
   * for a route's reply (a Lambda timeout, a failed PostToConnection): without an answer the
   * topic would stay silent until its next change, forever on a quiet topic. So an unanswered
   * subscribe is sent again after `subscribeTimeoutMs` plus a backoff delay; the server's
   * subscribe is idempotent and duplicates are dropped by seq.
   */
  private requestTopic(conn: Conn, topic: string, entry: TopicEntry, attempt = 0): void {
    this.stopAwaiting(entry);
    // A collection resumes by state: its subscribe has no sinceSeq and answers every member again.
    entry.collection?.begin();
    const since = entry.collection ? undefined : entry.tracker.lastSeq;
    this.sendFrame(conn, since === undefined ? { action: 'subscribe', topic } : { action: 'subscribe', topic, sinceSeq: since });
    entry.awaiting = { conn, attempt };
    this.armAwaiting(topic, entry);
  }

  /** (Re)starts the wait for the answer; a replay in progress restarts it with every frame. */
  private armAwaiting(topic: string, entry: TopicEntry): void {
    const a = entry.awaiting;
    if (!a) return;
    this.clearTimer(a.timer);
    a.timer = this.opts.timers.setTimeout(() => {
      a.timer = undefined;
      this.retrySubscribe(topic, entry, `no answer within ${this.opts.subscribeTimeoutMs} ms`);
    }, this.opts.subscribeTimeoutMs);
  }

  private retrySubscribe(topic: string, entry: TopicEntry, why: string): void {
    const a = entry.awaiting;
    if (!a || this.entries.get(topic) !== entry || a.conn.gone || a.conn !== this.current) return;
    const delay = backoffDelay(a.attempt, this.opts.backoff, this.opts.random);
    this.report(new RealtimeError('subscribe_retry', `subscribe "${topic}": ${why}; sending it again in ${delay} ms`, topic));
    this.clearTimer(a.timer);
    a.timer = this.opts.timers.setTimeout(() => {
      a.timer = undefined;
      if (this.entries.get(topic) !== entry || entry.awaiting !== a || a.conn.gone || a.conn !== this.current) return;
      this.requestTopic(a.conn, topic, entry, a.attempt + 1);
    }, delay);
  }

  private stopAwaiting(entry: TopicEntry): void {
    if (!entry.awaiting) return;
    this.clearTimer(entry.awaiting.timer);
    entry.awaiting = undefined;
  }

  // ---- frames --------------------------------------------------------------------------------

  private onFrame(conn: Conn, data: unknown): void {
    if (this.closed) return;
    const text = frameText(data);
    const msg: ServerMessage | undefined = text === undefined ? undefined : parseServerMessage(text);
    if (!msg) {
      // The frame is not quoted: it may carry another party's private data.
      const what = text === undefined ? 'a binary frame' : `a ${text.length}-character text frame`;
      this.report(new RealtimeError('protocol_error', `the server sent ${what} the client does not understand`));
      return;
    }
    switch (msg.type) {
      case 'pong': {
        this.clearTimer(conn.pongTimer);
        conn.pongTimer = undefined;
        const rtt = conn.pingSentAt === undefined ? 0 : this.opts.timers.now() - conn.pingSentAt;
        this.emitSafely('pong', [rtt], (err) => this.handlerThrew(err));
        return;
      }
      case 'message': {
        const info = { ...(msg.ts !== undefined ? { ts: msg.ts } : {}), receivedAt: this.opts.timers.now() };
        this.emitSafely('message', [msg.data, info], (err) => this.handlerThrew(err));
        return;
      }
      case 'published':
        this.requests.settle(msg.id, { value: { seq: msg.seq } });
        return;
      case 'accepted':
        this.requests.settle(msg.id, { value: undefined });
        return;
      case 'error': {
        const err = new RealtimeError(msg.code, msg.message, msg.topic, undefined, msg.retryAfterMs);
        // The answer to a publish or an application action: it fails that call, not a subscription.
        if (msg.action !== 'subscribe' && msg.action !== 'unsubscribe' && this.requests.settle(msg.id, { error: err })) return;
        const entry = msg.topic ? this.entries.get(msg.topic) : undefined;
        if (msg.code === 'not_connected') {
          // The server no longer knows this socket: nothing will reach it again. Replace it; the
          // new one resubscribes every topic with sinceSeq.
          this.report(err);
          if (conn === this.current || conn === this.pending) this.abandon(conn, 'not_connected');
          return;
        }
        if (entry && RETRYABLE_CODES.has(msg.code) && entry.awaiting?.conn === conn) {
          this.retrySubscribe(msg.topic!, entry, `the server answered ${msg.code}`);
          return;
        }
        if (entry && entry.awaiting?.conn === conn) this.stopAwaiting(entry);
        if (msg.topic) this.confirm(conn, msg.topic);
        if (entry?.onError) this.callSafely(() => entry.onError!(err));
        this.report(err);
        return;
      }
      case 'unsubscribed':
        return;
      case 'presence':
        this.requests.settle(msg.id, {
          value: { topic: msg.topic, users: msg.users, count: msg.count, ...(msg.truncated ? { truncated: true } : {}) } satisfies PresenceInfo,
        });
        return;
      case 'join':
      case 'leave':
        this.emitSafely(msg.type, [{ topic: msg.topic, userId: msg.userId }], (err) => this.handlerThrew(err));
        return;
      default: {
        if ('items' in msg) {
          this.onCollectionSnapshot(conn, msg);
          return;
        }
        // A member's change also goes to its collection's subscription; the server sends it once
        // even when both are subscribed, and each subscription gets it.
        const pattern = msg.type === 'event' ? collectionOf(msg.topic) : undefined;
        const owner = pattern === undefined ? undefined : this.entries.get(collectionPattern(pattern));
        if (owner?.collection && msg.type === 'event') {
          for (const d of owner.collection.acceptEvent(msg)) this.deliver(owner, d);
          if (this.entries.get(owner.collection.pattern) === owner) this.checkGap(owner.collection.pattern, owner);
        }
        const entry = this.entries.get(msg.topic);
        if (!entry) return; // unsubscribed meanwhile, or a frame for a topic we never asked for
        if (entry.awaiting?.conn === conn) {
          // snapshot / subscribed answer the subscribe; an event may be part of its replay.
          if (msg.type === 'event') {
            entry.awaiting.progressAt = this.opts.timers.now();
            this.armAwaiting(msg.topic, entry);
          }
          else this.stopAwaiting(entry);
        }
        this.confirm(conn, msg.topic);
        for (const d of entry.tracker.accept(msg)) this.deliver(entry, d);
        if (this.entries.get(msg.topic) === entry) this.checkGap(msg.topic, entry);
      }
    }
  }

  /** A frame of a collection snapshot: `more` frames keep the subscribe's wait alive, the last answers it. */
  private onCollectionSnapshot(conn: Conn, msg: CollectionSnapshotMessage): void {
    const entry = this.entries.get(msg.topic);
    if (!entry?.collection) return;
    if (entry.awaiting?.conn === conn) {
      if (msg.more) this.armAwaiting(msg.topic, entry);
      else this.stopAwaiting(entry);
    }
    const out = entry.collection.acceptSnapshot(msg);
    if (!out) return;
    this.confirm(conn, msg.topic);
    const members: Record<string, CollectionMember> = {};
    for (const d of out.members) {
      members[d.topic] = { data: d.data, seq: d.seq, ...(d.ts !== undefined ? { ts: d.ts } : {}), ...(d.truncated ? { truncated: true as const } : {}) };
    }
    const info = { topic: msg.topic, truncated: out.truncated };
    if (entry.onCollectionSnapshot) this.callSafely(() => entry.onCollectionSnapshot!(members, info));
    // Each member's state also reaches rt.on('snapshot'), as a topic's would.
    for (const d of out.members) this.deliver({ ...entry, onSnapshot: undefined }, d);
    for (const d of out.events) this.deliver(entry, d);
    if (this.entries.get(msg.topic) === entry) this.checkGap(msg.topic, entry);
  }

  private deliver(entry: TopicEntry, d: Delivery): void {
    if (d.kind === 'snapshot') {
      const info = { topic: d.topic, seq: d.seq, ts: d.ts, reset: d.reset, ...(d.truncated ? { truncated: true as const } : {}) };
      if (entry.onSnapshot) this.callSafely(() => entry.onSnapshot!(d.data, info));
      this.emitSafely('snapshot', [d.data, info], (err) => this.handlerThrew(err));
    } else {
      const info = {
        topic: d.topic,
        seq: d.seq,
        ts: d.ts,
        latencyMs: d.latencyMs,
        receivedAt: this.opts.timers.now(),
        ...(d.truncated ? { truncated: true as const } : {}),
      };
      if (entry.onEvent) this.callSafely(() => entry.onEvent!(d.data, info));
      this.emitSafely('event', [d.data, info], (err) => this.handlerThrew(err));
    }
  }

  // ---- helpers -------------------------------------------------------------------------------

  private sendFrame(conn: Conn, msg: ClientMessage): void {
    this.sendText(conn, JSON.stringify(msg));
  }

  private sendText(conn: Conn, text: string): void {
    if (conn.gone || conn.ws.readyState !== OPEN) return; // the next open resubscribes and re-sends
    try {
      conn.ws.send(text);
    } catch (err) {
      this.report(new RealtimeError('send_failed', `send failed: ${errText(err)}`, undefined, { cause: err }));
    }
  }

  private setState(state: ConnectionState, extra: Omit<StateChange, 'state' | 'previous'> = {}): void {
    const previous = this.currentState;
    if (previous === 'closed') return;
    this.currentState = state;
    this.emitSafely('state', [{ state, previous, ...extra }], (err) => this.handlerThrew(err));
  }

  private report(err: RealtimeError): void {
    // An application without an error listener still has a working client; errors are advisory.
    this.emitSafely('error', [err], () => {});
  }

  private callSafely(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.handlerThrew(err);
    }
  }

  /** An application callback threw: report it, never let it break the state machine. */
  private handlerThrew(err: unknown): void {
    this.report(new RealtimeError('handler_error', `an application callback threw: ${errText(err)}`, undefined, { cause: err }));
  }

  private clearTimer(h: unknown): void {
    if (h !== undefined) this.opts.timers.clearTimeout(h);
  }
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Opens a client; it connects at once and keeps itself connected until `close()`. */
export function connect(url: string, options: ConnectOptions = {}): RealtimeClient {
  return new RealtimeClient(url, options);
}
