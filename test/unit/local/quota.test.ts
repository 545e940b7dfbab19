import { expect } from 'chai';
import { LatencyModel, QuotaSpecError, TokenBucket, parseLatencyFlag, parseQuota, parseQuotaFlags } from '../../../local/apigw/quota';

describe('apigw emulator: the @connections quota and round trip', () => {
  it('the bucket admits its burst at once, throttles past it, and refills at its rate up to the burst', () => {
    let now = 0;
    const bucket = new TokenBucket({ rps: 100, burst: 5 }, () => now);
    const takes = (n: number) => Array.from({ length: n }, () => bucket.take());
    expect(takes(7)).to.deep.equal([true, true, true, true, true, false, false]);
    now += 30; // 100/s → 3 tokens in 30 ms
    expect(takes(4)).to.deep.equal([true, true, true, false]);
    now += 5; // half a token: still empty
    expect(bucket.take()).to.equal(false);
    now += 10_000; // a long pause refills to the burst, never beyond
    expect(takes(6)).to.deep.equal([true, true, true, true, true, false]);
    expect(bucket.status()).to.deep.equal({ rps: 100, burst: 5, admitted: 13, throttled: 5 });
  });

  it('over one second at a steady overload the bucket admits burst + rate calls', () => {
    let now = 0;
    const bucket = new TokenBucket({ rps: 2000, burst: 1000 }, () => now);
    let admitted = 0;
    for (let ms = 0; ms < 1000; ms++) {
      now = ms;
      for (let i = 0; i < 10; i++) if (bucket.take()) admitted++; // 10,000 calls/s offered
    }
    expect(admitted).to.be.within(2990, 3000);
  });

  it('quota settings are validated with the field named; burst defaults to the rate', () => {
    expect(parseQuota({ rps: 2000 })).to.deep.equal({ rps: 2000, burst: 2000 });
    expect(parseQuotaFlags('2000', '1000')).to.deep.equal({ rps: 2000, burst: 1000 });
    expect(() => parseQuota({ rps: 0 })).to.throw(QuotaSpecError, 'quota.rps');
    expect(() => parseQuota({ rps: 10, burst: 1.5 })).to.throw(QuotaSpecError, 'quota.burst');
    expect(() => parseQuota({ rps: 10, bucket: 3 })).to.throw(QuotaSpecError, 'quota.bucket: unknown field');
    expect(() => parseQuotaFlags('fast', undefined)).to.throw(QuotaSpecError, '--quota-rps');
  });

  it('round trips are fixed, uniform in [min, max], or a median with jitter, never negative', () => {
    expect(parseLatencyFlag('30')).to.deep.equal({ kind: 'fixed', ms: 30 });
    expect(parseLatencyFlag('25,35')).to.deep.equal({ kind: 'uniform', min: 25, max: 35 });
    expect(parseLatencyFlag('30~5')).to.deep.equal({ kind: 'median', median: 30, jitter: 5 });
    expect(() => parseLatencyFlag('35,25')).to.throw(QuotaSpecError, 'latency.min');
    expect(() => parseLatencyFlag('a,b,c')).to.throw(QuotaSpecError);
    expect(() => parseLatencyFlag('-3')).to.throw(QuotaSpecError, 'latency.ms');

    let r = 0;
    const uniform = new LatencyModel({ kind: 'uniform', min: 25, max: 35 }, () => r);
    r = 0;
    expect(uniform.sample()).to.equal(25);
    r = 0.5;
    expect(uniform.sample()).to.equal(30);
    const samples = Array.from({ length: 4001 }, () => new LatencyModel({ kind: 'median', median: 30, jitter: 5 }).sample()).sort((a, b) => a - b);
    expect(samples[2000]).to.be.within(29.5, 30.5);
    expect(samples[0]).to.be.at.least(0);
    expect(new LatencyModel({ kind: 'median', median: 1, jitter: 50 }).sample()).to.be.at.least(0);
  });
});
