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
    const limiter = createAdaptiveLimiter({ max: 100, initial: 4 });
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

  it('halves on 429s once per window (a lone 429 is not enough), then grows by one per window of answers while full', async () => {
    const limiter = createAdaptiveLimiter({ max: 100, initial: 40 });
    const h = harness(limiter);
    h.submit(1000);
    await h.answer(1, 'throttled');
    expect(limiter.limit).to.equal(40);
    await h.answer(1, 'throttled');
    expect(limiter.limit).to.equal(20);
    // The rest of that window was sent before the cut: its 429s say nothing new.
    await h.answer(10, 'throttled');
    expect(limiter.limit).to.equal(20);
    expect(limiter.decreases).to.equal(1);
    await h.answer(28); // drains the old window (answers while full count towards growth)
    expect(limiter.limit).to.equal(21);
    expect(h.inFlight()).to.equal(21);
    // Congestion avoidance: about +1 per window of `limit` answers (21 + 22 + … + 28 = 196), not doubling.
    await h.answer(200);
    expect(limiter.limit).to.be.within(28, 30);
    const limitBefore = limiter.limit - 2;
    // 429s from requests sent after the cut halve it again.
    await h.answer(2, 'throttled');
    expect(limiter.limit).to.equal(Math.floor((limitBefore + 2) / 2));
    expect(limiter.decreases).to.equal(2);
  });

  it('does not grow when it is not the bottleneck, nor on 5xx; a run of 429s stops at the floor', async () => {
    const limiter = createAdaptiveLimiter({ max: 64, initial: 8, min: 2 });
    const h = harness(limiter);
    h.submit(3); // fewer tasks than the limit: more concurrency would change nothing
    await h.answer(3);
    expect(limiter.limit).to.equal(8);
    h.submit(100);
    await h.answer(8, 'neutral');
    expect(limiter.limit).to.equal(8);
    // Each round answers every request in flight 429; the first sent after the last cut halves the limit.
    for (let i = 0; i < 6; i++) await h.answer(h.inFlight(), 'throttled');
    expect(limiter.limit).to.equal(2);
    expect(h.inFlight()).to.be.at.most(8);
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
