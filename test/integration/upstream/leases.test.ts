import { expect } from 'chai';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { LeaseManager } from '../../../ec2-agent/lease-manager';
import { Metrics } from '../../../ec2-agent/metrics';
import { silentLogger } from '../../../lib/log';
import { HeartbeatTable } from '../../../lib/upstream/heartbeats';
import { LeaseTable, type Fence } from '../../../lib/upstream/leases';
import { UpstreamStore } from '../../../lib/upstream/store';
import { socketIdOf } from '../../../lib/upstream/socket-id';
import { startHarness, type Harness } from './harness';

describe('upstream ownership: agent heartbeats and fenced socket rows (DynamoDB Local)', () => {
  let h: Harness;
  let leases: LeaseTable;
  let beats: HeartbeatTable;
  let store: UpstreamStore;
  const LEASE = 1000;
  let n = 0;
  const newSocket = async (now: number) => {
    const p = { internalID: `lease-${n++}`, interWorkingInterface: 'ws://127.0.0.1:9/', platformID: 'acme' };
    const id = socketIdOf(p);
    await store.requestOpen(id, { ...p, topic: 't', secretRef: 'ref' }, now);
    return id;
  };
  const agent = async (owner: string, now: number): Promise<Fence> => ({ owner, epoch: await beats.register(owner, now, LEASE) });

  before(async () => {
    h = await startHarness();
    leases = new LeaseTable(h.clients.doc, h.tables.upstreams);
    beats = new HeartbeatTable(h.clients.doc, h.tables.upstreams);
    store = new UpstreamStore(h.clients.doc, h.tables.upstreams);
  });
  after(async () => h.stop());

  it('a socket of a live agent cannot be taken; once its heartbeat expires it passes to one new owner and epoch', async () => {
    const id = await newSocket(1000);
    const a = await agent('A', 1000);
    const b = await agent('B', 1000);
    expect(await leases.claim(id, a, 1000)).to.include({ owner: 'A', leaseExpiresAt: a.epoch, status: 'connecting' });
    expect(await leases.claim(id, b, 1500)).to.equal(undefined); // owned
    expect(await leases.claim(id, b, 1500, a.epoch)).to.equal(undefined); // A's heartbeat is live
    expect(await beats.beat(a.epoch, 1900, LEASE, [])).to.deep.equal({ ok: true, closeHints: [] });
    expect(await leases.claim(id, b, 2899, a.epoch)).to.equal(undefined); // renewed to 2900
    expect(await leases.claim(id, b, 2901, a.epoch)).to.include({ owner: 'B', leaseExpiresAt: b.epoch });
    // A's expired heartbeat cannot be renewed, and every write fenced by A's epoch is refused.
    expect(await beats.beat(a.epoch, 2902, LEASE, [])).to.deep.equal({ ok: false });
    expect(await leases.addCounters(id, a, { messagesIn: 1 })).to.equal('refused');
    expect(await leases.release(id, a, 2902, 'pending')).to.equal(false);
    // Same owner name, other epoch (the agent's next life): refused too.
    expect(await leases.release(id, { owner: 'B', epoch: b.epoch + 1 }, 2902, 'pending')).to.equal(false);
    expect(await leases.addCounters(id, b, { messagesIn: 2 })).to.equal('ok');
    expect(await store.get(id)).to.include({ owner: 'B', messagesIn: 2 });
  });

  it('concurrent claims and concurrent take-overs: exactly one wins', async () => {
    const id = await newSocket(1000);
    const fences = await Promise.all(['A', 'B', 'C', 'D', 'E'].map((o) => agent(o, 1000)));
    const rs = await Promise.all(fences.map((f) => leases.claim(id, f, 1000)));
    expect(rs.filter(Boolean)).to.have.length(1);
    const first = fences[rs.findIndex(Boolean)];
    const next = await Promise.all(['F', 'G', 'H'].map((o) => agent(o, 5000)));
    const taken = await Promise.all(next.map((f) => leases.claim(id, f, 5000, first.epoch)));
    expect(taken.filter(Boolean)).to.have.length(1);
  });

  it('claims many in batched transactions: a refused claim leaves the others claimed; a takeover batch needs the epoch expired', async () => {
    const ids: string[] = [];
    while (ids.length < 130) ids.push(...(await Promise.all(Array.from({ length: 10 }, () => newSocket(1000)))));
    const a = await agent('A', 1000);
    const b = await agent('B', 1000);
    // Two already taken by B, one closed: the other 127 go to A, across two transactions.
    await leases.claim(ids[5], b, 1000);
    await leases.claim(ids[120], b, 1000);
    await store.requestClose(ids[60], 1000);
    const claimed = await leases.claimMany(ids, a, 1000);
    expect([...claimed].sort()).to.deep.equal(ids.filter((_, i) => ![5, 60, 120].includes(i)).sort());
    const rows = await leases.readRows(claimed);
    expect(rows).to.have.length(127);
    expect(rows.every((r) => r.owner === 'A' && r.leaseExpiresAt === a.epoch && r.topic === 't' && r.secretRef === 'ref')).to.equal(true);
    expect((await store.get(ids[5]))!.owner).to.equal('B');
    // A's heartbeat is live: B takes none of them; once it expired, B takes them all.
    expect(await leases.claimMany(ids, b, 1500, a.epoch)).to.deep.equal([]);
    const taken = await leases.claimMany(ids, b, 2500, a.epoch);
    expect(taken).to.have.length(127);
    expect((await leases.readRows(taken)).every((r) => r.owner === 'B' && r.leaseExpiresAt === b.epoch)).to.equal(true);
  });

  it('hands sockets of an expired epoch back to the unowned pool (pending), never a live agent\'s; what does not count leaves the index limit free', async () => {
    const ids = await Promise.all(Array.from({ length: 4 }, () => newSocket(1000)));
    const a = await agent('A', 1000);
    const b = await agent('B', 1000);
    for (const id of ids.slice(0, 3)) await leases.claim(id, a, 1000);
    await leases.claim(ids[3], b, 1000);
    // A is live: nothing moves.
    expect(await leases.handBack(ids.slice(0, 2), a.epoch, 1500)).to.deep.equal([]);
    expect((await store.get(ids[0]))!.owner).to.equal('A');
    // Expired: A's two go back; B's socket, not A's, is refused and stays B's.
    expect((await leases.handBack([ids[0], ids[1], ids[3]], a.epoch, 2500)).sort()).to.deep.equal([ids[0], ids[1]].sort());
    for (const id of ids.slice(0, 2)) expect(await store.get(id)).to.include({ status: 'pending', isActive: false, leaseExpiresAt: 0, owner: undefined });
    expect((await store.get(ids[3]))!.owner).to.equal('B');
    // Claimable again; an id that does not count does not use up the limit.
    const unowned = await leases.claimable(2500, 1, (id) => id !== ids[0]);
    expect(unowned).to.include(ids[1]);
    const owned = await leases.ownedBy(a.epoch, 1, (id) => id !== ids[2]);
    expect(owned).to.deep.equal([ids[2]]);
    expect(await leases.claim(ids[0], b, 2500)).to.include({ owner: 'B' });
  });

  it('a counter write finds a DELETE (unwanted); release keeps the row indexed; a closed socket is never claimed', async () => {
    const id = await newSocket(1000);
    const a = await agent('A', 1000);
    const b = await agent('B', 1000);
    await leases.claim(id, a, 1000);
    await store.requestClose(id, 1100);
    expect(await leases.addCounters(id, a, { messagesIn: 1 })).to.equal('unwanted');
    expect(await leases.claim(id, b, 5000, a.epoch)).to.equal(undefined); // desired closed
    expect(await leases.release(id, a, 1300, 'closed', { messagesIn: 1 })).to.equal(true);
    const row = (await store.get(id))!;
    expect(row).to.include({ status: 'closed', leaseExpiresAt: 0, isActive: false, messagesIn: 1 });
    expect(row.owner).to.equal(undefined);
  });

  it('claimable lists unowned desired-open sockets; ownedBy lists an epoch\'s; a failed socket leaves the index until a new POST', async () => {
    const free = await newSocket(1000);
    const held = await newSocket(1000);
    const failed = await newSocket(1000);
    const a = await agent('A', 1000);
    const b = await agent('B', 1000);
    await leases.claim(held, a, 1000);
    await leases.claim(failed, a, 1000);
    await leases.fail(failed, a, 1100, 'countErr 3');
    const ids = await leases.claimable(10_000, 1000);
    expect(ids).to.include(free);
    expect(ids).to.not.include(held);
    expect(ids).to.not.include(failed);
    expect(await leases.ownedBy(a.epoch, 1000)).to.deep.equal([held]);
    expect(await leases.claim(failed, b, 10_000)).to.equal(undefined);
    const row = (await store.get(failed))!;
    await store.requestOpen(failed, { ...row, topic: row.topic, secretRef: row.secretRef }, 11_000);
    expect(await leases.claimable(12_000, 1000)).to.include(failed);
    expect(await leases.claim(failed, b, 12_000)).to.include({ owner: 'B', countErr: 0 });
  });

  it('expired lists agents whose heartbeat ran out; a close hint reaches the owner with its next heartbeat until handled', async () => {
    const a = await agent('hint-A', 100_000);
    await beats.hint(a.epoch, 'sock-1');
    expect(await beats.beat(a.epoch, 100_100, LEASE, [])).to.deep.equal({ ok: true, closeHints: ['sock-1'] });
    expect(await beats.beat(a.epoch, 100_200, LEASE, ['sock-1'])).to.deep.equal({ ok: true, closeHints: [] });
    expect((await beats.expired(101_000)).map((x) => x.epoch)).to.not.include(a.epoch);
    expect((await beats.expired(101_300)).map((x) => x.epoch)).to.include(a.epoch);
    await beats.retire(a.epoch, 101_300);
    expect((await beats.expired(101_300)).map((x) => x.epoch)).to.not.include(a.epoch);
  });

  it('a row still owned under a per-socket lease from before heartbeats is claimed once that lease time has passed', async () => {
    const id = await newSocket(1000);
    await h.clients.doc.send(
      new UpdateCommand({ TableName: h.tables.upstreams, Key: { socketId: id }, UpdateExpression: 'SET #o = :old, leaseExpiresAt = :t', ExpressionAttributeNames: { '#o': 'owner' }, ExpressionAttributeValues: { ':old': 'old-agent', ':t': 5000 } }),
    );
    const b = await agent('B', 1000);
    expect(await leases.claim(id, b, 4999)).to.equal(undefined);
    expect(await leases.claimable(5001, 1000)).to.include(id);
    expect(await leases.claim(id, b, 5001)).to.include({ owner: 'B', leaseExpiresAt: b.epoch });
  });

  it('claimable pages through the index and stops at the limit', async () => {
    for (let i = 0; i < 5; i++) await newSocket(1000);
    expect(await leases.claimable(10_000, 3)).to.have.length(3);
  });

  it('claimed rows read back for their dials are split by what the table says now: ours, closed since the claim, taken since', async () => {
    const now = Date.now();
    const ids = await Promise.all(Array.from({ length: 3 }, () => newSocket(now)));
    const lm = new LeaseManager({ table: leases, heartbeats: beats, agentId: 'R', leaseMs: 60_000, renewMs: 10_000, clock: Date.now, metrics: new Metrics(), log: silentLogger });
    await lm.start();
    try {
      expect([...(await lm.claimMany(ids))].sort()).to.deep.equal([...ids].sort());
      const [kept, closed, taken] = ids;
      await store.requestClose(closed, Date.now());
      // Another owner since the claim (written directly: a live heartbeat cannot be taken over).
      await h.clients.doc.send(new UpdateCommand({ TableName: h.tables.upstreams, Key: { socketId: taken }, UpdateExpression: 'SET #o = :o, leaseExpiresAt = :e', ExpressionAttributeNames: { '#o': 'owner' }, ExpressionAttributeValues: { ':o': 'S', ':e': 42 } }));
      const r = await lm.claimedRows(ids);
      expect(r.ours.map((x) => x.socketId)).to.deep.equal([kept]);
      expect(r.ours[0]).to.include({ owner: 'R', topic: 't', secretRef: 'ref', desired: 'open' });
      expect(r.unwanted).to.deep.equal([closed]);
      expect(r.lost).to.deep.equal([taken]);
      // What is no longer ours is no longer held; what is ours but closed stays held until released.
      expect([lm.has(kept), lm.has(closed), lm.has(taken)]).to.deep.equal([true, true, false]);
    } finally {
      // end() too: stop() leaves the local deadline's timer armed (tens of seconds here), which
      // would keep mocha from exiting after a run that ends with this file.
      await lm.stop();
      await lm.end();
    }
  });
});
