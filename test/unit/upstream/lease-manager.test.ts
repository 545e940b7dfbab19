import { expect } from 'chai';
import { LeaseManager, RenewTimeoutError, type LostReason } from '../../../ec2-agent/lease-manager';
import { Metrics } from '../../../ec2-agent/metrics';
import { silentLogger, type Logger } from '../../../lib/log';
import type { BeatResult, HeartbeatTable } from '../../../lib/upstream/heartbeats';
import type { Fence, LeaseTable } from '../../../lib/upstream/leases';

/**
 * The agent's heartbeat and its local deadline. The heartbeat table here is a stand-in whose
 * answers are scripted (the injected fault: a DynamoDB that hangs or refuses); the agent-level
 * scenario against DynamoDB Local and a real upstream is in
 * test/integration/upstream/lease-loss.test.ts.
 */

// Periods long enough that a timer firing late on a loaded machine stays inside the margin the
// tests assert (one renew period), short enough to keep the file fast.
const LEASE = 1000;
const RENEW = 200;
/** Every manager a test made: stopped after each test, passed or failed (a live ticker keeps mocha from exiting). */
const made: LeaseManager[] = [];

type BeatFn = (epoch: number, handled: readonly string[], signal?: AbortSignal) => Promise<BeatResult>;

function setup(beat: BeatFn, log: Logger = silentLogger) {
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
  const lm = new LeaseManager({ table, heartbeats, agentId: 'a', leaseMs: LEASE, renewMs: RENEW, clock: Date.now, metrics, log });
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
    const { lm, lost, signals, metrics } = setup(never);
    const startedAt = Date.now();
    await lm.start();
    await lm.claim('s1');
    await lm.claim('s2');
    while (lost.length < 2 && Date.now() - startedAt < 4 * LEASE) await sleep(5);
    const after = Date.now() - startedAt;
    expect(lost.sort()).to.deep.equal(['s1:expired', 's2:expired']);
    // One renew period before the table's expiry (the margin for clock skew), never after it.
    expect(after).to.be.within(LEASE - RENEW - 5, LEASE);
    expect(lm.size).to.equal(0);
    expect(metrics.snapshot().leasesLost).to.equal(2);
    expect(signals.length).to.be.greaterThan(0);
    expect(signals.filter((s) => s.aborted).length).to.be.greaterThan(0);
    await lm.stop();
    await lm.end();
    await sleep(RENEW + 10); // let the last bounded heartbeat run out
    expect(timeouts()).to.equal(timersBefore);
  });

  it('a confirmed heartbeat keeps every socket through many lease periods, with no write per socket', async () => {
    const { lm, lost, claimedWith } = setup(ok);
    await lm.start();
    for (let i = 0; i < 50; i++) await lm.claim(`s${i}`);
    await sleep(3 * LEASE);
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
    await sleep(LEASE);
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
    const { lm, lost, signals } = setup(never, log);
    await manual(lm);
    await lm.claim('s');
    const started = Date.now();
    await lm.beat(); // settles at the local deadline although the heartbeat never does
    // At the local deadline: not before it, and before the heartbeat could expire in the table.
    expect(Date.now() - started).to.be.within(LEASE - RENEW - 20, LEASE);
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
