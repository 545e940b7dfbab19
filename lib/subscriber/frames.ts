import { eventFrame, eventPrefix, messageFrame, type EventFields } from '../protocol/frames';
import { WORST_CASE_NUMBER } from './limits';

/**
 * Server-side sizing of the frames built by the shared protocol module (`lib/protocol/frames.ts`,
 * re-exported here): byte counts use Buffer, which the browser-safe module must not import.
 */
export {
  eventFrame,
  eventPrefix,
  finishEvent,
  messageFrame,
  snapshotFrame,
  subscribedFrame,
  unsubscribedFrame,
  pongFrame,
  errorFrame,
  type EventFields,
  type FrameExtra,
} from '../protocol/frames';

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

/**
 * Bytes of the largest event frame `data` on `topic` can ever produce (seq, ts and latencyMs at
 * their widest). Publish refuses data above the limit up front, so a payload is never accepted
 * and then silently dropped by API Gateway's 128 KB message limit at fan-out.
 */
export function worstCaseEventBytes(topic: string, data: unknown): number {
  const f = eventFrame({ topic, seq: WORST_CASE_NUMBER, data, ts: WORST_CASE_NUMBER }, WORST_CASE_NUMBER, { replay: true });
  return Buffer.byteLength(f, 'utf8');
}

export function messageWorstCaseBytes(data: unknown): number {
  return Buffer.byteLength(messageFrame(data, WORST_CASE_NUMBER), 'utf8');
}
