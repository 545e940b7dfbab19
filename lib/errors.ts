/**
 * Named errors with stable codes. Callers branch on `code`, never on message text.
 */

/** A setting is missing or malformed. The message names the key and the expected form. */
export class ConfigError extends Error {
  readonly code = 'config_invalid';
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(`${key}: ${message}`);
    this.name = 'ConfigError';
  }
}

/** Client input that cannot be accepted; `code` is what the client sees. */
export class InputError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
    this.name = 'InputError';
  }
}
