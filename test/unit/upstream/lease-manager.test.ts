import { expect } from 'chai';
import { LeaseManager, RenewTimeoutError, type LostReason } from '../../../ec2-agent/lease-manager';
import { Metrics } from '../../../ec2-agent/metrics';
import { silentLogger, type Logger } from '../../../lib/log';
import type { BeatResult, HeartbeatTable } from '../../../lib/upstream/heartbeats';
import type { Fence, LeaseTable } from '../../../lib/upstream/leases';
import { waitFor } from '../../support/wait';

/**
 * The agent's heartbeat and its local deadline. The heartbeat table here is a stand-in whose
 * answers are scripted (the injected fault: a DynamoDB that hangs or refuses); the agent-level
 * scenario against DynamoDB Local and a real upstream is in
 * test/integration/upstream/lease-loss.test.ts.
 */

// Periods of the tests that assert no bound on time: short, to keep the file fast.
const LEASE = 1000;
const RENEW = 200;
/**
 * Periods of the tests that assert when the sockets go: "at the local deadline, before the
 * heartbeat could expire in the table" is one renew period wide, and a timer on a loaded CI
 * machine fires that late or a stalled loop answers that late; so that window is about a
 * second here, not the 200 ms that a slow run could overrun.
 */
const BOUNDED = { leaseMs: 3000, renewMs: 900 };
/** How early a timer may seem to fire by Date.now(): timers run on the monotonic clock, rounded to the ms, and the wall clock may be adjusted meanwhile. */
const EARLY_MS = 100;
/** Every manager a test made: stopped after each test, passed or failed (a live ticker keeps mocha from exiting). */
const made: LeaseManager[] = [];

type BeatFn = (epoch: number, handled: readonly string[], signal?: AbortSignal) => Promise<BeatResult>;

function setup(beat: BeatFn, log: Logger = silentLogger, periods = { leaseMs: LEASE, renewMs: RENEW }) {
  const lost: string[] = [];
  const hinted: string[] = [];
  const signals: AbortSignal[] = [];
  const claimedWith: Fence[] = [];
  let next = 1;
  const heartbeats = {
    register: async () => next++,
    beat: (epoch: number, _n: number, _l: number, handled: readonly string[], opts?: { abortSignal?: AbortSignal }) => {
      if (opts?.abortSignal) signals.push(opts.abortSignal);
      return beat(epoch, handled, opts?.abortSignal);
    },
    expireNow: async () => {},
  } as unknown as HeartbeatTable;
  const table = {
    claim: async (socketId: string, fence: Fence) => {
      claimedWith.push(fence);
      return { socketId };
    },
    release: async () => true,
    fail: async () => true,
  } as unknown as LeaseTable;
  const metrics = new Metrics();
  const lm = new LeaseManager({ table, heartbeats, agentId: 'a', ...periods, clock: Date.now, metrics, log });
  made.push(lm);
  lm.setHooks({
    takeDeltas: () => ({}),
    onLost: (id: string, why: LostReason) => lost.push(`${id}:${why}`),
    onCloseHint: async (id) => {
      hinted.push(id);
    },
  });
  return { lm, lost, hinted, signals, metrics, claimedWith };
}

const timeouts = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Settles never, and ignores the abort: the worst case for the heartbeat. */
const never = () => new Promise<BeatResult>(() => {});
/** Registered, with the periodic heartbeat stopped: the test calls beat() itself (the deadline timer stays). */
const manual = async (lm: LeaseManager) => {
  await lm.start();
  await lm.stop();
};
const ok = async (): Promise<BeatResult> => ({ ok: true, closeHints: [] });

