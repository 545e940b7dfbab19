import { expect } from 'chai';
import { LeaseTable } from '../../../lib/upstream/leases';
import { UpstreamStore } from '../../../lib/upstream/store';
import { socketIdOf } from '../../../lib/upstream/socket-id';
import { startHarness, type Harness } from './harness';

describe('upstream leases (conditional writes on DynamoDB Local)', () => {
  let h: Harness;
  let leases: LeaseTable;
  let store: UpstreamStore;
  const LEASE = 1000;
  let n = 0;
  const newSocket = async (now: number) => {
    const p = { internalID: `lease-${n++}`, interWorkingInterface: 'ws://127.0.0.1:9/', platformID: 'acme' };
    const id = socketIdOf(p);
    await store.requestOpen(id, { ...p, topic: 't', secretRef: 'ref' }, now);
    return id;
  };

  before(async () => {
    h = await startHarness();
    leases = new LeaseTable(h.clients.doc, h.tables.upstreams);
    store = new UpstreamStore(h.clients.doc, h.tables.upstreams);
  });
  after(async () => h.stop());

  it('one owner at a time: a live lease refuses other claimants; an expired one passes to the next', async () => {
    const id = await newSocket(1000);
    expect(await leases.claim(id, 'A', 1000, LEASE)).to.include({ owner: 'A', leaseExpiresAt: 2000, status: 'connecting' });
    expect(await leases.claim(id, 'B', 1999, LEASE)).to.equal(undefined);
    expect(await leases.claim(id, 'A', 1500, LEASE)).to.include({ owner: 'A' }); // re-claim by the owner
    expect(await leases.renew(id, 'A', 1600, LEASE)).to.equal('renewed');
    expect(await leases.claim(id, 'B', 2599, LEASE)).to.equal(undefined);
    expect(await leases.claim(id, 'B', 2601, LEASE)).to.include({ owner: 'B' });
    // The old owner's renewal and release are refused from now on.
    expect(await leases.renew(id, 'A', 2602, LEASE)).to.equal('refused');
    expect(await leases.release(id, 'A', 2602, 'pending')).to.equal(false);
    expect((await store.get(id))!.owner).to.equal('B');
  });

  it('concurrent claims: exactly one wins', async () => {
    const id = await newSocket(1000);
    const rs = await Promise.all(['A', 'B', 'C', 'D', 'E'].map((o) => leases.claim(id, o, 1000, LEASE)));
    expect(rs.filter(Boolean)).to.have.length(1);
  });

  it('renewal fails once the socket is no longer desired open; release keeps the row indexed', async () => {
    const id = await newSocket(1000);
    await leases.claim(id, 'A', 1000, LEASE);
    await store.requestClose(id, 1100);
    expect(await leases.renew(id, 'A', 1200, LEASE)).to.equal('unwanted');
    expect(await leases.claim(id, 'B', 5000, LEASE)).to.equal(undefined); // desired closed
    expect(await leases.release(id, 'A', 1300, 'closed')).to.equal(true);
    const row = (await store.get(id))!;
    expect(row).to.include({ status: 'closed', leaseExpiresAt: 0, isActive: false });
    expect(row.owner).to.equal(undefined);
  });

  it('claimable lists desired-open sockets with expired leases; a failed socket leaves the index until a new POST', async () => {
    const free = await newSocket(1000);
    const held = await newSocket(1000);
    const failed = await newSocket(1000);
    await leases.claim(held, 'A', 1000, 1_000_000_000);
    await leases.claim(failed, 'A', 1000, LEASE);
    await leases.fail(failed, 'A', 1100, 'countErr 3');
    const ids = await leases.claimable(10_000, 1000);
    expect(ids).to.include(free);
    expect(ids).to.not.include(held);
    expect(ids).to.not.include(failed);
    expect(await leases.claim(failed, 'B', 10_000, LEASE)).to.equal(undefined);
    const row = (await store.get(failed))!;
    await store.requestOpen(failed, { ...row, topic: row.topic, secretRef: row.secretRef }, 11_000);
    expect(await leases.claimable(12_000, 1000)).to.include(failed);
    expect(await leases.claim(failed, 'B', 12_000, LEASE)).to.include({ owner: 'B', countErr: 0 });
  });

  it('claimable pages through the index and stops at the limit', async () => {
    for (let i = 0; i < 5; i++) await newSocket(1000);
    expect(await leases.claimable(10_000, 3)).to.have.length(3);
  });
});
