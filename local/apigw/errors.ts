/**
 * Named errors of the WebSocket emulator. `code` is stable; tests and callers branch on it.
 */

/** The emulator was started with options it cannot honour; the message names the option. */
export class EmulatorOptionError extends Error {
  readonly code = 'apigw_option_invalid';
  constructor(
    readonly option: string,
    message: string,
  ) {
    super(`${option}: ${message}`);
    this.name = 'EmulatorOptionError';
  }
}

/**
 * The connection does not exist (never did, not yet — `$connect` still running — or no longer).
 * Same code as the management API's 410 `x-amzn-errortype: GoneException`.
 */
export class GoneError extends Error {
  readonly code = 'GoneException';
  constructor(readonly connectionId: string) {
    super(`connection ${JSON.stringify(connectionId)} is gone (unknown, not yet connected, or closed)`);
    this.name = 'GoneError';
  }
}
