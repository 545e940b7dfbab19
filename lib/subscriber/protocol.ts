import { topicProblem } from '../topics';
import { SubscriberError } from './errors';
import { ACTIONS, type ClientFrame } from '../protocol/frames';
import { MAX_CLIENT_FRAME_BYTES } from '../protocol/limits';

/**
 * Validation of client → server frames (their types are in `lib/protocol/frames.ts`). API Gateway
 * picks the route from `$request.body.action`; each route handler still validates the whole
 * frame, because API Gateway only looks at `action`.
 */
export type { ClientFrame };

/** JSON object of a frame; throws `frame_too_large`, `invalid_json` or `invalid_message`. */
export function parseBody(body: string | undefined | null, isBase64Encoded = false): Record<string, unknown> {
  const text = isBase64Encoded && body ? Buffer.from(body, 'base64').toString('utf8') : (body ?? '');
  if (Buffer.byteLength(text, 'utf8') > MAX_CLIENT_FRAME_BYTES) {
    throw new SubscriberError('frame_too_large', `frames are limited to ${MAX_CLIENT_FRAME_BYTES} bytes`, 413);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new SubscriberError('invalid_json', 'the frame is not valid JSON');
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw new SubscriberError('invalid_message', 'the frame must be a JSON object with an "action"');
  }
  return v as Record<string, unknown>;
}

export function parseTopic(obj: Record<string, unknown>): string {
  if (obj.topic === undefined || obj.topic === null) throw new SubscriberError('missing_topic', '"topic" is required');
  const p = topicProblem(obj.topic);
  if (p) throw new SubscriberError('invalid_topic', p);
  return obj.topic as string;
}

/** Validates a frame for the given route. */
export function parseClientFrame(obj: Record<string, unknown>): ClientFrame {
  const action = obj.action;
  if (typeof action !== 'string') throw new SubscriberError('invalid_message', '"action" must be a string');
  switch (action) {
    case 'subscribe': {
      const topic = parseTopic(obj);
      if (obj.sinceSeq === undefined || obj.sinceSeq === null) return { action, topic };
      const s = obj.sinceSeq;
      if (typeof s !== 'number' || !Number.isSafeInteger(s) || s < 0) {
        throw new SubscriberError('invalid_since_seq', '"sinceSeq" must be a non-negative integer');
      }
      return { action, topic, sinceSeq: s };
    }
    case 'unsubscribe':
      return { action, topic: parseTopic(obj) };
    case 'ping':
      return { action };
    default:
      throw new SubscriberError(
        'unknown_action',
        `unknown action "${action.slice(0, 64)}"; expected one of ${ACTIONS.join(', ')}`,
      );
  }
}
