import { expect } from 'chai';
import { BatchWriteCommand, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { createHandler as createSubscribeHandler } from '../../../functions/subscribe';
import { startTestStack, type LocalStack } from '../../support/stack';
import { TestClient } from './support/client';
import { postJson } from './support/http';
import { waitFor } from '../../support/wait';

/**
 * Delivery guarantees end to end: publish → items stream → fan-out → emulator → `ws` clients.
 */
describe('subscriber delivery (local stack)', function () {
  this.timeout(60_000);
  let stack: LocalStack;
  const clients: TestClient[] = [];
  const open = async (query = '') => {
    const c = await TestClient.connect(`${stack.endpoints.websocketUrl}${query}`);
    clients.push(c);
    return c;
  };
  const publish = async (body: Record<string, unknown>) => {
    for (let attempt = 1; ; attempt++) {
      const r = await postJson(`${stack.endpoints.httpUrl}/publish`, body);
      // 503 write_conflict: concurrent publishers on one topic ran out of seq retries; a client retries.
      if (r.status === 503 && r.body.code === 'write_conflict' && attempt < 5) continue;
      if (r.status >= 300) throw new Error(`publish failed: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body;
    }
  };
  /** n publishes to one topic, `parallel` at a time (the item store retries seq conflicts). */
  const publishMany = async (topic: string, n: number, parallel = 4) => {
    let next = 1;
    await Promise.all(
      Array.from({ length: parallel }, async () => {
        while (next <= n) {
          const i = next++;
          await publish({ topic, data: { i } });
        }
      }),
    );
  };
  const connectionIdOf = async (userId: string): Promise<string[]> => {
    const r = await stack.clients.doc.send(
      new QueryCommand({ TableName: stack.tables.connections, IndexName: 'byUser', KeyConditionExpression: 'userId = :u', ExpressionAttributeValues: { ':u': userId } }),
    );
    return (r.Items ?? []).map((i) => String(i.connectionId));
  };
  const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

  before(async () => {
    stack = await startTestStack();
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });
  after(async () => {
    await stack?.stop();
  });

  it('50 clients on one topic each receive all 100 updates, in seq order', async () => {
    const topic = 'vehicle:fleet';
    const subs = await Promise.all(Array.from({ length: 50 }, () => open()));
    await Promise.all(subs.map((c) => c.request({ action: 'subscribe', topic }, 'snapshot')));
    await publishMany(topic, 100);
    await Promise.all(subs.map((c) => c.waitFor(() => (c.applied.get(topic) ?? []).at(-1) === 100, 30_000, 'seq 100')));
    for (const c of subs) {
      const events = c.ofType('event').map((e) => e.seq as number);
      // Raw arrival order is ascending (duplicates would be allowed, reordering is not).
      expect(events).to.deep.equal([...events].sort((a, b) => a - b));
      expect(c.applied.get(topic)).to.deep.equal([0, ...range(1, 100)]);
    }
  });

  it('snapshot-then-events has no gap and no reorder when publishes race with subscribes', async () => {
    const topic = 'vehicle:race';
    const total = 60;
    const subs: TestClient[] = [];
    const publishing = publishMany(topic, total, 2);
    // Subscribers join while the publisher runs, at staggered moments.
    for (let i = 0; i < 12; i++) {
      const c = await open();
      subs.push(c);
      c.send({ action: 'subscribe', topic });
      await new Promise((r) => setTimeout(r, 15));
    }
    await publishing;
    await Promise.all(subs.map((c) => c.waitFor(() => (c.applied.get(topic) ?? []).at(-1) === total, 20_000, `seq ${total}`)));
    // The subscribes really raced the publisher: snapshots were taken mid-stream.
    expect(subs.some((c) => { const s = c.ofType('snapshot')[0].seq as number; return s > 0 && s < total; })).to.equal(true);
    for (const c of subs) {
      const applied = c.applied.get(topic)!;
      expect(c.ofType('snapshot')).to.have.length(1);
      // From its snapshot S on, every seq up to the last one, each once, in order.
      expect(applied[0]).to.equal(c.ofType('snapshot')[0].seq);
      expect(applied).to.deep.equal(range(applied[0], total));
    }
  });

  it('a subscribe re-sent while its replay runs takes the replay over: the range is not sent twice, one answer', async () => {
    const topic = 'vehicle:replay-twice';
    const N = 600;
    // History 1..N written directly (publishing 600 events would dominate the test's time).
    const ts = Date.now();
    const expiresAt = Math.floor(ts / 1000) + 3600;
    const rows = range(1, N).map((seq) => ({ PutRequest: { Item: { topic, seq, data: { seq }, ts, expiresAt } } }));
    await Promise.all(
      Array.from({ length: N / 25 }, (_, i) => stack.clients.doc.send(new BatchWriteCommand({ RequestItems: { [stack.tables.history]: rows.slice(i * 25, i * 25 + 25) } }))),
    );
    await stack.clients.doc.send(new PutCommand({ TableName: stack.tables.items, Item: { topic, seq: N, data: { seq: N }, ts } }));
    const c = await open('?userId=replayer');
    const [connectionId] = await connectionIdOf('replayer');
    // The emulator runs one connection's route invocations one after another; API Gateway does
    // not, and a re-sent subscribe runs while the first one still replays. So both go straight
    // to the subscribe function (as its role), the way two concurrent invocations would.
    const subscribeFn = createSubscribeHandler({ ...stack.deps, clients: stack.clientsFor('subscribe') });
    const invoke = (requestTimeEpoch: number) =>
      subscribeFn({ body: JSON.stringify({ action: 'subscribe', topic, sinceSeq: 0 }), requestContext: { connectionId, routeKey: 'subscribe', requestTimeEpoch } });
    // Management API latency makes the replay last long enough (75 rounds of 8 posts) to be re-sent mid-way.
    stack.websocket.faults.set({ rate: 0, statuses: [], connections: {}, latencyMs: [20, 30] });
    try {
      const first = invoke(Date.now());
      await c.waitFor((fs) => fs.filter((f) => f.type === 'event').length >= 30, 10_000, 'the replay under way');
      // The SDK's re-send after a lost answer: same connection, same topic, a later request time.
      const second = invoke(Date.now() + 1);
      expect((await first).statusCode).to.equal(200);
      expect((await second).statusCode).to.equal(200);
      // Both invocations have returned, so every frame they post is queued on the socket; a pong
      // asked for now comes after all of them (one socket, in order), however slow the machine.
      await c.request({ action: 'ping' }, 'pong');
      const events = c.frames.filter((f) => f.type === 'event' && f.topic === topic);
      // Without the take-over both replays send all N (2 × 600); the first one stops at a page
      // boundary (pages of 100, one page read ahead), so at most 3 pages come twice.
      expect(events.length, 'event frames').to.be.at.most(N + 300);
      expect(c.ofType('subscribed'), 'one answer').to.deep.equal([{ type: 'subscribed', topic, seq: N, replayed: N }]);
      expect(new Set(events.map((e) => e.seq)).size).to.equal(N);
    } finally {
      stack.websocket.faults.clear();
    }
  });

  it('a client that drops and resumes with sinceSeq gets exactly the missed events', async () => {
    const topic = 'vehicle:resume';
    const a = await open();
    await a.request({ action: 'subscribe', topic }, 'snapshot');
    await publishMany(topic, 5, 1);
    await a.waitFor(() => (a.applied.get(topic) ?? []).at(-1) === 5, 5000, 'seq 5');
    a.terminate(); // the network drops
    await publishMany(topic, 7, 1); // seq 6..12 are missed
    const b = await open();
    const done = await b.request({ action: 'subscribe', topic, sinceSeq: 5 }, 'subscribed');
    expect(done).to.deep.equal({ type: 'subscribed', topic, seq: 12, replayed: 7 });
    // Fan-out may still be delivering seq ≤ 12 live (the subscription row exists now): those are
    // held back and dropped as duplicates by the client rule; the replay itself is exact.
    // The frames of a replay page are posted in parallel: exactly these, each once, in any order;
    // the order the application sees is `applied` below.
    const replayed = b.ofType('event').filter((e) => e.replay === true).sort((x, y) => Number(x.seq) - Number(y.seq));
    expect(replayed.map((e) => e.seq)).to.deep.equal(range(6, 12));
    expect(replayed.map((e) => (e.data as { i: number }).i)).to.deep.equal(range(1, 7));
    expect(b.applied.get(topic)).to.deep.equal(range(6, 12));
    expect(b.ofType('snapshot')).to.have.length(0);
    // Nothing missed: just the confirmation.
    const c = await open();
    expect(await c.request({ action: 'subscribe', topic, sinceSeq: 12 }, 'subscribed')).to.deep.equal({ type: 'subscribed', topic, seq: 12, replayed: 0 });
    // Live events continue after the replay.
    await publish({ topic, data: 'live' });
    await b.waitFor(() => (b.applied.get(topic) ?? []).at(-1) === 13, 5000, 'seq 13');
  });

  it('a resume whose gap history no longer covers gets a reset snapshot', async () => {
    const topic = 'vehicle:reset';
    await publishMany(topic, 4, 1);
    // Row 2 has passed its expiresAt: readers must treat it as gone even before TTL deletes it.
    await stack.clients.doc.send(
      new UpdateCommand({ TableName: stack.tables.history, Key: { topic, seq: 2 }, UpdateExpression: 'SET expiresAt = :p', ExpressionAttributeValues: { ':p': Math.floor(Date.now() / 1000) - 1 } }),
    );
    const c = await open();
    const snap = await c.request({ action: 'subscribe', topic, sinceSeq: 1 }, ['snapshot', 'subscribed']);
    expect(snap).to.include({ type: 'snapshot', topic, seq: 4, reset: true });
    // Fan-out may still be delivering seq ≤ 4 (the row exists now): the client drops those.
    expect(c.applied.get(topic)).to.deep.equal([4]);
    // A client ahead of the topic (it was recreated) is reset too.
    const d = await open();
    expect(await d.request({ action: 'subscribe', topic, sinceSeq: 99 }, ['snapshot', 'subscribed'])).to.include({ type: 'snapshot', seq: 4, reset: true });
  });

  it('a connection that vanished without $disconnect is pruned at the next fan-out (410), with all its subscriptions', async () => {
    const topic = 'vehicle:stale';
    const live = await open();
    await live.request({ action: 'subscribe', topic }, 'snapshot');
    // A socket API Gateway no longer knows, whose $disconnect never ran.
    const ghost = 'ghostConnId=';
    const exp = Math.floor(Date.now() / 1000) + 3600;
    await stack.clients.doc.send(
      new PutCommand({ TableName: stack.tables.connections, Item: { connectionId: ghost, userId: 'ghost', allowedTopics: ['*'], topics: new Set([topic, 'vehicle:other']), connectedAt: Date.now(), lastSeen: Date.now(), expiresAt: exp } }),
    );
    for (const t of [topic, 'vehicle:other']) {
      await stack.clients.doc.send(new PutCommand({ TableName: stack.tables.subscriptions, Item: { topic: t, connectionId: ghost, userId: 'ghost', expiresAt: exp } }));
    }
    await publish({ topic, data: 1 });
    await live.waitFor(() => (live.applied.get(topic) ?? []).at(-1) === 1, 5000, 'live event');
    await waitFor(async () => {
      const row = await stack.clients.doc.send(new GetCommand({ TableName: stack.tables.connections, Key: { connectionId: ghost } }));
      const s = await Promise.all(
        [topic, 'vehicle:other'].map((t) => stack.clients.doc.send(new GetCommand({ TableName: stack.tables.subscriptions, Key: { topic: t, connectionId: ghost } }))),
      );
      return !row.Item && s.every((x) => !x.Item);
    }, 5000, 'ghost rows deleted');
  });

  it('rows past expiresAt are ignored by readers before TTL deletes them', async () => {
    const topic = 'vehicle:expired';
    const c = await open('?userId=expiring');
    await c.request({ action: 'subscribe', topic }, 'snapshot');
    const [id] = await connectionIdOf('expiring');
    const past = Math.floor(Date.now() / 1000) - 1;
    await stack.clients.doc.send(
      new UpdateCommand({ TableName: stack.tables.subscriptions, Key: { topic, connectionId: id }, UpdateExpression: 'SET expiresAt = :p', ExpressionAttributeValues: { ':p': past } }),
    );
    await stack.clients.doc.send(
      new UpdateCommand({ TableName: stack.tables.connections, Key: { connectionId: id }, UpdateExpression: 'SET expiresAt = :p', ExpressionAttributeValues: { ':p': past } }),
    );
    // A control subscriber proves the event was fanned out.
    const control = await open();
    await control.request({ action: 'subscribe', topic }, 'snapshot');
    await publish({ topic, data: 1 });
    await control.waitFor(() => (control.applied.get(topic) ?? []).at(-1) === 1, 5000, 'control event');
    const toUser = await publish({ userId: 'expiring', data: 'hello' });
    expect(toUser).to.deep.equal({ userId: 'expiring', connections: 0, reached: 0 });
    // The expired connection can no longer subscribe either. Its answer also comes after anything
    // posted to the socket before it (send-to-user posts before it answers), so no sleep is needed.
    expect((await c.request({ action: 'subscribe', topic: 'vehicle:x' }, 'error')).code).to.equal('not_connected');
    expect(c.ofType('event')).to.have.length(0);
    expect(c.ofType('message')).to.have.length(0);
  });

  it('send-to-user reaches every connection of the user and no one else (seed 001)', async () => {
    const mine = await Promise.all([open('?userId=alice'), open('?userId=alice'), open('?userId=alice')]);
    const others = await Promise.all([open('?userId=bob'), open('?userId=alice2'), open()]);
    const r = await publish({ userId: 'alice', data: { note: 'hi' } });
    expect(r).to.deep.equal({ userId: 'alice', connections: 3, reached: 3 });
    await Promise.all(mine.map((c) => c.waitFor((fs) => fs.some((f) => f.type === 'message'), 5000, 'message')));
    for (const c of mine) {
      expect(c.ofType('message')).to.have.length(1);
      expect(c.ofType('message')[0].data).to.deep.equal({ note: 'hi' });
    }
    // Send-to-user posts before it answers, so a stray message would already be queued on its
    // socket: a pong on each of the others comes after it.
    await Promise.all(others.map((c) => c.request({ action: 'ping' }, 'pong')));
    for (const c of others) expect(c.ofType('message')).to.have.length(0);
  });
});
