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

  const setOwner = (owner: string) =>
    doc.send(new PutCommand({ TableName: names.upstreams, Item: { socketId: 's1', owner, desired: 'open', leaseExpiresAt: Date.now() + 60_000 } }));

  it('writes while the guard holds, and refuses (without retrying) once the owner changed', async () => {
    await setOwner('agent-a');
    const guard = leases.ownerGuard('s1', 'agent-a');
    const first = await store.write('platform:p:1', { v: 1 }, { guard });
    expect(first.seq).to.equal(1);

    await setOwner('agent-b');
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
    const next = await store.write('platform:p:1', { v: 2 }, { guard: leases.ownerGuard('s1', 'agent-b') });
    expect(next.seq).to.equal(2);
  });

  it('still retries an ordinary seq conflict when the guard holds', async () => {
    await setOwner('agent-a');
    await store.write('platform:p:2', { v: 1 });
    await store.write('platform:p:2', { v: 2 }); // another writer moved the seq to 2
    const rec = await store.write('platform:p:2', { v: 3 }, { guard: leases.ownerGuard('s1', 'agent-a'), expectedSeq: 1 });
    expect(rec.seq).to.equal(3);
  });
});
