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

/** The constant part of an event frame; `finish(prefix, latencyMs)` completes it. */
export function eventPrefix(e: EventFields, extra?: { replay?: boolean }): string {
  return (
    '{"type":"event","topic":' +
    JSON.stringify(e.topic) +
    ',"seq":' +
    e.seq +
    ',"data":' +
    jsonOrNull(e.data) +
    ',"ts":' +
    e.ts +
    (extra?.replay ? ',"replay":true' : '') +
    ',"latencyMs":'
  );
}

export function finishEvent(prefix: string, latencyMs: number): string {
  return prefix + Math.max(0, Math.round(latencyMs)) + '}';
}

export function eventFrame(e: EventFields, latencyMs: number, extra?: { replay?: boolean }): string {
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

export function snapshotFrame(s: { topic: string; seq: number; data: unknown; ts?: number; reset?: boolean }): string {
  return JSON.stringify({
    type: 'snapshot',
    topic: s.topic,
    seq: s.seq,
    data: s.data ?? null,
    ...(s.ts !== undefined ? { ts: s.ts } : {}),
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
