import { expect } from 'chai';
import { takeToken, type TokenBucket } from '../../../lib/subscriber/rate-limit';

describe('per-connection token bucket', () => {
  const rate = { perSecond: 10, burst: 3 };

  it('a new connection has the whole burst, then waits 1/rate per token', () => {
    let b: TokenBucket | undefined;
    for (let i = 0; i < 3; i++) {
      const r = takeToken(b, 1000, rate);
      expect(r.ok, `take ${i}`).to.equal(true);
      b = (r as { bucket: TokenBucket }).bucket;
    }
    expect(takeToken(b, 1000, rate)).to.deep.equal({ ok: false, retryAfterMs: 100 });
    expect(takeToken(b, 1040, rate)).to.deep.equal({ ok: false, retryAfterMs: 60 });
    expect(takeToken(b, 1100, rate).ok).to.equal(true);
  });

  it('refills up to the burst, never beyond, and a clock step backwards refills nothing', () => {
    const empty = { tokens: 0, at: 10_000 };
    expect(takeToken(empty, 100_000, rate)).to.deep.equal({ ok: true, bucket: { tokens: 2, at: 100_000 } });
    expect(takeToken(empty, 5_000, rate)).to.deep.equal({ ok: false, retryAfterMs: 100 });
  });
});
