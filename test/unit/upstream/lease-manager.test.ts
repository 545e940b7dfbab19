import { expect } from 'chai';
import { LeaseManager, RenewTimeoutError, type LostReason } from '../../../ec2-agent/lease-manager';
import { Metrics } from '../../../ec2-agent/metrics';
import { silentLogger, type Logger } from '../../../lib/log';
import type { LeaseTable, RenewOutcome } from '../../../lib/upstream/leases';
import type { UpstreamCounters } from '../../../lib/upstream/row';

/**
 * Review finding 2: a renewal that never answers (a half-open connection to DynamoDB) must not
 * keep a lease "held" past its expiry. The table here is a stand-in whose renew is scripted per
 * socket; the agent-level scenario against DynamoDB Local and a real upstream is in
 * test/integration/upstream/lease-loss.test.ts.
 */

const LEASE = 300;
const RENEW = 60;

type RenewFn = (id: string, signal?: AbortSignal) => Promise<RenewOutcome>;

function setup(renew: RenewFn, log: Logger = silentLogger) {
  const lost: string[] = [];
  const signals: AbortSignal[] = [];
  const table = {
    claim: async (socketId: string) => ({ socketId }),
    renew: (id: string, _o: string, _n: number, _l: number, _d: unknown, opts?: { abortSignal?: AbortSignal }) => {
      if (opts?.abortSignal) signals.push(opts.abortSignal);
      return renew(id, opts?.abortSignal);
    },
    release: async () => true,
    fail: async () => true,
  } as unknown as LeaseTable;
  const metrics = new Metrics();
  const lm = new LeaseManager({ table, agentId: 'a', leaseMs: LEASE, renewMs: RENEW, clock: Date.now, metrics, log });
  lm.setHooks({ takeDeltas: () => ({}), restoreDeltas: () => {}, onLost: (id: string, why: LostReason) => lost.push(`${id}:${why}`) });
  return { lm, lost, signals, metrics };
}

const timeouts = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Settles never, and ignores the abort: the worst case for the renew loop. */
const never = () => new Promise<RenewOutcome>(() => {});

describe('LeaseManager: local expiry and bounded renewals', () => {
  it('a renewal that never settles: the lease is lost as expired before the table lets anyone else claim it', async () => {
    await Promise.resolve(); // mocha arms its own test timeout once the test returns its promise
    const timersBefore = timeouts();
    const { lm, lost, signals, metrics } = setup(never);
    const claimedAt = Date.now();
    await lm.claim('s');
    lm.start();
    while (!lost.length && Date.now() - claimedAt < 4 * LEASE) await sleep(10);
    const after = Date.now() - claimedAt;
    expect(lost).to.deep.equal(['s:expired']);
    // One renew period before the table's expiry (the margin for clock skew), never after it.
    expect(after).to.be.within(LEASE - RENEW - 5, LEASE);
    expect(lm.has('s')).to.equal(false);
    expect(metrics.snapshot().leasesLost).to.equal(1);
    // Every hung renewal was given an abort signal, and the ones that ran out were aborted.
    expect(signals.length).to.be.greaterThan(0);
    expect(signals.filter((s) => s.aborted).length).to.be.greaterThan(0);
    await lm.stop();
    await sleep(RENEW + 10); // let the last bounded renewal run out
    expect(timeouts()).to.equal(timersBefore);
  });

  it('one hung renewal does not hold up the others: a healthy lease stays held through many periods', async () => {
    const { lm, lost } = setup(async (id) => (id === 'hung' ? never() : 'renewed'));
    await lm.claim('hung');
    await lm.claim('ok');
    lm.start();
    await sleep(3 * LEASE);
    expect(lost).to.deep.equal(['hung:expired']);
    expect(lm.has('ok')).to.equal(true);
    await lm.stop();
    lm.clear();
  });

  it('a renewal that answers after the deadline does not revive the lease', async () => {
    let answer: ((v: RenewOutcome) => void) | undefined;
    const { lm, lost } = setup(() => new Promise<RenewOutcome>((r) => (answer ??= r)));
    await lm.claim('s');
    await lm.renewAll(); // times out after one renew period (unconfirmed)
    await sleep(LEASE);
    expect(lost).to.deep.equal(['s:expired']);
    answer!('renewed');
    await sleep(5);
    expect(lm.has('s')).to.equal(false);
  });

  it('reports a renewal that times out as unconfirmed, with a named error', async () => {
    const warnings: { msg: string; fields?: Record<string, unknown> }[] = [];
    const log: Logger = { ...silentLogger, warn: (msg, fields) => warnings.push({ msg, fields }), child: () => log };
    const { lm, lost, signals } = setup(never, log);
    await lm.claim('s');
    const started = Date.now();
    await lm.renewAll(); // settles although the renewal never does
    expect(Date.now() - started).to.be.at.least(RENEW - 5);
    // Unconfirmed is not lost: the lease stays held until its local deadline.
    expect(lost).to.deep.equal([]);
    expect(lm.has('s')).to.equal(true);
    expect(signals.map((sig) => sig.aborted)).to.deep.equal([true]);
    expect(warnings.map((w) => [w.msg, w.fields?.socketId])).to.deep.equal([['lease renewal failed', 's']]);
    const err = warnings[0].fields?.err;
    expect(err).to.be.instanceOf(RenewTimeoutError);
    expect([(err as RenewTimeoutError).name, (err as RenewTimeoutError).code]).to.deep.equal(['RenewTimeoutError', 'renew_timeout']);
    expect((err as RenewTimeoutError).message).to.equal(`lease renewal did not answer within ${RENEW} ms`);
    lm.clear();
  });

  it('passes the renewal outcome on: refused and unwanted leases are lost at once', async () => {
    const { lm, lost } = setup(async (id) => (id === 'r' ? 'refused' : 'unwanted'));
    await lm.claim('r');
    await lm.claim('u');
    await lm.renewAll();
    expect(lost.sort()).to.deep.equal(['r:refused', 'u:unwanted']);
    expect(lm.size).to.equal(0);
  });
});

