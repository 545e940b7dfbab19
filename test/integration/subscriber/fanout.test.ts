import { expect } from 'chai';
import { GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { createHandler } from '../../../functions/fanout';
import type { Deps } from '../../../lib/runtime';
import { createLogger } from '../../../lib/log';
import { startTestStack, type LocalStack } from '../../support/stack';
import { TestClient } from './support/client';
import { waitFor } from '../../support/wait';
import { ThrottleProxy } from './support/throttle-proxy';

/**
 * Fan-out partial failure against the real emulator and DynamoDB Local: one connection keeps
 * answering 429 (through a throttling proxy in front of the management API). Run with both
 * senders, since the lean one must keep the SDK's semantics.
 */
for (const kind of ['sdk', 'lean'] as const) {
  describe(`fanout partial failure (${kind} sender)`, function () {
    this.timeout(30_000);
    let stack: LocalStack;
    let proxy: ThrottleProxy;
    let deps: Deps;
    const logLines: string[] = [];
    const clients: TestClient[] = [];
    let seqNo = 1000;
    const record = (image: Record<string, unknown> | undefined, eventName = 'MODIFY') => ({
      eventID: String(seqNo),
      eventName,
      eventSource: 'aws:dynamodb',
      dynamodb: {
        SequenceNumber: String(++seqNo).padStart(21, '0'),
        StreamViewType: 'NEW_IMAGE',
        ...(image ? { NewImage: marshall(image) } : {}),
      },
    });
    const idOf = async (userId: string) => {
      const r = await stack.clients.doc.send(
        new QueryCommand({ TableName: stack.tables.connections, IndexName: 'byUser', KeyConditionExpression: 'userId = :u', ExpressionAttributeValues: { ':u': userId } }),
      );
      return String(r.Items![0].connectionId);
    };

    before(async () => {
      stack = await startTestStack();
      proxy = await ThrottleProxy.start(stack.endpoints.managementUrl);
      // Signed as the fan-out function, like the stack's own copy of it.
      deps = { ...stack.deps, clients: stack.clientsFor('fanout'), config: { ...stack.config, managementEndpoint: proxy.url }, log: createLogger({ write: (l) => logLines.push(l) }) };
    });
    after(async () => {
      await Promise.all(clients.splice(0).map((c) => c.close()));
      await proxy?.close();
      await stack?.stop();
    });

    it('reports the record whose delivery keeps failing with 429 and delivers the rest of the batch', async () => {
      const [goodA, bad, goodB] = await Promise.all(['goodA', 'bad', 'goodB'].map((u) => TestClient.connect(`${stack.endpoints.websocketUrl}?userId=${u}`)));
      clients.push(goodA, bad, goodB);
      await goodA.request({ action: 'subscribe', topic: 'A' }, 'snapshot');
      await bad.request({ action: 'subscribe', topic: 'A' }, 'snapshot');
      await goodB.request({ action: 'subscribe', topic: 'B' }, 'snapshot');
      const badId = await idOf('bad');
      proxy.throttled.add(badId);

      const ts = Date.now();
      const batch = [
        record({ topic: 'A', seq: 1, data: 'a1', ts }),
        record({ topic: 'B', seq: 1, data: 'b1', ts }),
        record({ topic: 'A', seq: 2, data: 'a2', ts }),
        record({ topic: 'B', data: 'no seq: malformed' }),
        record(undefined, 'REMOVE'),
        record({ topic: 'B', seq: 2, data: 'b2', ts }),
      ];
      const handler = createHandler(deps, { sender: kind, retry: { attempts: 3, baseDelayMs: 5, maxDelayMs: 20 } });
      const out = await handler({ Records: batch });

      expect(out.batchItemFailures).to.deep.equal([{ itemIdentifier: batch[0].dynamodb.SequenceNumber }]);
      await goodB.waitFor(() => goodB.ofType('event').length === 2, 5000, 'B events');
      expect(goodB.ofType('event').map((e) => [e.seq, e.data])).to.deep.equal([[1, 'b1'], [2, 'b2']]);
      // A1 reached the healthy subscriber; A2 was held back so it cannot overtake A1 on retry.
      await goodA.waitFor(() => goodA.ofType('event').length === 1, 5000, 'A1');
      await new Promise((r) => setTimeout(r, 50));
      expect(goodA.ofType('event').map((e) => e.seq)).to.deep.equal([1]);
      expect(bad.ofType('event')).to.have.length(0);
      expect(proxy.posts.get(badId)).to.equal(3); // every attempt of the retry policy
      // The malformed record was logged and skipped, not reported (it would block the shard).
      expect(logLines.filter((l) => l.includes('malformed stream record'))).to.have.length(1);
    });

    it('prunes a 410 connection found at fan-out and reports no failure', async () => {
      const live = await TestClient.connect(`${stack.endpoints.websocketUrl}?userId=live410`);
      clients.push(live);
      await live.request({ action: 'subscribe', topic: 'C' }, 'snapshot');
      const doomed = await TestClient.connect(`${stack.endpoints.websocketUrl}?userId=doomed`);
      await doomed.request({ action: 'subscribe', topic: 'C' }, 'snapshot');
      const doomedId = await idOf('doomed');
      const subscribersOfC = async () =>
        (
          await stack.clients.doc.send(
            new QueryCommand({ TableName: stack.tables.subscriptions, KeyConditionExpression: 'topic = :t', ExpressionAttributeValues: { ':t': 'C' } }),
          )
        ).Items ?? [];
      // A socket that is gone but whose subscription row is still there (as when $disconnect
      // lost a race or never ran): once $disconnect has cleaned up, its row is put back, so
      // only the fan-out's 410 handling can remove it again.
      const doomedRow = (await subscribersOfC()).find((i) => i.connectionId === doomedId);
      expect(doomedRow, 'the doomed subscription row').to.not.equal(undefined);
      doomed.terminate();
      await waitFor(
        async () =>
          !(await subscribersOfC()).some((i) => i.connectionId === doomedId) &&
          (await stack.clients.doc.send(new GetCommand({ TableName: stack.tables.connections, Key: { connectionId: doomedId }, ConsistentRead: true }))).Item ===
            undefined,
        10_000,
        '$disconnect to remove the doomed connection',
      );
      await stack.clients.doc.send(new PutCommand({ TableName: stack.tables.subscriptions, Item: doomedRow }));
      expect((await subscribersOfC()).map((i) => i.connectionId)).to.have.members([doomedId, await idOf('live410')]);

      const handler = createHandler(deps, { sender: kind });
      const out = await handler({ Records: [record({ topic: 'C', seq: 1, data: 'c1', ts: Date.now() })] });
      expect(out.batchItemFailures).to.deep.equal([]);
      await live.waitFor(() => live.ofType('event').length === 1, 5000, 'C1');
      expect((await subscribersOfC()).map((i) => i.connectionId)).to.deep.equal([await idOf('live410')]);
    });
  });
}
