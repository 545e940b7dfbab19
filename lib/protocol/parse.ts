import type { CollectionItem, CollectionSnapshotMessage, ServerMessage } from './frames';

/**
 * The client's parser of server frames: tolerant, because the SDK must keep working when the
 * server adds fields, and must never throw on a frame it does not understand.
 */

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isSeq = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const optNum = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

const optId = (v: Record<string, unknown>): { id?: string } => (typeof v.id === 'string' ? { id: v.id } : {});

/** `data`, or for a truncated placeholder (item over the 128 KB message limit) null and the flag. */
function dataOf(v: Record<string, unknown>): { data: unknown; truncated?: true } {
  return v.truncated === true ? { data: null, truncated: true } : { data: v.data ?? null };
}

/** A collection snapshot (`battery:*`); a member without a topic or a valid seq spoils the frame. */
function collectionSnapshot(topic: string, v: Record<string, unknown>): CollectionSnapshotMessage | undefined {
  const items: CollectionItem[] = [];
  for (const it of v.items as unknown[]) {
    if (!isObj(it) || typeof it.topic !== 'string' || !isSeq(it.seq)) return undefined;
    items.push({ topic: it.topic, seq: it.seq, ...dataOf(it), ts: optNum(it.ts) });
  }
  return { type: 'snapshot', topic, items, ...(v.more === true ? { more: true } : {}), ...(v.truncated === true ? { truncated: true } : {}) };
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
      if (topic && Array.isArray(v.items)) return collectionSnapshot(topic, v);
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
      return {
        type: 'event',
        topic,
        seq: v.seq,
        ...dataOf(v),
        ts: optNum(v.ts),
        latencyMs: optNum(v.latencyMs),
        ...(v.replay === true ? { replay: true } : {}),
      };
    case 'subscribed':
      if (!topic) return undefined;
      return { type: 'subscribed', topic, seq: isSeq(v.seq) ? v.seq : undefined, ...(isSeq(v.replayed) ? { replayed: v.replayed } : {}) };
    case 'unsubscribed':
      if (!topic) return undefined;
      return { type: 'unsubscribed', topic };
    case 'pong':
      return { type: 'pong', ts: optNum(v.ts) };
    case 'message':
      return { type: 'message', data: v.data ?? null, ts: optNum(v.ts) };
    case 'published':
      if (!topic || !isSeq(v.seq)) return undefined;
      return { type: 'published', topic, seq: v.seq, ...optId(v) };
    case 'accepted':
      if (typeof v.action !== 'string') return undefined;
      return { type: 'accepted', action: v.action, ...optId(v) };
    // ---- presence ----
    case 'presence': {
      if (!topic || !Array.isArray(v.users) || !isObj(v.count)) return undefined;
      const users = v.users.filter(
        (u): u is { userId: string; connections: number } => isObj(u) && typeof u.userId === 'string' && isSeq(u.connections),
      );
      const count = { users: isSeq(v.count.users) ? v.count.users : users.length, connections: isSeq(v.count.connections) ? v.count.connections : 0 };
      return {
        type: 'presence',
        topic,
        users: users.map((u) => ({ userId: u.userId, connections: u.connections })),
        count,
        ...(v.truncated === true ? { truncated: true } : {}),
        ...optId(v),
      };
    }
    case 'join':
    case 'leave':
      if (!topic || typeof v.userId !== 'string') return undefined;
      return { type: v.type, topic, userId: v.userId };
    // ---- end presence ----
    case 'error': {
      const retryAfterMs = optNum(v.retryAfterMs);
      return {
        type: 'error',
        code: typeof v.code === 'string' ? v.code : 'unknown_error',
        message: typeof v.message === 'string' ? v.message : '',
        ...(topic ? { topic } : {}),
        ...(typeof v.action === 'string' ? { action: v.action } : {}),
        ...optId(v),
        ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      };
    }
    default:
      return undefined;
  }
}
