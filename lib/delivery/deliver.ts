import { unlimited, type AdaptiveLimiter, type Limiter, type Signal } from './limiter';
import { backoffDelay, sleep } from '../retry';
import type { Sender, SendOutcome } from './sender';

/**
 * One delivery with retries: throttling (429) and transient errors (5xx, network) are retried
 * with exponential backoff and jitter (so a throttled burst does not retry in lock-step; after a
 * 429 at least half the step, `throttledDelay`); `gone` and `too_large` are final at once.
 *
 * `budgetMs` bounds the whole delivery, waits and attempts included: no attempt starts after it
 * and an attempt still in flight when it runs out counts as `error` (its answer is ignored). A
 * subscriber whose management API calls hang therefore holds its topic for at most `budgetMs`
 * per record, whatever the sender's own request timeout is.
 *
 * `limit` bounds requests in flight, not deliveries: each attempt takes a slot and gives it back
 * before its backoff, so deliveries waiting to retry never starve the others (with 20 % of calls
 * failing, slots held through backoffs were most of the slots). The budget's clock starts when the
 * first attempt is admitted (a queue of 10,000 deliveries behind the limiter is not a failure),
 * and retries go to the front of the queue so the time they wait there stays short.
 */

export interface RetryPolicy {
  /** Total attempts, including the first. */
  readonly attempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** Upper bound on one delivery, retries included (default 2,000 ms). */
  readonly budgetMs?: number;
}

// 10 attempts: with 20 % of calls failing at random, 5 would still lose 1 delivery in 3,000 (0.2^5) to a
// forced resync; 10 lose 1 in 10 million. The budget, not the count, bounds the time. The 10 ms base is
// below one same-region round trip: a subscriber's lane waits out each backoff (docs/decisions.md).
export const DEFAULT_RETRY: RetryPolicy = { attempts: 10, baseDelayMs: 10, maxDelayMs: 1000, budgetMs: 2000 };

/**
 * After a 429 the account's bucket is empty: a retry drawn near 0 ms (full jitter can) only spends
 * another request on it. Half the step is always waited, the other half jittered.
 */
export function throttledDelay(policy: RetryPolicy, attempt: number, random = Math.random): number {
  const step = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return step / 2 + (random() * step) / 2;
}

/**
 * Runs `call` (one management API request) under `policy`. Shared by PostToConnection and
 * DeleteConnection, which have the same outcomes.
 */
export async function withRetries(call: () => Promise<SendOutcome>, policy: RetryPolicy = DEFAULT_RETRY, limit: Limiter = unlimited): Promise<SendOutcome> {
  const budget = policy.budgetMs ?? DEFAULT_RETRY.budgetMs!;
  let deadline = Infinity;
  for (let attempt = 1; ; attempt++) {
    const outcome = await limit(() => {
      if (attempt === 1) deadline = Date.now() + budget;
      return beforeDeadline(call(), deadline);
    }, attempt > 1);
    if (outcome === 'ok' || outcome === 'gone' || outcome === 'too_large') return outcome;
    if (attempt >= policy.attempts) return outcome;
    const wait =
      outcome === 'throttled' ? throttledDelay(policy, attempt) : backoffDelay(attempt - 1, { baseMs: policy.baseDelayMs, maxMs: policy.maxDelayMs });
    if (Date.now() + wait >= deadline) return outcome;
    await sleep(wait);
  }
}

/** `frame` is called per attempt so a retried event reports its real latency. */
export function deliver(sender: Sender, connectionId: string, frame: () => string, policy: RetryPolicy = DEFAULT_RETRY, limit?: Limiter): Promise<SendOutcome> {
  return withRetries(() => sender.send(connectionId, frame()), policy, limit);
}

function beforeDeadline(p: Promise<SendOutcome>, deadline: number): Promise<SendOutcome> {
  const left = deadline - Date.now();
  if (left <= 0) return Promise.resolve('error');
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<SendOutcome>((resolve) => {
      timer = setTimeout(() => resolve('error'), left);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** What an answer says about the quota: any answer but 429 came back in one round trip; 5xx and network errors say nothing. */
export function signalOf(outcome: SendOutcome): Signal {
  if (outcome === 'throttled') return 'throttled';
  return outcome === 'error' ? 'neutral' : 'ok';
}

/** `sender`, with every request (PostToConnection and DeleteConnection: both count against the quota) reported to the adaptive limiter. */
export function reportingTo(limiter: Pick<AdaptiveLimiter, 'request'>, sender: Sender): Sender {
  const report = async (call: () => Promise<SendOutcome>) => {
    const done = limiter.request();
    const outcome = await call();
    done(signalOf(outcome));
    return outcome;
  };
  return {
    send: (id, data) => report(() => sender.send(id, data)),
    disconnect: (id) => report(() => sender.disconnect(id)),
    ...(sender.close ? { close: () => sender.close!() } : {}),
  };
}
