import { expect } from 'chai';
import { backoffDelay, retryUnprocessed, sleep } from '../../../lib/retry';

describe('retry: backoff', () => {
  it('full jitter (delivery retries) grows exponentially, is capped, and is jittered from zero', () => {
    const p = { baseMs: 50, maxMs: 300 };
    expect(backoffDelay(0, p, () => 1)).to.equal(50);
    expect(backoffDelay(2, p, () => 1)).to.equal(200);
    expect(backoffDelay(5, p, () => 1)).to.equal(300);
    expect(backoffDelay(2, p, () => 0)).to.equal(0);
  });

  it('equal jitter (agent redials) grows exponentially, is capped, and jitters within [d/2, d]', () => {
    const p = { baseMs: 100, maxMs: 10_000, jitter: 'equal' as const };
    expect(backoffDelay(0, p, () => 0)).to.equal(50);
    expect(backoffDelay(0, p, () => 1)).to.equal(100);
    expect(backoffDelay(3, p, () => 0)).to.equal(400);
    expect(backoffDelay(30, p, () => 1)).to.equal(10_000);
    const spread = new Set(Array.from({ length: 20 }, () => backoffDelay(4, p)));
    expect(spread.size).to.be.greaterThan(1);
  });

  it('no jitter (the command poller) is the capped exponential itself, and a huge attempt count stays finite', () => {
    const p = { baseMs: 500, maxMs: 30_000, jitter: 'none' as const };
    expect([1, 2, 5, 6, 1000].map((a) => backoffDelay(a, p))).to.deep.equal([1000, 2000, 16_000, 30_000, 30_000]);
    expect(Number.isFinite(backoffDelay(1e9, { baseMs: 1 }, () => 1))).to.equal(true);
  });
});

describe('retry: sleep', () => {
  it('an abort cuts the sleep short, and an aborted signal does not sleep at all', async () => {
    const ac = new AbortController();
    const started = Date.now();
    setTimeout(() => ac.abort(), 20);
    await sleep(10_000, ac.signal);
    await sleep(10_000, ac.signal);
    expect(Date.now() - started).to.be.below(2000);
  });
});

describe('retry: unprocessed items', () => {
  it('calls again with only what was left unprocessed until nothing is left', async () => {
    const calls: number[][] = [];
    const left = await retryUnprocessed([1, 2, 3, 4], async (pending) => (calls.push([...pending]), pending.slice(1)), { attempts: 10, backoff: { baseMs: 1 } });
    expect(left).to.deep.equal([]);
    expect(calls).to.deep.equal([[1, 2, 3, 4], [2, 3, 4], [3, 4], [4]]);
  });

  it('gives up after the given number of calls and returns what is still unprocessed', async () => {
    let calls = 0;
    const left = await retryUnprocessed(['a', 'b'], async (pending) => (calls++, pending), { attempts: 3, backoff: { baseMs: 1 } });
    expect([calls, left]).to.deep.equal([3, ['a', 'b']]);
  });
});
