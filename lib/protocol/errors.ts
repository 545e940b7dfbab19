/**
 * The stable error codes a subscriber or publisher can receive (`{"type":"error","code":…}` on the
 * socket, `{"error":…}` over HTTP). Clients branch on these, never on the message text, so a code
 * is never renamed once shipped.
 */
export const ERROR_CODES = [
  'invalid_json',
  'invalid_message',
  'unknown_action',
  'missing_topic',
  'invalid_topic',
  'invalid_since_seq',
  'frame_too_large',
  'forbidden',
  'not_connected',
  'too_many_subscriptions',
  'missing_data',
  'invalid_data',
  'invalid_target',
  'invalid_ts',
  'payload_too_large',
  'unauthorized',
  'write_conflict',
  'invalid_idempotency_key',
  'idempotency_key_reused',
  'rate_limited',
  'internal_error',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];
