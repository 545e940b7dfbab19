/**
 * A token bucket per connection for publishes and application actions: `burst` tokens, refilled
 * at `perSecond`. Pure: the state is stored on the connection row (connections.ts takeToken).
 */
export interface BucketRate {
  readonly perSecond: number;
  readonly burst: number;
}

export interface TokenBucket {
  /** Tokens left at `at` (fractional). */
  readonly tokens: number;
  /** Epoch ms of the last take. */
  readonly at: number;
}

export function takeToken(
  bucket: TokenBucket | undefined,
  now: number,
  rate: BucketRate,
): { ok: true; bucket: TokenBucket } | { ok: false; retryAfterMs: number } {
  // A new connection starts full; a clock step backwards refills nothing.
  const elapsed = bucket ? Math.max(0, now - bucket.at) : 0;
  const tokens = bucket ? Math.min(rate.burst, bucket.tokens + (elapsed * rate.perSecond) / 1000) : rate.burst;
  if (tokens < 1) return { ok: false, retryAfterMs: Math.ceil(((1 - tokens) * 1000) / rate.perSecond) };
  return { ok: true, bucket: { tokens: tokens - 1, at: Math.max(now, bucket?.at ?? now) } };
}
