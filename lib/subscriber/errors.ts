import { InputError } from '../errors';
import type { ErrorCode } from '../protocol/errors';

export { ERROR_CODES, type ErrorCode } from '../protocol/errors';

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
