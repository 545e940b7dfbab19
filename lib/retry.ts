/**
 * Retry timing, once for the whole code base (server, agent, local stack; the browser client has
 * its own in client/ so that package stays dependency-free): exponential backoff with a choice of
 * jitter, a sleep that an AbortSignal cuts short, and the "call again with what the batch call
 * left unprocessed" loop of DynamoDB's BatchWriteItem / BatchGetItem.
 */

/**
 * How a delay is drawn from the capped exponential `exp` (AWS Architecture Blog, "Exponential
 * Backoff And Jitter"):
 * - `full`: uniform in [0, exp). Spreads competing callers the most; the default for calls to a
 *   service that throttles (DynamoDB, the management API).
 * - `equal`: exp/2 fixed plus uniform [0, exp/2). Never ~0 ms, so a peer that just dropped
 *   everyone is not hammered at once, while a fleet's retries still spread apart.
 * - `none`: exp itself (a single poller: nobody to spread apart from).
 */
export type Jitter = 'full' | 'equal' | 'none';

export interface Backoff {
  readonly baseMs: number;
  /** Cap of the exponential part; none: uncapped (the attempt count bounds it). */
  readonly maxMs?: number;
  /** Default `full`. */
  readonly jitter?: Jitter;
}

/** The wait after retry number `attempt` (0-based): `baseMs × 2^attempt`, capped, jittered. */
export function backoffDelay(attempt: number, b: Backoff, random: () => number = Math.random): number {
  // 2^30 × any sane base is far past every cap; the clamp keeps a runaway count from reaching Infinity.
  const exp = Math.min(b.maxMs ?? Infinity, b.baseMs * 2 ** Math.max(0, Math.min(attempt, 30)));
  switch (b.jitter ?? 'full') {
    case 'full':
      return random() * exp;
    case 'equal':
      return exp / 2 + random() * (exp / 2);
    case 'none':
      return exp;
  }
}

/** A setTimeout-based sleep that an AbortSignal cuts short (resolving, not rejecting: the caller checks why it woke). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Calls `call` with `items`, then again with what it hands back as unprocessed, after a backoff,
 * until nothing is left or `attempts` calls were made. Returns what is still unprocessed (empty
 * when all went through): whether that is an error is the caller's decision.
 */
export async function retryUnprocessed<T>(
  items: readonly T[],
  call: (pending: readonly T[]) => Promise<readonly T[]>,
  opts: { readonly attempts: number; readonly backoff: Backoff },
): Promise<readonly T[]> {
  let pending = items;
  for (let attempt = 1; pending.length > 0; attempt++) {
    pending = await call(pending);
    if (pending.length === 0 || attempt >= opts.attempts) break;
    await sleep(backoffDelay(attempt, opts.backoff));
  }
  return pending;
}
