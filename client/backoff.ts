/**
 * Reconnect delays: exponential backoff with "full jitter" (AWS Architecture Blog, "Exponential
 * Backoff and Jitter"): delay = random(0, min(cap, base · factor^attempt)). Full jitter spreads a
 * herd of clients that all lost their sockets at the same moment (a deploy, API Gateway's 2-hour
 * cut-off, a network blip) over the whole window instead of having them retry in lock-step.
 */

export interface BackoffOptions {
  /** Upper bound of the first delay (attempt 0). Default 500 ms. */
  initialMs?: number;
  /** Cap of the window. Default 30 s. */
  maxMs?: number;
  /** Growth per attempt. Default 2. */
  factor?: number;
}

export const DEFAULT_BACKOFF: Required<BackoffOptions> = { initialMs: 500, maxMs: 30_000, factor: 2 };

/** The window [0, ceiling] the delay of `attempt` (0-based) is drawn from. */
export function backoffCeiling(attempt: number, opts: BackoffOptions = {}): number {
  const { initialMs, maxMs, factor } = { ...DEFAULT_BACKOFF, ...opts };
  if (!(attempt >= 0)) throw new RangeError(`attempt must be >= 0, got ${attempt}`);
  // Math.pow overflows to Infinity for large attempts; min() keeps it at the cap.
  return Math.min(maxMs, initialMs * Math.pow(factor, attempt));
}

/** A delay for `attempt` (0-based), uniformly drawn from [0, ceiling). `random` returns [0, 1). */
export function backoffDelay(attempt: number, opts: BackoffOptions = {}, random: () => number = Math.random): number {
  return Math.floor(random() * backoffCeiling(attempt, opts));
}

export function validateBackoff(opts: BackoffOptions): void {
  const o = { ...DEFAULT_BACKOFF, ...opts };
  if (!(o.initialMs > 0)) throw new RangeError(`backoff.initialMs must be > 0, got ${o.initialMs}`);
  if (!(o.maxMs >= o.initialMs)) throw new RangeError(`backoff.maxMs (${o.maxMs}) must be >= backoff.initialMs (${o.initialMs})`);
  if (!(o.factor >= 1)) throw new RangeError(`backoff.factor must be >= 1, got ${o.factor}`);
}
