import type { Sender, SendOutcome } from './sender';

/**
 * One delivery with retries: throttling (429) and transient errors (5xx, network) are retried
 * with exponential backoff and full jitter (so a throttled burst does not retry in lock-step);
 * `gone` and `too_large` are final at once.
 */

export interface RetryPolicy {
  /** Total attempts, including the first. */
  readonly attempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 50, maxDelayMs: 1000 };

export function backoffDelay(policy: RetryPolicy, attempt: number, random = Math.random): number {
  return random() * Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
}

/** `frame` is called per attempt so a retried event reports its real latency. */
export async function deliver(
  sender: Sender,
  connectionId: string,
  frame: () => string,
  policy: RetryPolicy = DEFAULT_RETRY,
): Promise<SendOutcome> {
  for (let attempt = 1; ; attempt++) {
    const outcome = await sender.send(connectionId, frame());
    if (outcome === 'ok' || outcome === 'gone' || outcome === 'too_large') return outcome;
    if (attempt >= policy.attempts) return outcome;
    await new Promise((r) => setTimeout(r, backoffDelay(policy, attempt)));
  }
}
