/**
 * The subscriber wire protocol (DESIGN §3, docs/subscriber-protocol.md): JSON text frames. API
 * Gateway routes client frames on `$request.body.action`. This module is the one definition of
 * every frame both sides exchange: the types, and the builders the server uses. Dependency-free
 * and browser-safe (no Buffer): the client SDK imports it.
 *
 * Server frames are built by string concatenation rather than JSON.stringify of a fresh object
 * where fan-out frames one record for every subscriber: the part that does not vary
 * (`{"type":"event",…,"latencyMs":`) is serialised once per record and only the latency is
 * appended per delivery.
 */

// ---- client → server ----

export type ClientFrame =
  | { readonly action: 'subscribe'; readonly topic: string; readonly sinceSeq?: number }
  | { readonly action: 'unsubscribe'; readonly topic: string }
  | { readonly action: 'ping' }
  /** Publish from the socket: the same write as `POST /publish`; `id` makes it idempotent. */
  | { readonly action: 'publish'; readonly topic: string; readonly data: unknown; readonly id?: string }
  /** Presence: who is subscribed to the topic now. */
  | { readonly action: 'presence'; readonly topic: string; readonly id?: string };

/** An application action (one of the stack's `APP_ACTIONS`), put on the inbound queue. */
export interface AppActionFrame {
  readonly action: string;
  readonly data: unknown;
  readonly id?: string;
}

/** The built-in actions; any other action must be one of the stack's application actions. */
export const ACTIONS = ['subscribe', 'unsubscribe', 'ping', 'publish', 'presence'] as const;
export type BuiltInAction = (typeof ACTIONS)[number];

/** Application action names: `chat.ask`, `order_track`, … (never a built-in action). */
export const APP_ACTION_PATTERN = /^[A-Za-z][A-Za-z0-9_.:-]{0,63}$/;

// ---- server → client ----

export interface SnapshotMessage {
  type: 'snapshot';
  topic: string;
  seq: number;
  data: unknown;
  ts?: number;
  /** History no longer covers the requested gap: this snapshot replaces the client's state. */
  reset?: boolean;
  /** The state was too large for one WebSocket message: `data` is null, `seq` is real. */
  truncated?: boolean;
}

/** One member in a collection snapshot; `truncated`: its state was too large for a message. */
export interface CollectionItem {
  topic: string;
  seq: number;
  data: unknown;
  ts?: number;
  truncated?: boolean;
}

/**
 * Answer to a collection subscribe (`battery:*`): the current state of its members, over one or
 * more frames (each within API Gateway's 128 KB message limit); every frame but the last carries
 * `more`. `truncated` on the last frame: the collection has more members than the stack's cap
 * and only the first (in topic order) were sent.
 */
export interface CollectionSnapshotMessage {
  type: 'snapshot';
  topic: string;
  items: CollectionItem[];
  more?: boolean;
  truncated?: boolean;
}

export interface EventMessage {
  type: 'event';
  topic: string;
  seq: number;
  data: unknown;
  ts?: number;
  /** Delivery time minus source timestamp, measured by the server (seed 003's `latency_ms`). */
  latencyMs?: number;
  /** The change was too large for one WebSocket message: `data` is null, `seq` still counts. */
  truncated?: boolean;
  /** Sent from history in answer to a `sinceSeq` subscribe, not live from fan-out. */
  replay?: boolean;
}

/** Answer to a subscribe; `seq` is the item's current seq, `replayed` the history events sent before it. */
export interface SubscribedMessage {
  type: 'subscribed';
  topic: string;
  seq?: number;
  replayed?: number;
}

export interface UnsubscribedMessage {
  type: 'unsubscribed';
  topic: string;
}

export interface PongMessage {
  type: 'pong';
  ts?: number;
}

export interface ErrorMessage {
  type: 'error';
  code: string;
  message: string;
  topic?: string;
  action?: string;
  /** The `id` of the publish or application action this error answers. */
  id?: string;
  /** `rate_limited`: when the connection's bucket holds a token again. */
  retryAfterMs?: number;
}

/** Answer to a socket publish: the seq it was written at (the first seq, for a repeated `id`). */
export interface PublishedMessage {
  type: 'published';
  topic: string;
  seq: number;
  id?: string;
}

/** Answer to an application action: it is on the inbound queue. */
export interface AcceptedMessage {
  type: 'accepted';
  action: string;
  id?: string;
}

/**
 * A message for this connection's user, not tied to a topic (`POST /publish {"userId"}`): no seq,
 * no ordering or dedupe, delivered to the application as it arrives.
 */
export interface UserMessage {
  type: 'message';
  data: unknown;
  ts?: number;
}

// ---- presence ----

/** One user on a topic and how many of its connections are subscribed. */
export interface PresenceMember {
  userId: string;
  connections: number;
}

/** Answer to `{"action":"presence","topic"}` (and the body of `GET /presence?topic=`): live subscribers only. */
export interface PresenceMessage {
  type: 'presence';
  topic: string;
  users: PresenceMember[];
  /** Totals over every live subscriber, also when the list is cut. */
  count: { users: number; connections: number };
  /** The list stops at the stack's PRESENCE_LIST_LIMIT (or the message limit); `count` is complete. */
  truncated?: boolean;
  /** The `id` of the presence request this answers (the SDK settles that call). */
  id?: string;
}

/** A user's first connection subscribed to a presence topic (join), or its last one left (leave). */
export interface PresenceChangeMessage {
  type: 'join' | 'leave';
  topic: string;
  userId: string;
}

// ---- end presence ----

