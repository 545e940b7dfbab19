import { expect } from 'chai';
import { CLAIM_BATCHES_IN_FLIGHT, CLAIM_WAVE, ReconcileLoop } from '../../../ec2-agent/reconcile';
import { silentLogger } from '../../../lib/log';
import type { HeartbeatTable } from '../../../lib/upstream/heartbeats';
import type { LeaseTable } from '../../../lib/upstream/leases';
import { CLAIM_BATCH } from '../../../lib/upstream/leases';

/**
 * The order of a reconcile pass's claims and dials. The tables are stand-ins (the claim
 * transactions themselves are tested against DynamoDB Local in
 * test/integration/upstream/leases.test.ts and claims.test.ts); what is checked here is which
 * claims and dials may be in flight together.
 */
describe('ReconcileLoop: a wave of sockets is claimed before any of its dials starts', () => {
  const tick = () => new Promise((r) => setImmediate(r));

  function setup(unowned: string[], room = Infinity) {
    const events: string[] = [];
    const claimsInFlight = { now: 0, max: 0 };
    let held = 0;
    const answers: (() => void)[] = [];
    const loop = new ReconcileLoop({
      table: { claimable: async () => unowned } as unknown as LeaseTable,
      heartbeats: { expired: async () => [] } as unknown as HeartbeatTable,
      reconcileMs: 60_000,
      clock: Date.now,
      room: () => room - held,
      epoch: () => 1,
      holdsTwin: () => false,
      onWaiting: () => {},
      claimMany: async (ids) => {
        events.push(`claim ${ids[0]}`);
        held += ids.length; // reserved when claimed, as the supervisor does
        claimsInFlight.max = Math.max(claimsInFlight.max, ++claimsInFlight.now);
        // Answered when the test says so.
        await new Promise<void>((r) => answers.push(r));
        claimsInFlight.now--;
        events.push(`claimed ${ids[0]}`);
        return {
          dial: async () => {
            events.push(`dial ${ids[0]}`);
            return ids.length;
          },
        };
      },
      log: silentLogger,
    });
    return { loop, events, claimsInFlight, answerAll: () => answers.splice(0).forEach((r) => r()) };
  }

  const ids = (n: number) => Array.from({ length: n }, (_, i) => `s${String(i).padStart(5, '0')}`);

  it('dials nothing of a wave until every claim of the wave is answered, then dials it all', async () => {
    const all = ids(CLAIM_WAVE);
    const { loop, events, claimsInFlight, answerAll } = setup(all);
    const pass = loop.runOnce();
    let answered = 0;
    while (answered < CLAIM_WAVE / CLAIM_BATCH) {
      await tick();
      expect(events.filter((e) => e.startsWith('dial')), 'no dial while claims of the wave are open').to.deep.equal([]);
      answered += events.filter((e) => e.startsWith('claim ')).length - answered;
      answerAll();
    }
    await pass;
    const firstDial = events.findIndex((e) => e.startsWith('dial'));
    expect(events.slice(0, firstDial).filter((e) => e.startsWith('claimed'))).to.have.length(CLAIM_WAVE / CLAIM_BATCH);
    expect(events.filter((e) => e.startsWith('dial'))).to.have.length(CLAIM_WAVE / CLAIM_BATCH);
    expect(claimsInFlight.max).to.equal(CLAIM_BATCHES_IN_FLIGHT);
  });

  it('a pass larger than a wave dials the first wave before it claims the whole pass', async () => {
    const all = ids(2 * CLAIM_WAVE + CLAIM_BATCH);
    const { loop, events, answerAll } = setup(all);
    const pass = loop.runOnce();
    while (events.filter((e) => e.startsWith('claimed')).length < all.length / CLAIM_BATCH) {
      await tick();
      answerAll();
    }
    await pass;
    const dialsOf = (from: number) => events.filter((e) => e === `dial ${all[from]}`).length;
    const at = (e: string) => events.indexOf(e);
    // Wave 1 dials after its last claim is answered and before the last claim of wave 2.
    expect(at(`dial ${all[0]}`)).to.be.greaterThan(at(`claimed ${all[CLAIM_WAVE - CLAIM_BATCH]}`));
    expect(at(`dial ${all[0]}`)).to.be.lessThan(at(`claimed ${all[2 * CLAIM_WAVE - CLAIM_BATCH]}`));
    // Every batch of every wave is dialled once, the last (partial) wave too.
    for (let i = 0; i < all.length; i += CLAIM_BATCH) expect(dialsOf(i), all[i]).to.equal(1);
  });

  it('claims no more than the room left: a batch is not sent once the room is used', async () => {
    const all = ids(CLAIM_WAVE);
    const { loop, events, answerAll } = setup(all, 3 * CLAIM_BATCH);
    const pass = loop.runOnce();
    for (let i = 0; i < 20; i++) {
      await tick();
      answerAll();
    }
    await pass;
    expect(events.filter((e) => e.startsWith('claim '))).to.have.length(3);
    expect(events.filter((e) => e.startsWith('dial'))).to.have.length(3);
  });
});
