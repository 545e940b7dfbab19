import { InputError } from '../errors';

/**
 * The stable error codes a subscriber or publisher can receive. Clients branch on these, never on
 * the message text, so a code is never renamed once shipped.
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
  'internal_error',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** A client-facing error: `code` goes on the wire, `status` is used by HTTP and $connect. */
export class SubscriberError extends InputError {
  constructor(
    override readonly code: ErrorCode,
    message: string,
    status = 400,
  ) {
    super(code, message, status);
    this.name = 'SubscriberError';
  }
}

/** Authentication on $connect or /publish failed: 401 (who are you?) or 403 (not allowed). */
export class AuthError extends SubscriberError {
  constructor(code: 'unauthorized' | 'forbidden', message: string) {
    super(code, message, code === 'unauthorized' ? 401 : 403);
    this.name = 'AuthError';
  }
}
