import { expect } from 'chai';
import { createAdaptiveLimiter, type AdaptiveLimiter } from '../../../lib/delivery/limiter';

/** Tasks that stay in flight until the test answers them, as requests awaiting their round trip. */
function harness(limiter: AdaptiveLimiter) {
  const pending: { done: (s: 'ok' | 'throttled' | 'neutral') => void; finish: () => void }[] = [];
  let started = 0;
  const submit = (n: number) => {
    for (let i = 0; i < n; i++) {
      void limiter.run(
        () =>
          new Promise<void>((finish) => {
            started++;
            pending.push({ done: limiter.request(), finish });
          }),
      );
    }
  };
  /** Answers the oldest `n` requests with `signal`, oldest first, including those the answers let start. */
  const answer = async (n: number, signal: 'ok' | 'throttled' | 'neutral' = 'ok') => {
    while (n > 0 && pending.length) {
      const batch = pending.splice(0, n);
      n -= batch.length;
      for (const p of batch) {
        p.done(signal);
        p.finish();
      }
      await new Promise((r) => setImmediate(r));
    }
  };
  return { submit, answer, inFlight: () => pending.length, started: () => started };
}

describe('adaptive concurrency limiter (AIMD)', () => {
  it('while latency-bound it doubles per round trip until the first 429, never past the ceiling', async () => {
    // Every round trip takes the same (virtual) time: latency-bound by construction. On the real
    // clock, a loaded machine pausing this process for 20 ms between a request and its answer
    // would make that answer look queued, and the limit would not double.
    const limiter = createAdaptiveLimiter({ max: 100, initial: 4, now: () => 0 });
    const h = harness(limiter);
    h.submit(1000);
    expect(h.inFlight()).to.equal(4);
    await h.answer(4); // one round trip
    expect(limiter.limit).to.equal(8);
    expect(h.inFlight()).to.equal(8);
    await h.answer(8);
    expect(limiter.limit).to.equal(16);
    await h.answer(16);
    await h.answer(32);
    await h.answer(64);
    expect(limiter.limit).to.equal(100);
    expect(h.inFlight()).to.equal(100);
  });

  it('a window with more than 5 % of 429s cuts the limit to the part that got through (at most halved), once; then +1 per window', async () => {
    let now = 0;
    const limiter = createAdaptiveLimiter({ max: 100, initial: 40, now: () => now });
    const h = harness(limiter);
    h.submit(5000);
    now += 10; // the fastest round trip: 10 ms
    // In slow start a window is 20 answers: 1 429 in 20 is 5 %, not above the tolerance.
    await h.answer(19);
    await h.answer(1, 'throttled');
    expect(limiter.decreases).to.equal(0);
    const before = limiter.limit;
    expect(before).to.equal(59); // slow start: +1 per answer while full
    now += 40; // answers 50 ms after they were sent: not latency-bound, no more growth
    // 15 % answered 429: over the quota 85 % of what is in flight gets through, so that many is the quota's rate.
    await h.answer(17);
    await h.answer(3, 'throttled');
    expect(limiter.decreases).to.equal(1);
    expect(limiter.limit).to.equal(Math.floor(before * 0.85));
    // Requests sent before the cut: their 429s say nothing about the new limit.
    await h.answer(h.inFlight(), 'throttled');
    expect(limiter.decreases).to.equal(1);
    expect(limiter.limit).to.equal(Math.floor(before * 0.85));
    // A cut in slow start stands (no probation). Then +1 per window of answers, not doubling.
    const cut = limiter.limit;
    await h.answer(cut);
    expect(limiter.limit).to.equal(cut + 1);
    await h.answer(cut * 4 + 6);
    expect(limiter.limit).to.be.within(cut + 4, cut + 6);
  });

  it('429s that sending less does not reduce are noise: the limit comes back and that share stops cutting it', async () => {
    let now = 0;
    const limiter = createAdaptiveLimiter({ max: 64, initial: 64, now: () => now });
    const h = harness(limiter);
    h.submit(20_000);
    // Every tenth answer a 429, whatever the limit: random faults, not the quota. A 10 ms round trip
    // whatever the limit: latency-bound, so what gets through follows the limit.
    const round = async (n: number) => {
      for (let i = 0; i < n; i++) {
        now += 10 / limiter.limit;
        await h.answer(1, i % 10 === 9 ? 'throttled' : 'ok');
      }
    };
    await round(20); // a slow-start window: 2 of 20 answered 429
    expect(limiter.decreases).to.equal(1);
    expect(limiter.limit).to.equal(57); // a cut in slow start always stands
    await round(h.inFlight()); // requests sent before the cut do not count
    await round(57); // congestion avoidance: 5 of 57 answered 429 → a cut, on probation
    expect(limiter.decreases).to.equal(2);
    expect(limiter.limit).to.equal(51);
    await round(h.inFlight());
    await round(51); // the probation window: still 10 % → noise: the limit comes back
    expect(limiter.limit).to.equal(57);
    await round(3000); // and that share no longer cuts it: +1 per window back to the ceiling
    expect(limiter.decreases).to.equal(2);
    expect(limiter.limit).to.equal(64);
    // A share well above the noise is the quota again: it cuts.
    for (let i = 0; i < 128; i++) await h.answer(1, i % 3 === 2 ? 'throttled' : 'ok');
    expect(limiter.decreases).to.equal(3);
    expect(limiter.limit).to.be.below(64);
  });

  it('is latency-bound only while round trips stay near the fastest: queued answers do not grow it, ballooning ones cut it', async () => {
    let now = 0;
    const limiter = createAdaptiveLimiter({ max: 100, initial: 8, now: () => now });
    const h = harness(limiter);
    h.submit(1000);
    now += 30; // 30 ms round trips: latency-bound, slow start
    await h.answer(8);
    expect(limiter.limit).to.equal(16);
    now += 100; // answers 100 ms+ after they were sent: requests are queueing, not waiting on the round trip
    await h.answer(16);
    expect(limiter.limit).to.equal(16);
    now += 400; // round trips past 4x the fastest and 250 ms more: a quarter off, once for the window
    await h.answer(16);
    expect(limiter.limit).to.equal(12);
    expect(limiter.decreases).to.equal(1);
  });

  it('refuses a ceiling, floor or decrease it cannot honour', () => {
    expect(() => createAdaptiveLimiter({ max: 0 })).to.throw(TypeError, 'max');
    expect(() => createAdaptiveLimiter({ max: 8, decrease: 1 })).to.throw(TypeError, 'decrease');
    expect(() => createAdaptiveLimiter({ max: 8, min: 0 })).to.throw(TypeError, 'min');
  });
});