/**
 * Review 2 finding 4: counter deltas taken for a renewal reach the row exactly when the renewal
 * is confirmed; otherwise they are given back, before the loss is reported, so the release
 * that may follow (a DELETE's `unwanted`) carries them.
 */
describe('LeaseManager: counter deltas of a renewal', () => {
  function counting(outcome: (written: Partial<UpstreamCounters>) => Promise<RenewOutcome>) {
    let pending: Partial<UpstreamCounters> = {};
    const onRow = { messagesIn: 0 };
    const atLoss: { why: LostReason; pending: number }[] = [];
    const table = {
      claim: async (socketId: string) => ({ socketId }),
      renew: (_id: string, _o: string, _n: number, _l: number, d: Partial<UpstreamCounters>) => outcome(d),
      release: async () => true,
      fail: async () => true,
    } as unknown as LeaseTable;
    const lm = new LeaseManager({ table, agentId: 'a', leaseMs: LEASE, renewMs: RENEW, clock: Date.now, metrics: new Metrics(), log: silentLogger });
    lm.setHooks({
      takeDeltas: () => {
        const d = pending;
        pending = {};
        return d;
      },
      restoreDeltas: (_id, d) => {
        pending = { messagesIn: (pending.messagesIn ?? 0) + (d.messagesIn ?? 0) };
      },
      onLost: (_id, why) => atLoss.push({ why, pending: pending.messagesIn ?? 0 }),
    });
    const add = (n: number) => (pending = { messagesIn: (pending.messagesIn ?? 0) + n });
    return { lm, onRow, atLoss, add, pending: () => pending.messagesIn ?? 0 };
  }

  it('a confirmed renewal writes them once and keeps nothing back', async () => {
    const c = counting(async (d) => {
      c.onRow.messagesIn += d.messagesIn ?? 0;
      return 'renewed';
    });
    await c.lm.claim('s');
    c.add(5);
    await c.lm.renewAll();
    expect([c.onRow.messagesIn, c.pending()]).to.deep.equal([5, 0]);
    c.lm.clear();
  });

  for (const outcome of ['refused', 'unwanted'] as const) {
    it(`a renewal answered "${outcome}" (a condition failure: nothing written) gives them back before reporting the loss`, async () => {
      const c = counting(async () => outcome);
      await c.lm.claim('s');
      c.add(5);
      await c.lm.renewAll();
      expect(c.atLoss).to.deep.equal([{ why: outcome, pending: 5 }]);
      expect(c.pending()).to.equal(5);
    });
  }

  it('an unconfirmed renewal (timed out; it may have landed) gives them back: counted twice at worst, never lost', async () => {
    const c = counting(never);
    await c.lm.claim('s');
    c.add(5);
    await c.lm.renewAll(); // times out after one renew period
    expect(c.pending()).to.equal(5);
    c.lm.clear();
  });

  it('a renewal that fails (network error) gives them back', async () => {
    const c = counting(async () => {
      throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    });
    await c.lm.claim('s');
    c.add(3);
    await c.lm.renewAll();
    expect(c.pending()).to.equal(3);
    c.lm.clear();
  });
});
