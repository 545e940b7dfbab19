/**
 * The subscriber wire protocol (DESIGN §3, docs/subscriber-protocol.md): JSON text frames, routed
 * by API Gateway on `$request.body.action`. Types only plus a tolerant parser: the SDK must keep
 * working when the server adds fields, and must never throw on a frame it does not understand.
 */

/** Client → server. */
export type ClientMessage =
  | { action: 'subscribe'; topic: string; sinceSeq?: number }
  | { action: 'unsubscribe'; topic: string }
  | { action: 'ping' };

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
}

/** Answer to a `sinceSeq` subscribe when nothing was missed; `seq` is the item's current seq. */
export interface SubscribedMessage {
  type: 'subscribed';
  topic: string;
  seq?: number;
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

export type ServerMessage = SnapshotMessage | EventMessage | SubscribedMessage | UnsubscribedMessage | PongMessage | ErrorMessage | UserMessage;

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isSeq = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const optNum = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** `data`, or for a truncated placeholder (item over the 128 KB message limit) null and the flag. */
function dataOf(v: Record<string, unknown>): { data: unknown; truncated?: true } {
  return v.truncated === true ? { data: null, truncated: true } : { data: v.data ?? null };
}

/**
 * Parses one text frame. Returns undefined for anything that is not a well-formed server message
 * (the caller reports it as a protocol error): a frame without a valid `seq` must never reach the
 * dedupe logic, where it would corrupt the resume position.
 */
export function parseServerMessage(text: string): ServerMessage | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isObj(v) || typeof v.type !== 'string') return undefined;
  const topic = typeof v.topic === 'string' ? v.topic : undefined;
  switch (v.type) {
    case 'snapshot':
      if (!topic || !isSeq(v.seq)) return undefined;
      return {
        type: 'snapshot',
        topic,
        seq: v.seq,
        ...dataOf(v),
        ts: optNum(v.ts),
        reset: v.reset === true,
      };
    case 'event':
      if (!topic || !isSeq(v.seq)) return undefined;
      return { type: 'event', topic, seq: v.seq, ...dataOf(v), ts: optNum(v.ts), latencyMs: optNum(v.latencyMs) };
    case 'subscribed':
      if (!topic) return undefined;
      return { type: 'subscribed', topic, seq: isSeq(v.seq) ? v.seq : undefined };
    case 'unsubscribed':
      if (!topic) return undefined;
      return { type: 'unsubscribed', topic };
    case 'pong':
      return { type: 'pong', ts: optNum(v.ts) };
    case 'message':
      return { type: 'message', data: v.data ?? null, ts: optNum(v.ts) };
    case 'error':
      return {
        type: 'error',
        code: typeof v.code === 'string' ? v.code : 'unknown_error',
        message: typeof v.message === 'string' ? v.message : '',
        ...(topic ? { topic } : {}),
      };
    default:
      return undefined;
  }
}