/**
 * The limiter against a simulated `@connections` endpoint in virtual time: every request answered
 * after a fixed round trip, 429 when a token bucket (the account quota) is empty or, with
 * `faults`, at random. Requests are answered in the order they were sent (one round trip each).
 */
async function simulate(o: { max: number; rttMs: number; requests: number; quotaPerMs?: number; burst?: number; faults?: number }) {
  let now = 0;
  let tokens = o.burst ?? Infinity;
  let refilled = 0;
  let seed = 42;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const limiter = createAdaptiveLimiter({ max: o.max, now: () => now });
  const pending: { t0: number; signal: 'ok' | 'throttled'; done: (s: 'ok' | 'throttled') => void; finish: () => void }[] = [];
  let ok = 0;
  let throttled = 0;
  let limitTime = 0;
  for (let i = 0; i < o.requests; i++) {
    void limiter.run(
      () =>
        new Promise<void>((finish) => {
          if (o.quotaPerMs) tokens = Math.min(o.burst ?? Infinity, tokens + (now - refilled) * o.quotaPerMs);
          refilled = now;
          let signal: 'ok' | 'throttled' = 'ok';
          if (tokens >= 1) tokens--;
          else signal = 'throttled';
          if (o.faults && random() < o.faults) signal = 'throttled';
          pending.push({ t0: now, signal, done: limiter.request(), finish });
        }),
    );
  }
  while (pending.length) {
    const p = pending.shift()!;
    const t = Math.max(now, p.t0 + o.rttMs);
    limitTime += limiter.limit * (t - now);
    now = t;
    if (p.signal === 'ok') ok++;
    else throttled++;
    p.done(p.signal);
    p.finish();
    await new Promise((r) => setImmediate(r));
  }
  return { ok, throttled, seconds: now / 1000, meanLimit: limitTime / now, decreases: limiter.decreases };
}

describe('adaptive concurrency limiter in simulated traffic', () => {
  it('against a quota of 2,000/s (burst 1,000) at a 30 ms round trip: ≥ 0.9 of the quota, ≤ 5 % of requests answered 429', async () => {
    const r = await simulate({ max: 256, rttMs: 30, requests: 20_000, quotaPerMs: 2, burst: 1000 });
    const goodput = r.ok / r.seconds / 2000;
    expect(goodput).to.be.at.least(0.9);
    expect(r.throttled / (r.ok + r.throttled)).to.be.at.most(0.05);
    expect(r.decreases).to.be.at.least(1);
  });

  for (const faults of [0.1, 0.2]) {
    it(`${faults * 100} % of requests answered 429 at random, whatever is sent: the limit stays near its ceiling`, async () => {
      const r = await simulate({ max: 64, rttMs: 5, requests: 20_000, faults });
      expect(r.meanLimit).to.be.at.least(0.8 * 64);
    });
  }

  it('a quota and 10 % random 429s on top: still ≥ 0.9 of the quota, 429s not far above the noise', async () => {
    const r = await simulate({ max: 256, rttMs: 30, requests: 20_000, quotaPerMs: 2, burst: 1000, faults: 0.1 });
    expect(r.ok / r.seconds / 2000).to.be.at.least(0.9);
    expect(r.throttled / (r.ok + r.throttled)).to.be.at.most(0.15);
  });
});
