import { expect } from 'chai';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { createTables } from '../../../local/bootstrap';
import { GuardFailedError, ItemStore } from '../../../lib/stores/items';
import { LeaseTable } from '../../../lib/upstream/leases';
import { LOCAL_CREDENTIALS, testDynamoEndpoint, uniquePrefix } from '../../support/env';

/**
 * A write guarded by "this agent still owns the socket" happens in the same transaction as the
 * item and history writes: once another agent owns the row, a late write from the old owner
 * changes nothing — no new seq, no history row — and is not retried.
 */
describe('ItemStore write guard (lease ownership checked in the same transaction)', () => {
  let raw: DynamoDBClient;
  let doc: DynamoDBDocumentClient;
  let names: Awaited<ReturnType<typeof createTables>>['names'];
  let store: ItemStore;
  let leases: LeaseTable;
  before(async () => {
    raw = new DynamoDBClient({ endpoint: testDynamoEndpoint(), region: 'us-east-1', credentials: LOCAL_CREDENTIALS });
    doc = DynamoDBDocumentClient.from(raw);
    ({ names } = await createTables(raw, uniquePrefix()));
    store = new ItemStore(doc, { itemsTable: names.items, historyTable: names.history, historyTtlSeconds: 3600 });
    leases = new LeaseTable(doc, names.upstreams);
  });
  after(() => raw.destroy());

  // leaseExpiresAt holds the owner's epoch (lib/upstream/leases.ts).
  const A = { owner: 'agent-a', epoch: 1_000_000_000_000_001 };
  const B = { owner: 'agent-b', epoch: 1_000_000_000_000_002 };
  const setOwner = (f: { owner: string; epoch: number }) =>
    doc.send(new PutCommand({ TableName: names.upstreams, Item: { socketId: 's1', owner: f.owner, desired: 'open', leaseExpiresAt: f.epoch } }));

  it('writes while the guard holds, and refuses (without retrying) once the owner changed', async () => {
    await setOwner(A);
    const guard = leases.ownerGuard('s1', A);
    const first = await store.write('platform:p:1', { v: 1 }, { guard });
    expect(first.seq).to.equal(1);

    await setOwner(B);
    let err: unknown;
    try {
      await store.write('platform:p:1', { v: 'late' }, { guard, expectedSeq: 1 });
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(GuardFailedError);
    expect((err as GuardFailedError).code).to.equal('guard_failed');

    const item = await doc.send(new GetCommand({ TableName: names.items, Key: { topic: 'platform:p:1' }, ConsistentRead: true }));
    expect(item.Item).to.include({ seq: 1 });
    expect(item.Item!.data).to.deep.equal({ v: 1 });
    const hist = await doc.send(
      new QueryCommand({ TableName: names.history, KeyConditionExpression: 'topic = :t', ExpressionAttributeValues: { ':t': 'platform:p:1' }, ConsistentRead: true }),
    );
    expect(hist.Items!.map((h) => h.seq)).to.deep.equal([1]);

    // The new owner's guard holds: its writes go on from seq 1.
    const next = await store.write('platform:p:1', { v: 2 }, { guard: leases.ownerGuard('s1', B) });
    expect(next.seq).to.equal(2);
  });

  it('refuses the write of an earlier epoch of the same owner (an agent that lost its heartbeat and started again)', async () => {
    await setOwner({ owner: 'agent-a', epoch: A.epoch + 10 });
    let err: unknown;
    try {
      await store.write('platform:p:3', { v: 'old life' }, { guard: leases.ownerGuard('s1', A) });
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(GuardFailedError);
  });

  it('still retries an ordinary seq conflict when the guard holds', async () => {
    await setOwner(A);
    await store.write('platform:p:2', { v: 1 });
    await store.write('platform:p:2', { v: 2 }); // another writer moved the seq to 2
    const rec = await store.write('platform:p:2', { v: 3 }, { guard: leases.ownerGuard('s1', A), expectedSeq: 1 });
    expect(rec.seq).to.equal(3);
  });
});
