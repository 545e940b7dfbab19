import { expect } from 'chai';
import { GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { createHandler } from '../../../functions/fanout';
import type { Deps } from '../../../lib/runtime';
import { createLogger } from '../../../lib/log';
import { startTestStack, type LocalStack } from '../../support/stack';
import { TestClient } from '../subscriber/support/client';
import { waitFor } from '../../support/wait';

/**
 * Fan-out partial failure against the real emulator and DynamoDB Local, with failures injected by
 * the emulator's management API (`_emulator/faults`). Run with both senders, since the lean one
 * must keep the SDK's semantics (DeleteConnection included).
 */
for (const kind of ['sdk', 'lean'] as const) {
  describe(`fanout partial failure (${kind} sender)`, function () {
    this.timeout(30_000);
    let stack: LocalStack;
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
    const subscribersOf = async (topic: string) => {
      const r = await stack.clients.doc.send(
        new QueryCommand({ TableName: stack.tables.subscriptions, KeyConditionExpression: 'topic = :t', ExpressionAttributeValues: { ':t': topic } }),
      );
      return (r.Items ?? []).map((i) => String(i.connectionId));
    };
    const putFaults = async (body: unknown) => {
      const r = await fetch(`${stack.endpoints.managementUrl}/_emulator/faults`, { method: 'PUT', body: JSON.stringify(body) });
      expect(r.status).to.equal(200);
    };
    const retry = { attempts: 3, baseDelayMs: 5, maxDelayMs: 20 };

    before(async () => {
      stack = await startTestStack();
      // Signed as the fan-out function, like the stack's own copy of it.
      deps = { ...stack.deps, clients: stack.clientsFor('fanout'), log: createLogger({ write: (l) => logLines.push(l) }) };
    });
    afterEach(() => stack.websocket.faults.clear());
    after(async () => {
      await Promise.all(clients.splice(0).map((c) => c.close()));
      await stack?.stop();
    });

    it('a subscriber that keeps failing is closed to resync; the record and the next ones reach everyone else; nothing is reported', async () => {
      const [goodA, bad, goodB] = await Promise.all(['goodA', 'bad', 'goodB'].map((u) => TestClient.connect(`${stack.endpoints.websocketUrl}?userId=${kind}${u}`)));
      clients.push(goodA, bad, goodB);
      await goodA.request({ action: 'subscribe', topic: `${kind}A` }, 'snapshot');
      await bad.request({ action: 'subscribe', topic: `${kind}A` }, 'snapshot');
      await goodB.request({ action: 'subscribe', topic: `${kind}B` }, 'snapshot');
      const badId = await idOf(`${kind}bad`);
      await putFaults({ connections: { [badId]: 500 } });
      logLines.length = 0;

      const ts = Date.now();
      const batch = [
        record({ topic: `${kind}A`, seq: 1, data: 'a1', ts }),
        record({ topic: `${kind}B`, seq: 1, data: 'b1', ts }),
        record({ topic: `${kind}A`, seq: 2, data: 'a2', ts }),
        record({ topic: `${kind}B`, data: 'no seq: malformed' }),
        record(undefined, 'REMOVE'),
        record({ topic: `${kind}B`, seq: 2, data: 'b2', ts }),
      ];
      const handler = createHandler(deps, { sender: kind, retry });
      const out = await handler({ Records: batch });

      expect(out.batchItemFailures).to.deep.equal([]);
      await goodA.waitFor(() => goodA.ofType('event').length === 2, 5000, 'A events');
      await goodB.waitFor(() => goodB.ofType('event').length === 2, 5000, 'B events');
      expect(goodA.ofType('event').map((e) => [e.seq, e.data])).to.deep.equal([[1, 'a1'], [2, 'a2']]);
      expect(goodB.ofType('event').map((e) => [e.seq, e.data])).to.deep.equal([[1, 'b1'], [2, 'b2']]);
      // Forced resync: DeleteConnection closed it normally, and its rows are gone.
      await bad.waitFor(() => bad.closed, 5000, 'bad closed');
      expect(bad.closeCode).to.equal(1000);
      expect(bad.ofType('event')).to.have.length(0);
      expect(await subscribersOf(`${kind}A`)).to.not.include(badId);
      // It held its topic once: A2 was not tried on it after A1 failed.
      expect(logLines.filter((l) => l.includes('forcing the connection to resync'))).to.have.length(1);
      // The malformed record was logged and skipped, not reported (it would block the shard).
      expect(logLines.filter((l) => l.includes('malformed stream record'))).to.have.length(1);
    });

    it('when most deliveries of a record stay throttled, the record is reported, the throttled get nothing after it and nobody is closed', async () => {
      const subs = await Promise.all(['t1', 't2', 't3'].map((u) => TestClient.connect(`${stack.endpoints.websocketUrl}?userId=${kind}${u}`)));
      clients.push(...subs);
      for (const c of subs) await c.request({ action: 'subscribe', topic: `${kind}T` }, 'snapshot');
      const ids = await Promise.all(['t1', 't2'].map((u) => idOf(`${kind}${u}`)));
      await putFaults({ connections: Object.fromEntries(ids.map((id) => [id, 429])) });

      const ts = Date.now();
      const batch = [record({ topic: `${kind}T`, seq: 1, data: 't1', ts }), record({ topic: `${kind}T`, seq: 2, data: 't2', ts })];
      const out = await createHandler(deps, { sender: kind, retry })({ Records: batch });

      expect(out.batchItemFailures).to.deep.equal([{ itemIdentifier: batch[0].dynamodb.SequenceNumber }]);
      // The healthy one is not held back (a retried batch re-sends what it got; it drops those by
      // seq); the throttled ones got nothing after the record they missed, so nothing overtook it.
      await subs[2].waitFor(() => subs[2].ofType('event').length === 2, 5000, 'T1 and T2 on the healthy one');
      expect(subs.map((c) => c.closed)).to.deep.equal([false, false, false]);
      expect((await subscribersOf(`${kind}T`)).sort()).to.include.members(ids);
      // A later record, throttling lifted, reaches the throttled ones too: a frame of T1 or T2 sent
      // to them would have been posted before it, on the same connection, so it arrives first.
      stack.websocket.faults.clear();
      const next = record({ topic: `${kind}T`, seq: 3, data: 't3', ts });
      expect((await createHandler(deps, { sender: kind, retry })({ Records: [next] })).batchItemFailures).to.deep.equal([]);
      await Promise.all(subs.map((c) => c.waitFor(() => c.ofType('event').some((e) => e.seq === 3), 5000, 'T3')));
      expect(subs.map((c) => c.ofType('event').map((e) => e.seq))).to.deep.equal([[3], [3], [1, 2, 3]]);
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
