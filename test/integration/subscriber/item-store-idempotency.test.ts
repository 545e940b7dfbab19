import { expect } from 'chai';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, QueryCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { HttpHandlerOptions } from '@smithy/types';
import type { HttpRequest } from '@smithy/protocol-http';
import { createTables } from '../../../local/bootstrap';
import { ItemStore } from '../../../lib/stores/items';
import { LOCAL_CREDENTIALS, testDynamoEndpoint, uniquePrefix } from '../../support/env';

/**
 * ItemStore.write and a lost TransactWriteItems response: the transaction
 * commits, the response never reaches the SDK, the SDK retries the same request. Without an
 * idempotency token that retry fails its `seq = :prev` condition, the store re-reads, and writes
 * the same data again as seq + 1. DynamoDB Local honours ClientRequestToken like DynamoDB.
 *
 * Note: SDK v3 already fills ClientRequestToken (an `idempotencyToken` member) once per send(),
 * before its retry loop; ItemStore sets it explicitly per attempt so the guarantee does not rest
 * on that. The control case strips the token from the wire to show what it prevents.
 */

/** Forwards to a real handler; the first `lose` TransactWriteItems responses are "lost" after the commit. */
class LossyHandler extends NodeHttpHandler {
  lost = 0;
  transactRequests = 0;
  constructor(
    private lose: number,
    private readonly stripToken = false,
  ) {
    super();
  }
  override async handle(request: HttpRequest, options?: HttpHandlerOptions) {
    const transact = String(request.headers['x-amz-target'] ?? '').endsWith('.TransactWriteItems');
    if (transact && this.stripToken) {
      // Control only: the request as it would be without an idempotency token (DynamoDB Local
      // does not verify the payload signature, so the body can be rewritten after signing).
      const body = JSON.parse(new TextDecoder().decode(request.body as Uint8Array));
      delete body.ClientRequestToken;
      request.body = new TextEncoder().encode(JSON.stringify(body));
      request.headers['content-length'] = String((request.body as Uint8Array).byteLength);
    }
    const r = await super.handle(request, options);
    if (transact) {
      this.transactRequests++;
      if (this.lose > 0 && r.response.statusCode === 200) {
        this.lose--;
        this.lost++;
        // A reset socket after the server committed: transient, so the SDK retries the same request.
        throw Object.assign(new Error('socket hang up (simulated lost response)'), { code: 'ECONNRESET' });
      }
    }
    return r;
  }
}

describe('ItemStore idempotent commits (DynamoDB Local)', function () {
  this.timeout(30_000);
  let tables: Record<string, string>;
  const clients: DynamoDBClient[] = [];
  const docWith = (handler?: NodeHttpHandler) => {
    const c = new DynamoDBClient({
      endpoint: testDynamoEndpoint(),
      region: 'us-east-1',
      credentials: LOCAL_CREDENTIALS,
      ...(handler ? { requestHandler: handler } : {}),
    });
    clients.push(c);
    return DynamoDBDocumentClient.from(c, { marshallOptions: { removeUndefinedValues: true } });
  };
  const store = (doc: DynamoDBDocumentClient) =>
    new ItemStore(doc, { itemsTable: tables.items, historyTable: tables.history, historyTtlSeconds: 3600 });

  before(async () => {
    const ddb = new DynamoDBClient({ endpoint: testDynamoEndpoint(), region: 'us-east-1', credentials: LOCAL_CREDENTIALS });
    clients.push(ddb);
    tables = (await createTables(ddb, uniquePrefix('idem'))).names;
  });
  after(() => {
    for (const c of clients) c.destroy();
  });

  it('the same TransactWriteItems sent twice with one token commits once (DynamoDB Local honours the token)', async () => {
    const doc = docWith();
    const topic = 'idem:direct';
    const cmd = () =>
      new TransactWriteCommand({
        ClientRequestToken: 'token-direct-1',
        TransactItems: [
          {
            Update: {
              TableName: tables.items,
              Key: { topic },
              UpdateExpression: 'SET #seq = :seq',
              ConditionExpression: 'attribute_not_exists(#seq)',
              ExpressionAttributeNames: { '#seq': 'seq' },
              ExpressionAttributeValues: { ':seq': 1 },
            },
          },
        ],
      });
    await doc.send(cmd());
    // The condition would fail on a second execution; with the same token it is answered as a success.
    await doc.send(cmd());
    const item = await doc.send(new GetCommand({ TableName: tables.items, Key: { topic }, ConsistentRead: true }));
    expect(item.Item?.seq).to.equal(1);
  });

  it('a commit whose response is lost and retried by the SDK yields one seq, no duplicate history row', async () => {
    const handler = new LossyHandler(1);
    const items = store(docWith(handler));
    const topic = 'idem:lost-response';
    const r1 = await items.write(topic, { v: 'a' }, { ts: 1_700_000_000_000 });
    expect(handler.lost, 'a response was lost').to.equal(1);
    expect(handler.transactRequests, 'the SDK retried the commit').to.equal(2);
    expect(r1.seq).to.equal(1);
    const r2 = await items.write(topic, { v: 'b' }, { ts: 1_700_000_000_001 });
    expect(r2.seq).to.equal(2);

    const check = store(docWith());
    expect((await check.get(topic))?.seq).to.equal(2);
    const hist = await docWith().send(
      new QueryCommand({ TableName: tables.history, KeyConditionExpression: 'topic = :t', ExpressionAttributeValues: { ':t': topic }, ConsistentRead: true }),
    );
    expect((hist.Items ?? []).map((i) => [i.seq, (i.data as { v: string }).v])).to.deep.equal([
      [1, 'a'],
      [2, 'b'],
    ]);
  });

  it('control: the same lost response without a token duplicates the data under a new seq', async () => {
    const handler = new LossyHandler(1, true);
    const items = store(docWith(handler));
    const topic = 'idem:control';
    const r1 = await items.write(topic, { v: 'a' }, { ts: 1_700_000_000_000 });
    expect(handler.lost).to.equal(1);
    expect(r1.seq, 'the retry failed its condition and the store wrote again').to.equal(2);
    const hist = await docWith().send(
      new QueryCommand({ TableName: tables.history, KeyConditionExpression: 'topic = :t', ExpressionAttributeValues: { ':t': topic }, ConsistentRead: true }),
    );
    expect((hist.Items ?? []).map((i) => [i.seq, (i.data as { v: string }).v])).to.deep.equal([
      [1, 'a'],
      [2, 'a'],
    ]);
  });

  it('a real conflict still moves to the next seq (a new attempt uses a new token)', async () => {
    const a = store(docWith());
    const b = store(docWith());
    const topic = 'idem:conflict';
    await a.write(topic, 'first');
    // b believes seq 0: its first attempt fails the condition, it re-reads and writes seq 2.
    const r = await b.write(topic, 'second', { expectedSeq: 0 });
    expect(r.seq).to.equal(2);
    expect((await a.get(topic))?.data).to.equal('second');
  });
});
