import type { BackoffOptions } from './backoff';
import type { RealtimeError } from './errors';
import type { Timers } from './timers';
import type { TokenTransport, WebSocketConstructor } from './transport';

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** A token, or a function returning one (called on every connect, reconnect and rotation: token refresh). */
export type TokenSource = string | (() => string | Promise<string>);

export interface SnapshotInfo {
  topic: string;
  seq: number;
  ts?: number;
  /** The server could not replay the gap (history expired) or its counter restarted: replace your state. */
  reset: boolean;
  /**
   * Present (true) when the state was too large for one WebSocket message (API Gateway's 128 KB
   * limit): `data` is null; fetch the state another way if you need it.
   */
  truncated?: true;
}

export interface EventInfo {
  topic: string;
  seq: number;
  /** Source timestamp (epoch ms). */
  ts?: number;
  /** Server-measured delivery latency (delivery time − source timestamp). */
  latencyMs?: number;
  /** Local receive time (epoch ms, from the client's clock). */
  receivedAt: number;
  /**
   * Present (true) when the change was too large for one WebSocket message (API Gateway's 128 KB
   * limit): `data` is null. The seq counts like any other (no gap, no resync).
   */
  truncated?: true;
}

export interface MessageInfo {
  /** Server time the message was sent (epoch ms). */
  ts?: number;
  /** Local receive time (epoch ms, from the client's clock). */
  receivedAt: number;
}

export type SnapshotHandler<T = unknown> = (data: T, info: SnapshotInfo) => void;

/** One member's state in a collection snapshot (`battery:*`). */
export interface CollectionMember<T = unknown> {
  data: T;
  seq: number;
  ts?: number;
  /** The member's state was too large for a WebSocket message: `data` is null, `seq` is real. */
  truncated?: true;
}

export interface CollectionSnapshotInfo {
  /** The pattern, e.g. `battery:*`. */
  topic: string;
  /** The collection has more members than the server's cap: only the first (in topic order) are here. */
  truncated: boolean;
}

/**
 * A collection's state by member topic. The first call holds every member; after a re-subscribe
 * (reconnect, gap) only the members whose seq moved.
 */
export type CollectionSnapshotHandler<T = unknown> = (members: Record<string, CollectionMember<T>>, info: CollectionSnapshotInfo) => void;
export type EventHandler<T = unknown> = (data: T, info: EventInfo) => void;

export interface StateChange {
  state: ConnectionState;
  previous: ConnectionState;
  /** Reconnect attempt number (1-based) while reconnecting. */
  attempt?: number;
  /** Delay before the next attempt, when one is scheduled. */
  delayMs?: number;
  /** Why the socket went away, when it did. */
  reason?: string;
}

export interface ClientEvents {
  state: (change: StateChange) => void;
  snapshot: (data: unknown, info: SnapshotInfo) => void;
  event: (data: unknown, info: EventInfo) => void;
  error: (err: RealtimeError) => void;
  /**
   * A message for this connection (`POST /publish {"userId"}` to its user, or `{"connectionId"}`
   * to this socket, e.g. an application's reply to `send()`): not tied to a topic, no seq.
   */
  message: (data: unknown, info: MessageInfo) => void;
  /** Round trip of the last ping, in ms. */
  pong: (rttMs: number) => void;
  /** A proactive reconnect (before API Gateway's 2-hour limit) completed. */
  rotated: () => void;
  /** Presence: a user's first connection subscribed to a topic this client is on (PRESENCE_TOPICS only). */
  join: (change: PresenceChange) => void;
  /** Presence: a user's last connection left a topic this client is on. At least once, like join. */
  leave: (change: PresenceChange) => void;
}

/** A join or leave on a presence topic. */
export interface PresenceChange {
  topic: string;
  userId: string;
}

/** `rt.presence(topic)`: the users subscribed to the topic now (live connections only). */
export interface PresenceInfo {
  topic: string;
  users: { userId: string; connections: number }[];
  count: { users: number; connections: number };
  /** The list was cut at the stack's size limit; `count` is complete. */
  truncated?: true;
}

export interface ConnectOptions {
  /** Auth mode `jwt`: the token or a (sync/async) function returning a fresh one on every connect. */
  token?: TokenSource;
  /** Auth mode `none` (development only): sent as `?userId=`. */
  userId?: string;
  /** Topics to subscribe at once; their data reaches the client-level `snapshot`/`event` listeners. */
  topics?: readonly string[];
  /** Extra query parameters (e.g. an item key: `{ vehicleId: '3' }` subscribes `vehicleId:3` at connect). */
  params?: Readonly<Record<string, string>>;
  /** Default `protocol` (Sec-WebSocket-Protocol: `bearer, <token>`); `query` sends `?token=`. */
  tokenIn?: TokenTransport;
  /** The subprotocol offered before the token and echoed by the server. Default `bearer`. */
  protocol?: string;
  /** The WebSocket class. Default `globalThis.WebSocket`; on Node 20 pass `(await import('ws')).WebSocket`. */
  WebSocket?: WebSocketConstructor;
  backoff?: BackoffOptions;
  /** Give up after this many consecutive failed attempts (state `closed`). Default: never. */
  maxAttempts?: number;
  /** An attempt that has not opened by then is abandoned. Default 10 s. */
  connectTimeoutMs?: number;
  /** Application ping period; must stay below API Gateway's 10-minute idle timeout. Default 5 min. */
  pingIntervalMs?: number;
  /** No pong within this after a ping → the socket is treated as dead and replaced. Default 20 s. */
  pongTimeoutMs?: number;
  /** Proactive reconnect after this long; must stay below API Gateway's 2-hour maximum. Default 115 min. */
  rotateAfterMs?: number;
  /** Up to this much is subtracted at random from `rotateAfterMs`, so clients do not rotate together. Default 5 min. */
  rotateJitterMs?: number;
  /** During a rotation the old socket is closed at the latest this long after the new one opened. Default 10 s. */
  rotateOverlapMs?: number;
  /**
   * A subscribe not answered (snapshot, `subscribed` or error) within this long is sent again, with
   * backoff (the reply can be lost: a Lambda timeout, a dropped PostToConnection). Any frame of the
   * topic's replay restarts the wait. Default 10 s.
   */
  subscribeTimeoutMs?: number;
  /** A gap in a topic's seq still open after this long is re-requested with `sinceSeq`. Default 2 s. */
  gapTimeoutMs?: number;
  /** Events held per topic while a gap is open. Default 1000. */
  maxBuffered?: number;
  timers?: Timers;
  random?: () => number;
}

export interface SubscribeOptions {
  /** Errors the server reports for this topic (e.g. `forbidden`). */
  onError?: (err: RealtimeError) => void;
}

export interface Subscription {
  readonly topic: string;
  unsubscribe(): void;
}
