/**
 * Polling for tests: a condition checked every 20 ms until it holds or the time is up. Tests
 * wait for what they need instead of sleeping a fixed time.
 */

/** Resolves once `cond` holds; otherwise fails naming `what` after `timeoutMs`. */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  what: string | (() => string) = 'condition',
): Promise<void> {
  if (!(await eventually(cond, timeoutMs))) {
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'function' ? what() : what}`);
  }
}

/** True once `cond` holds, false if it still does not after `timeoutMs`. */
export async function eventually(cond: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 20): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
