import { expect } from 'chai';
import { backoffCeiling, backoffDelay, validateBackoff } from '../../../client/backoff';

describe('client backoff (exponential, full jitter)', () => {
  it('grows the window exponentially from initialMs and caps it at maxMs', () => {
    const o = { initialMs: 100, maxMs: 5000, factor: 2 };
    expect([0, 1, 2, 3, 4, 5, 6, 10, 2000].map((a) => backoffCeiling(a, o))).to.deep.equal([100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
  });

  it('draws every delay from [0, ceiling): random 0 gives 0, random just below 1 gives just below the ceiling', () => {
    const o = { initialMs: 100, maxMs: 5000 };
    for (let a = 0; a < 12; a++) {
      expect(backoffDelay(a, o, () => 0)).to.equal(0);
      const hi = backoffDelay(a, o, () => 0.999999);
      expect(hi).to.be.lessThan(backoffCeiling(a, o));
      expect(hi).to.be.at.least(backoffCeiling(a, o) - 1);
    }
  });

  it('spreads real random delays over the whole window (full jitter, not equal jitter)', () => {
    const delays = Array.from({ length: 2000 }, () => backoffDelay(3, { initialMs: 100, maxMs: 10_000 }));
    expect(Math.min(...delays)).to.be.at.least(0);
    expect(Math.max(...delays)).to.be.below(800);
    // With full jitter a good share lands in the lower half; "equal jitter" would put none there.
    expect(delays.filter((d) => d < 400).length).to.be.within(800, 1200);
    expect(delays.filter((d) => d < 100).length).to.be.greaterThan(100);
  });

  it('rejects nonsense settings, naming the field', () => {
    expect(() => validateBackoff({ initialMs: 0 })).to.throw(/initialMs/);
    expect(() => validateBackoff({ initialMs: 1000, maxMs: 10 })).to.throw(/maxMs/);
    expect(() => validateBackoff({ factor: 0.5 })).to.throw(/factor/);
    expect(() => backoffCeiling(-1)).to.throw(/attempt/);
  });
});
