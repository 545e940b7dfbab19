import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { topicProblem } from '../topics';
import type { EventFields } from '../subscriber/frames';

/**
 * One items-stream record turned into the event to deliver, or the reason it is skipped.
 * REMOVE records (a delete, or TTL) carry no new state and are not delivered; a record without a
 * valid topic or a numeric seq cannot be ordered and is malformed: logged and skipped so it
 * never blocks the shard.
 */

export interface StreamRecordLike {
  readonly eventName?: string;
  readonly dynamodb?: {
    readonly NewImage?: Record<string, unknown>;
    readonly SequenceNumber?: string;
    readonly ApproximateCreationDateTime?: number | Date;
  };
}

export type ParsedRecord =
  | { readonly kind: 'event'; readonly sequenceNumber: string; readonly event: EventFields }
  | { readonly kind: 'skip'; readonly sequenceNumber: string; readonly reason: string }
  | { readonly kind: 'malformed'; readonly sequenceNumber: string; readonly reason: string };

export function parseStreamRecord(rec: StreamRecordLike, now: number): ParsedRecord {
  const sequenceNumber = String(rec?.dynamodb?.SequenceNumber ?? '');
  if (rec?.eventName === 'REMOVE') return { kind: 'skip', sequenceNumber, reason: 'REMOVE' };
  const img = rec?.dynamodb?.NewImage;
  if (!img || typeof img !== 'object') return { kind: 'malformed', sequenceNumber, reason: 'no NewImage' };
  let item: Record<string, unknown>;
  try {
    // Number() instead of the default, which throws on integers beyond 2^53 (a JSON publisher can
    // store those); JSON cannot carry them exactly anyway.
    item = unmarshall(img as Record<string, AttributeValue>, { wrapNumbers: (s: string) => Number(s) });
  } catch (err) {
    return { kind: 'malformed', sequenceNumber, reason: `NewImage does not unmarshall: ${(err as Error).message}` };
  }
  const tp = topicProblem(item.topic);
  if (tp) return { kind: 'malformed', sequenceNumber, reason: tp };
  const seq = item.seq;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) {
    return { kind: 'malformed', sequenceNumber, reason: 'seq is not a positive integer' };
  }
  // A writer that set no source timestamp: fall back to when the stream saw the change.
  const approx = rec.dynamodb?.ApproximateCreationDateTime;
  const approxMs = approx instanceof Date ? approx.getTime() : typeof approx === 'number' ? approx * 1000 : now;
  const ts = typeof item.ts === 'number' && Number.isFinite(item.ts) ? item.ts : approxMs;
  return { kind: 'event', sequenceNumber, event: { topic: item.topic as string, seq, data: toJsonSafe(item.data), ts } };
}

/** Sets (DynamoDB SS/NS) become arrays, binary becomes base64, so the frame is plain JSON. */
function toJsonSafe(v: unknown): unknown {
  if (v === undefined) return null;
  if (v instanceof Set) return [...v].map(toJsonSafe);
  if (v instanceof Uint8Array) return Buffer.from(v).toString('base64');
  if (Array.isArray(v)) return v.map(toJsonSafe);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = toJsonSafe(x);
    return out;
  }
  return v;
}

/**
 * The inverse of `parseStreamRecord` for an event already parsed: a record fan-out delivers as
 * that very event (a redriven history row, a partition message). Numbers beyond 2^53 were
 * already read imprecisely by the parse; writing them back must not throw (the default does).
 */
export function eventAsStreamRecord(e: EventFields, sequenceNumber: string): StreamRecordLike {
  return {
    eventName: 'MODIFY',
    dynamodb: {
      SequenceNumber: sequenceNumber,
      NewImage: marshall({ topic: e.topic, seq: e.seq, data: e.data, ts: e.ts }, { removeUndefinedValues: true, convertClassInstanceToMap: false, allowImpreciseNumbers: true }),
    },
  };
}