describe('LeaseManager: one heartbeat per agent, local expiry of every socket', () => {
  afterEach(async () => {
    for (const lm of made.splice(0)) {
      await lm.stop();
      await lm.end();
    }
  });

  it('a heartbeat that never settles: every socket is lost as expired before the heartbeat could expire in the table', async () => {
    await Promise.resolve(); // mocha arms its own test timeout once the test returns its promise
    const timersBefore = timeouts();
    const { leaseMs, renewMs } = BOUNDED;
    const { lm, lost, signals, metrics } = setup(never, silentLogger, BOUNDED);
    const startedAt = Date.now();
    await lm.start();
    await lm.claim('s1');
    await lm.claim('s2');
    while (lost.length < 2 && Date.now() - startedAt < 4 * leaseMs) await sleep(5);
    const after = Date.now() - startedAt;
    expect(lost.sort()).to.deep.equal(['s1:expired', 's2:expired']);
    // One renew period before the table's expiry (the margin for clock skew), never after it;
    // not at the first unanswered heartbeat (one renew period in) either.
    expect(after).to.be.within(leaseMs - renewMs - EARLY_MS, leaseMs);
    expect(lm.size).to.equal(0);
    expect(metrics.snapshot().leasesLost).to.equal(2);
    // stop() waits for the heartbeat in flight, which its own bound (also at the deadline, and
    // as likely to fire just after the drop as just before) settles by aborting it.
    await lm.stop();
    expect(signals.length).to.be.greaterThan(0);
    expect(signals.filter((s) => s.aborted).length).to.be.greaterThan(0);
    // Stopped, the manager leaves no timer behind: end() clears the deadline.
    await lm.end();
    expect(timeouts()).to.equal(timersBefore);
  });

  it('a confirmed heartbeat keeps every socket through many lease periods, with no write per socket', async () => {
    // Beats ten times a lease: only a stall of about a second between two beats (not a test of
    // this code but a machine too loaded to run it) could let the deadline pass.
    const periods = { leaseMs: 1200, renewMs: 100 };
    const { lm, lost, claimedWith, metrics } = setup(ok, silentLogger, periods);
    await lm.start();
    for (let i = 0; i < 50; i++) await lm.claim(`s${i}`);
    await sleep(3 * periods.leaseMs);
    expect(metrics.snapshot().heartbeats, 'heartbeats confirmed').to.be.greaterThan(3);
    expect(lost).to.deep.equal([]);
    expect(lm.size).to.equal(50);
    expect(new Set(claimedWith.map((f) => f.epoch))).to.deep.equal(new Set([1]));
    await lm.stop();
    await lm.end();
  });

  it('a heartbeat that answers after the deadline does not revive the sockets; the next life has a new epoch', async () => {
    let answer: ((v: BeatResult) => void) | undefined;
    const { lm, lost } = setup((epoch) => (epoch === 1 ? new Promise<BeatResult>((r) => (answer ??= r)) : ok()));
    await manual(lm);
    await lm.claim('s');
    await lm.beat(); // times out at the local deadline (unconfirmed)
    // The deadline's own timer drops the sockets, just before or just after the beat gives up.
    await waitFor(() => lost.length > 0, 10_000, 'the sockets dropped at the deadline');
    expect(lost).to.deep.equal(['s:expired']);
    expect(lm.fence()).to.equal(undefined);
    expect(await lm.claim('t')).to.equal(undefined); // no epoch, no claim
    answer!({ ok: true, closeHints: [] });
    await sleep(5);
    expect(lm.has('s')).to.equal(false);
    await lm.beat(); // registers the next life
    expect(lm.fence()).to.deep.equal({ owner: 'a', epoch: 2 });
    await lm.end();
  });

  it('reports a heartbeat that times out as unconfirmed, with a named error', async () => {
    const warnings: { msg: string; fields?: Record<string, unknown> }[] = [];
    const log: Logger = { ...silentLogger, warn: (msg, fields) => warnings.push({ msg, fields }), child: () => log };
    const { leaseMs, renewMs } = BOUNDED;
    const { lm, lost, signals } = setup(never, log, BOUNDED);
    await manual(lm);
    await lm.claim('s');
    const started = Date.now();
    await lm.beat(); // settles at the local deadline although the heartbeat never does
    // At the local deadline: not before it, and before the heartbeat could expire in the table.
    expect(Date.now() - started).to.be.within(leaseMs - renewMs - EARLY_MS, leaseMs);
    expect(signals.map((sig) => sig.aborted)).to.deep.equal([true]);
    // The deadline's own "dropping every socket" warning may come just before or after.
    const failed = warnings.filter((w) => w.msg === 'heartbeat failed');
    expect(failed).to.have.length(1);
    const err = failed[0].fields?.err as RenewTimeoutError;
    expect(err).to.be.instanceOf(RenewTimeoutError);
    expect([err.name, err.code]).to.deep.equal(['RenewTimeoutError', 'renew_timeout']);
    expect(err.message).to.match(/^heartbeat did not answer within \d+ ms$/);
    await lm.end();
  });

  it('a refused heartbeat (the row says expired) drops every socket at once', async () => {
    const { lm, lost } = setup(async () => ({ ok: false }));
    await manual(lm);
    await lm.claim('r');
    await lm.claim('u');
    await lm.beat();
    expect(lost.sort()).to.deep.equal(['r:expired', 'u:expired']);
    expect(lm.size).to.equal(0);
    await lm.end();
  });

  it('close hints read back with a heartbeat are handled once and removed by the next heartbeat', async () => {
    const handledSeen: string[][] = [];
    let hints = ['x'];
    const { lm, hinted } = setup(async (_e, handled) => {
      handledSeen.push([...handled]);
      hints = hints.filter((h) => !handled.includes(h));
      return { ok: true, closeHints: hints };
    });
    await manual(lm);
    await lm.beat();
    await lm.beat();
    await lm.beat();
    expect(hinted).to.deep.equal(['x']);
    expect(handledSeen).to.deep.equal([[], ['x'], []]);
    await lm.end();
  });
});
