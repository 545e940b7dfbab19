import { isCollectionPattern, writableTopicProblem } from '../collections';
import { topicProblem } from '../topics';
import { SubscriberError } from './errors';
import { ACTIONS, type AppActionFrame, type ClientFrame } from '../protocol/frames';
import { MAX_CLIENT_FRAME_BYTES, MAX_DATA_FRAME_BYTES } from '../protocol/limits';
import { dataProblem } from '../stores/json-data';
import { idempotencyKeyOf } from './publish';

/**
 * Validation of client → server frames (their types are in `lib/protocol/frames.ts`). API Gateway
 * picks the route from `$request.body.action`; each route handler still validates the whole
 * frame, because API Gateway only looks at `action`.
 */
export type { ClientFrame };

/** A validated frame: a built-in action, or one of the stack's application actions. */
export type ParsedFrame = ClientFrame | (AppActionFrame & { readonly app: true });

/** Actions whose frames carry application data and may use API Gateway's whole 32 KB frame. */
const isDataAction = (action: unknown, appActions: readonly string[]) =>
  action === 'publish' || (typeof action === 'string' && appActions.includes(action));

/**
 * JSON object of a frame, size-checked for its action: control frames up to
 * MAX_CLIENT_FRAME_BYTES, `publish` and application actions up to MAX_DATA_FRAME_BYTES.
 */
export function parseFrameBody(body: string | undefined | null, isBase64Encoded: boolean, appActions: readonly string[]): Record<string, unknown> {
  const obj = parseBody(body, isBase64Encoded, MAX_DATA_FRAME_BYTES);
  if (!isDataAction(obj.action, appActions)) {
    const text = isBase64Encoded && body ? Buffer.from(body, 'base64').toString('utf8') : (body ?? '');
    if (Buffer.byteLength(text, 'utf8') > MAX_CLIENT_FRAME_BYTES) {
      throw new SubscriberError('frame_too_large', `frames other than publish and application actions are limited to ${MAX_CLIENT_FRAME_BYTES} bytes`, 413);
    }
  }
  return obj;
}

/** JSON object of a frame; throws `frame_too_large`, `invalid_json` or `invalid_message`. */
export function parseBody(body: string | undefined | null, isBase64Encoded = false, maxBytes = MAX_CLIENT_FRAME_BYTES): Record<string, unknown> {
  const text = isBase64Encoded && body ? Buffer.from(body, 'base64').toString('utf8') : (body ?? '');
  if (Buffer.byteLength(text, 'utf8') > maxBytes) {
    throw new SubscriberError('frame_too_large', `frames are limited to ${maxBytes} bytes`, 413);
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

export function parseTopic(obj: Record<string, unknown>, problem: (t: unknown) => string | undefined = topicProblem): string {
  if (obj.topic === undefined || obj.topic === null) throw new SubscriberError('missing_topic', '"topic" is required');
  const p = problem(obj.topic);
  if (p) throw new SubscriberError('invalid_topic', p);
  return obj.topic as string;
}

/** `data` (required, null allowed, storable) and the optional idempotency `id` of a data frame. */
function dataAndId(obj: Record<string, unknown>): { data: unknown; id?: string } {
  if (!('data' in obj) || obj.data === undefined) throw new SubscriberError('missing_data', '"data" is required (null is allowed)');
  const problem = dataProblem(obj.data);
  if (problem) throw new SubscriberError('invalid_data', `"data" cannot be stored as sent: ${problem}`);
  const id = idempotencyKeyOf(obj.id, undefined);
  return { data: obj.data, ...(id !== undefined ? { id } : {}) };
}

/** Validates a frame; an action outside the built-ins and `appActions` is `unknown_action`. */
export function parseClientFrame(obj: Record<string, unknown>, appActions: readonly string[] = []): ParsedFrame {
  const action = obj.action;
  if (typeof action !== 'string') throw new SubscriberError('invalid_message', '"action" must be a string');
  switch (action) {
    case 'subscribe': {
      const topic = parseTopic(obj);
      if (obj.sinceSeq === undefined || obj.sinceSeq === null) return { action, topic };
      // A collection resumes by state (its snapshot); a member's history is its own subscribe.
      if (isCollectionPattern(topic)) {
        throw new SubscriberError('invalid_since_seq', `"sinceSeq" applies to one topic; "${topic}" is a collection, whose subscribe answers with its current state`);
      }
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
    case 'publish':
      return { action, topic: parseTopic(obj, writableTopicProblem), ...dataAndId(obj) };
    case 'presence': {
      // An optional request id, echoed on the answer: several presence requests may be in flight.
      const id = idempotencyKeyOf(obj.id, undefined);
      return { action, topic: parseTopic(obj), ...(id !== undefined ? { id } : {}) };
    }
    default:
      if (appActions.includes(action)) return { action, ...dataAndId(obj), app: true };
      throw new SubscriberError(
        'unknown_action',
        `unknown action "${action.slice(0, 64)}"; expected one of ${[...ACTIONS, ...appActions].join(', ')}`,
      );
  }
}
