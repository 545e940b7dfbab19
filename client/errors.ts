/**
 * Named errors with stable codes; applications branch on `code`, never on message text.
 *
 * - `invalid_option`: a connect option is missing or malformed (thrown synchronously by connect).
 * - `no_websocket`: no WebSocket constructor (Node 20 has no global one: pass `ws`'s).
 * - `already_subscribed`: subscribe() for a topic this client already subscribes.
 * - `closed`: the client was closed.
 * - `token_failed`: the token function threw or returned something that is not a non-empty string.
 * - `connect_timeout`: the socket did not open in time.
 * - `pong_timeout`: the server did not answer a ping in time; the socket is treated as dead.
 * - `protocol_error`: the server sent a frame the client cannot parse (its content is not quoted:
 *   it may be private).
 * - `duplicate_id`: publish()/send() with the id of a request still waiting for its answer.
 * - `invalid_action`: send() with a built-in action name or an empty one.
 * - `subscribe_retry`: a subscribe got no answer in time, or a retryable error; it is being re-sent.
 * - any code the server sends in `{"type":"error","code"}` (e.g. `forbidden`, `invalid_topic`).
 */
export class RealtimeError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly topic?: string,
    options?: { cause?: unknown },
    /** `rate_limited`: when the server will accept the next publish or action. */
    readonly retryAfterMs?: number,
  ) {
    super(message, options);
    this.name = 'RealtimeError';
  }
}

/**
 * Server error codes that say "try again" for a subscribe: the server failed, not the request.
 * The SDK re-sends the subscribe with backoff instead of giving up on the topic.
 */
export const RETRYABLE_CODES: ReadonlySet<string> = new Set(['internal_error', 'write_conflict', 'rate_limited']);
