import { WORST_CASE_NUMBER } from './limits';

/**
 * Server → client frames (JSON text). Built by string concatenation rather than JSON.stringify of
 * a fresh object because fan-out frames one record for every subscriber: the part that does not
 * vary (`{"type":"event",…,"latencyMs":`) is serialised once per record and only the latency is
 * appended per delivery.
 */

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

/** The constant part of an event frame; `finish(prefix, latencyMs)` completes it. */
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

/** What `finishEvent` appends at most: the widest latency and the closing brace. */
const EVENT_TAIL_BYTES = String(WORST_CASE_NUMBER).length + 1;

/** True when every frame finished from `prefix` stays within `maxBytes` (UTF-8, as API Gateway counts). */
export function prefixFits(prefix: string, maxBytes: number): boolean {
  return Buffer.byteLength(prefix, 'utf8') + EVENT_TAIL_BYTES <= maxBytes;
}

/** An event frame prefix that fits `maxBytes`: the full event, or its truncated placeholder. */
export function deliverablePrefix(e: EventFields, maxBytes: number, extra?: { replay?: boolean }): { prefix: string; truncated: boolean } {
  const full = eventPrefix(e, extra);
  if (prefixFits(full, maxBytes)) return { prefix: full, truncated: false };
  return { prefix: eventPrefix(e, { ...extra, truncated: true }), truncated: true };
}

/** A reply could not be posted because API Gateway found it too large (413). */
export class FrameTooLargeError extends Error {
  constructor(connectionId: string) {
    super(`a frame to ${connectionId} exceeded the WebSocket message limit`);
    this.name = 'FrameTooLargeError';
  }
}

export function finishEvent(prefix: string, latencyMs: number): string {
  return prefix + Math.max(0, Math.round(latencyMs)) + '}';
}

export function eventFrame(e: EventFields, latencyMs: number, extra?: FrameExtra): string {
  return finishEvent(eventPrefix(e, extra), latencyMs);
}

/**
 * Bytes of the largest event frame `data` on `topic` can ever produce (seq, ts and latencyMs at
 * their widest). Publish refuses data above the limit up front, so a payload is never accepted
 * and then silently dropped by API Gateway's 128 KB message limit at fan-out.
 */
export function worstCaseEventBytes(topic: string, data: unknown): number {
  const f = eventFrame({ topic, seq: WORST_CASE_NUMBER, data, ts: WORST_CASE_NUMBER }, WORST_CASE_NUMBER, { replay: true });
  return Buffer.byteLength(f, 'utf8');
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

export function messageWorstCaseBytes(data: unknown): number {
  return Buffer.byteLength(messageFrame(data, WORST_CASE_NUMBER), 'utf8');
}

export function errorFrame(code: string, message: string, extra?: { action?: string; topic?: string }): string {
  return JSON.stringify({ type: 'error', code, message, ...(extra ?? {}) });
}

function jsonOrNull(v: unknown): string {
  return v === undefined ? 'null' : JSON.stringify(v);
}
