import type { RawData } from 'ws';

/**
 * Turns an upstream frame into what is stored on the topic:
 * - a text frame holding JSON → the parsed value (subscribers get structured data);
 * - any other text → the string itself;
 * - a binary frame → `{ "encoding": "base64", "data": "…" }` (DynamoDB and the subscriber
 *   protocol are JSON, so bytes travel as base64 with a marker saying so).
 *
 * The source timestamp is the message's own `timestamp` field when it has one (seed 003's
 * messages carry epoch ms), else the time the frame arrived. Epoch seconds (values below 1e11)
 * are scaled to ms and ISO-8601 strings parsed; anything else falls back to the arrival time.
 */

export interface DecodedFrame {
  readonly data: unknown;
  readonly ts: number;
  /** The original text, kept so a value DynamoDB refuses can still be stored as a string. */
  readonly text?: string;
  readonly bytes: number;
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data as ArrayBuffer);
}

export function sourceTimestamp(value: unknown): number | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const t = (value as { timestamp?: unknown }).timestamp;
  let ms: number | undefined;
  if (typeof t === 'number' && Number.isFinite(t) && t > 0) ms = t < 1e11 ? t * 1000 : t;
  else if (typeof t === 'string' && t.trim() !== '') {
    const n = Number(t);
    ms = Number.isFinite(n) && n > 0 ? (n < 1e11 ? n * 1000 : n) : Date.parse(t);
  }
  return ms !== undefined && Number.isFinite(ms) ? Math.round(ms) : undefined;
}

export function decodeFrame(data: RawData, isBinary: boolean, receivedAt: number): DecodedFrame {
  const buf = toBuffer(data);
  if (isBinary) return { data: { encoding: 'base64', data: buf.toString('base64') }, ts: receivedAt, bytes: buf.length };
  const text = buf.toString('utf8');
  let value: unknown = text;
  const first = text.trimStart()[0];
  // Only objects and arrays are parsed: "42" or "true" from a text protocol stay the text they were.
  if (first === '{' || first === '[') {
    try {
      value = JSON.parse(text);
    } catch {
      value = text;
    }
  }
  return { data: value, ts: sourceTimestamp(value) ?? receivedAt, text, bytes: buf.length };
}