export type ServerMessage =
  | PresenceMessage
  | PresenceChangeMessage
  | SnapshotMessage
  | CollectionSnapshotMessage
  | EventMessage
  | SubscribedMessage
  | UnsubscribedMessage
  | PongMessage
  | ErrorMessage
  | UserMessage
  | PublishedMessage
  | AcceptedMessage;

// ---- builders (server side) ----

export interface EventFields {
  readonly topic: string;
  readonly seq: number;
  readonly data: unknown;
  readonly ts: number;
}

/**
 * Placeholders for items too large to deliver. API Gateway refuses a message over 128 KB (413),
 * but an item can hold up to 400 KB (a direct table write). Dropping that seq would leave every
 * subscriber with a gap it can never fill (the replay of that seq is just as large), so the seq
 * is delivered without its data: `"data":null,"truncated":true`. Seqs stay contiguous and the
 * client learns that it has to fetch that state some other way.
 */
export interface FrameExtra {
  readonly replay?: boolean;
  readonly truncated?: boolean;
}

/** The constant part of an event frame; `finishEvent(prefix, latencyMs)` completes it. */
export function eventPrefix(e: EventFields, extra?: FrameExtra): string {
  return (
    '{"type":"event","topic":' +
    JSON.stringify(e.topic) +
    ',"seq":' +
    e.seq +
    ',"data":' +
    (extra?.truncated ? 'null' : jsonOrNull(e.data)) +
    ',"ts":' +
    e.ts +
    (extra?.truncated ? ',"truncated":true' : '') +
    (extra?.replay ? ',"replay":true' : '') +
    ',"latencyMs":'
  );
}

export function finishEvent(prefix: string, latencyMs: number): string {
  return prefix + Math.max(0, Math.round(latencyMs)) + '}';
}

export function eventFrame(e: EventFields, latencyMs: number, extra?: FrameExtra): string {
  return finishEvent(eventPrefix(e, extra), latencyMs);
}

export function snapshotFrame(s: { topic: string; seq: number; data: unknown; ts?: number; reset?: boolean; truncated?: boolean }): string {
  return JSON.stringify({
    type: 'snapshot',
    topic: s.topic,
    seq: s.seq,
    data: s.truncated ? null : (s.data ?? null),
    ...(s.ts !== undefined ? { ts: s.ts } : {}),
    ...(s.truncated ? { truncated: true } : {}),
    ...(s.reset ? { reset: true } : {}),
  });
}

/** One member of a collection snapshot (placed in `items`); `truncated` drops its data. */
export function collectionItemJson(item: EventFields, truncated = false): string {
  return (
    '{"topic":' +
    JSON.stringify(item.topic) +
    ',"seq":' +
    item.seq +
    ',"data":' +
    (truncated ? 'null' : jsonOrNull(item.data)) +
    ',"ts":' +
    item.ts +
    (truncated ? ',"truncated":true' : '') +
    '}'
  );
}

/** The start of a collection snapshot frame; member JSONs, then `collectionSnapshotTail`, complete it. */
export function collectionSnapshotHead(pattern: string): string {
  return '{"type":"snapshot","topic":' + JSON.stringify(pattern) + ',"items":[';
}

export function collectionSnapshotTail(flags: { more?: boolean; truncated?: boolean }): string {
  return ']' + (flags.more ? ',"more":true' : '') + (flags.truncated ? ',"truncated":true' : '') + '}';
}

/** A collection snapshot frame of `itemJsons` (each from collectionItemJson). */
export function collectionSnapshotFrame(pattern: string, itemJsons: readonly string[], flags: { more?: boolean; truncated?: boolean } = {}): string {
  return collectionSnapshotHead(pattern) + itemJsons.join(',') + collectionSnapshotTail(flags);
}

export function subscribedFrame(topic: string, seq: number, replayed: number): string {
  return JSON.stringify({ type: 'subscribed', topic, seq, replayed });
}

export function unsubscribedFrame(topic: string): string {
  return JSON.stringify({ type: 'unsubscribed', topic });
}

export function pongFrame(ts: number): string {
  return JSON.stringify({ type: 'pong', ts });
}

/** Send-to-user payload (seed 001): not tied to a topic, so it has no seq. */
export function messageFrame(data: unknown, ts: number): string {
  return '{"type":"message","data":' + jsonOrNull(data) + ',"ts":' + ts + '}';
}

export function publishedFrame(topic: string, seq: number, id?: string): string {
  return JSON.stringify({ type: 'published', topic, seq, ...(id !== undefined ? { id } : {}) });
}

export function acceptedFrame(action: string, id?: string): string {
  return JSON.stringify({ type: 'accepted', action, ...(id !== undefined ? { id } : {}) });
}

export function errorFrame(code: string, message: string, extra?: { action?: string; topic?: string; id?: string; retryAfterMs?: number }): string {
  return JSON.stringify({ type: 'error', code, message, ...(extra ?? {}) });
}

// ---- presence builders ----

export function presenceFrame(p: Omit<PresenceMessage, 'type'>): string {
  return JSON.stringify({
    type: 'presence',
    topic: p.topic,
    users: p.users,
    count: p.count,
    ...(p.truncated ? { truncated: true } : {}),
    ...(p.id !== undefined ? { id: p.id } : {}),
  });
}

export function presenceChangeFrame(type: 'join' | 'leave', topic: string, userId: string): string {
  return JSON.stringify({ type, topic, userId });
}

// ---- end presence builders ----

function jsonOrNull(v: unknown): string {
  return v === undefined ? 'null' : JSON.stringify(v);
}
