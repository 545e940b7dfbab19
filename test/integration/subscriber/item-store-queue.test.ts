import { expect } from 'chai';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { createTables } from '../../../local/bootstrap';
import { ItemStore } from '../../../lib/stores/items';
import { InvalidDataError } from '../../../lib/stores/json-data';
import { LOCAL_CREDENTIALS, testDynamoEndpoint, uniquePrefix } from '../../support/env';

/**
 * Concurrent writes of one topic through one store (invocations sharing a process) go one after
 * the other in call order: none conflicts with another, so none needs a retry, and the seqs follow
 * the calls. A failed write does not hold up or fail the writes queued behind it.
 */
describe('ItemStore writes of one topic from one store', () => {
  let raw: DynamoDBClient;
  let doc: DynamoDBDocumentClient;
  let names: Awaited<ReturnType<typeof createTables>>['names'];
  // One attempt: a write that met a concurrent one would fail with write_conflict.
  let store: ItemStore;
  before(async () => {
    raw = new DynamoDBClient({ endpoint: testDynamoEndpoint(), region: 'us-east-1', credentials: LOCAL_CREDENTIALS });
    doc = DynamoDBDocumentClient.from(raw);
    ({ names } = await createTables(raw, uniquePrefix()));
    store = new ItemStore(doc, { itemsTable: names.items, historyTable: names.history, historyTtlSeconds: 3600, maxAttempts: 1 });
  });
  after(() => raw.destroy());

  const history = async (topic: string) =>
    (
      await doc.send(
        new QueryCommand({ TableName: names.history, KeyConditionExpression: 'topic = :t', ExpressionAttributeValues: { ':t': topic }, ConsistentRead: true }),
      )
    ).Items!.map((h) => [h.seq, (h.data as { n: number }).n]);

  it('takes 20 concurrent writes without a conflict, seqs in call order', async () => {
    const recs = await Promise.all(Array.from({ length: 20 }, (_, n) => store.write('queue:a', { n })));
    expect(recs.map((r) => r.seq)).to.deep.equal(Array.from({ length: 20 }, (_, n) => n + 1));
    expect(await history('queue:a')).to.deep.equal(Array.from({ length: 20 }, (_, n) => [n + 1, n]));
  });

  it('goes on with the queued writes after one fails', async () => {
    const first = store.write('queue:b', { n: 0 });
    const bad = store.write('queue:b', { n: 2 ** 60 });
    const last = store.write('queue:b', { n: 1 });
    await first;
    let err: unknown;
    await bad.catch((e) => (err = e));
    expect(err).to.be.instanceOf(InvalidDataError);
    expect((await last).seq).to.equal(2);
    expect(await history('queue:b')).to.deep.equal([
      [1, 0],
      [2, 1],
    ]);
  });

  it('stamps a queued write with the time it was called', async () => {
    let now = 1_000;
    const timed = new ItemStore(doc, { itemsTable: names.items, historyTable: names.history, historyTtlSeconds: 3600, clock: () => now });
    const a = timed.write('queue:c', { n: 0 });
    now = 2_000;
    const b = timed.write('queue:c', { n: 1 });
    now = 3_000;
    expect((await a).ts).to.equal(1_000);
    expect((await b).ts).to.equal(2_000);
  });
});
