import { expect } from 'chai';
import { GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { startTestStack, type LocalStack } from '../../support/stack';
import { TestClient } from './support/client';
import { postJson } from './support/http';
import { rowCount, waitForNoConnections } from './support/rows';
import { waitFor } from '../../support/wait';

/** The subscriber protocol (DESIGN §3) end to end: real emulator, real DynamoDB Local, real `ws` clients. */
describe('subscriber protocol (local stack)', function () {
  this.timeout(30_000);
  let stack: LocalStack;
  const clients: TestClient[] = [];
  const open = async (query = '') => {
    const c = await TestClient.connect(`${stack.endpoints.websocketUrl}${query}`);
    clients.push(c);
    return c;
  };
  const publish = (body: unknown) => postJson(`${stack.endpoints.httpUrl}/publish`, body);
  const scanCount = (table: string) => rowCount(stack, table);

  before(async () => {
    stack = await startTestStack();
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    // Tests count table rows to prove "nothing written": a closed socket's $disconnect (100
    // subscription rows for the 101st-topic test) must not land inside the next test's count.
    await waitForNoConnections(stack);
  });
  after(async () => {
    await stack?.stop();
  });

  it('subscribe to a missing item answers a seq-0 snapshot, then events follow in order', async () => {
    const c = await open('?userId=u1');
    const snap = await c.request({ action: 'subscribe', topic: 'vehicle:1' }, 'snapshot');
    expect(snap).to.deep.equal({ type: 'snapshot', topic: 'vehicle:1', seq: 0, data: null });
    const r = await publish({ topic: 'vehicle:1', data: { speed: 42 } });
    expect(r.status).to.equal(202);
    expect(r.body).to.deep.equal({ topic: 'vehicle:1', seq: 1 });
    await c.waitFor((fs) => fs.some((f) => f.type === 'event'), 5000, 'event');
    const ev = c.ofType('event')[0];
    expect(ev).to.include({ type: 'event', topic: 'vehicle:1', seq: 1 });
    expect(ev.data).to.deep.equal({ speed: 42 });
    expect(ev.ts).to.be.a('number');
    expect(ev.latencyMs).to.be.a('number').and.to.be.at.least(0);
  });

  it('subscribe to an existing item answers its current state', async () => {
    await publish({ topic: 'vehicle:2', data: { a: 1 } });
    await publish({ topic: 'vehicle:2', data: { a: 2 }, ts: Date.now() - 1000 });
    const c = await open();
    const snap = await c.request({ action: 'subscribe', topic: 'vehicle:2' }, 'snapshot');
    expect(snap).to.include({ type: 'snapshot', topic: 'vehicle:2', seq: 2 });
    expect(snap.data).to.deep.equal({ a: 2 });
    expect(snap.ts).to.be.a('number');
  });

  it('unsubscribe stops events and answers unsubscribed', async () => {
    const c = await open();
    await c.request({ action: 'subscribe', topic: 'vehicle:3' }, 'snapshot');
    const u = await c.request({ action: 'unsubscribe', topic: 'vehicle:3' }, 'unsubscribed');
    expect(u).to.deep.equal({ type: 'unsubscribed', topic: 'vehicle:3' });
    const other = await open();
    await other.request({ action: 'subscribe', topic: 'vehicle:3' }, 'snapshot');
    await publish({ topic: 'vehicle:3', data: 1 });
    await other.waitFor((fs) => fs.some((f) => f.type === 'event'), 5000, 'event on the other client');
    expect(c.ofType('event')).to.have.length(0);
  });

  it('the 101st topic on a connection answers too_many_subscriptions and writes no row for it', async () => {
    const c = await open('?userId=hoarder');
    for (let i = 1; i <= 100; i++) c.send({ action: 'subscribe', topic: `many:${i}` });
    await c.waitFor((fs) => fs.filter((f) => f.type === 'snapshot').length === 100, 20_000, '100 snapshots');
    const err = await c.request({ action: 'subscribe', topic: 'many:101' }, 'error');
    expect(err).to.include({ type: 'error', code: 'too_many_subscriptions', topic: 'many:101' });
    expect(err.message).to.match(/at most 100 topics/);
    const rows = await stack.clients.doc.send(
      new QueryCommand({ TableName: stack.tables.subscriptions, KeyConditionExpression: 'topic = :t', ExpressionAttributeValues: { ':t': 'many:101' }, ConsistentRead: true }),
    );
    expect(rows.Items).to.have.length(0);
    // A topic it already holds is still answered.
    expect((await c.request({ action: 'subscribe', topic: 'many:7' }, 'snapshot')).topic).to.equal('many:7');
  });

  it('topics and user ids with a lone UTF-16 surrogate are refused (subscribe, publish, ?userId=)', async () => {
    const c = await open('?userId=surrogate-test');
    const err = await c.request({ action: 'subscribe', topic: 'vehicle:\ud800' }, 'error');
    expect(err).to.include({ code: 'invalid_topic' });
    expect(err.message).to.match(/lone UTF-16 surrogate/);
    const p = await publish({ topic: 'vehicle:\udc00', data: 1 });
    expect(p.status).to.equal(400);
    expect(p.body.code).to.equal('invalid_topic');
    const u = await publish({ userId: 'bob\ud800', data: 1 });
    expect(u.status).to.equal(400);
    expect(u.body.code).to.equal('invalid_target');
    // A paired surrogate (an emoji) is a normal character.
    expect((await c.request({ action: 'subscribe', topic: 'vehicle:\u{1F697}' }, 'snapshot')).topic).to.equal('vehicle:\u{1F697}');
  });

  it('ping answers pong and refreshes lastSeen', async () => {
    const c = await open('?userId=pinger');
    await c.request({ action: 'ping' }, 'pong'); // a first round trip so the row exists for sure
    const ids = await stack.clients.doc.send(
      new QueryCommand({ TableName: stack.tables.connections, IndexName: 'byUser', KeyConditionExpression: 'userId = :u', ExpressionAttributeValues: { ':u': 'pinger' } }),
    );
    const id = String(ids.Items![0].connectionId);
    const before = (await stack.clients.doc.send(new GetCommand({ TableName: stack.tables.connections, Key: { connectionId: id } }))).Item!;
    await new Promise((r) => setTimeout(r, 5));
    const pong = await c.request({ action: 'ping' }, 'pong');
    expect(pong.ts).to.be.a('number');
    const after = (await stack.clients.doc.send(new GetCommand({ TableName: stack.tables.connections, Key: { connectionId: id } }))).Item!;
    expect(after.lastSeen).to.be.greaterThan(before.lastSeen);
    expect(after.expiresAt).to.be.at.most(Math.floor(after.connectedAt / 1000) + 7200);
  });

  it('item-key query parameters subscribe at connect (seed 002) and $disconnect removes the rows', async () => {
    const c = await open('?vehicleId=77&userId=fleet');
    await c.request({ action: 'ping' }, 'pong');
    const subs = await stack.clients.doc.send(
      new QueryCommand({ TableName: stack.tables.subscriptions, KeyConditionExpression: 'topic = :t', ExpressionAttributeValues: { ':t': 'vehicleId:77' } }),
    );
    expect(subs.Items).to.have.length(1);
    await publish({ topic: 'vehicleId:77', data: { lat: 1 } });
    await c.waitFor((fs) => fs.some((f) => f.type === 'event' && f.topic === 'vehicleId:77'), 5000, 'item-key event');
    // The explicit subscribe gives the snapshot and is idempotent.
    const snap = await c.request({ action: 'subscribe', topic: 'vehicleId:77' }, 'snapshot');
    expect(snap.seq).to.equal(1);
    const id = String(subs.Items![0].connectionId);
    await c.close();
    await waitFor(async () => {
      const row = await stack.clients.doc.send(new GetCommand({ TableName: stack.tables.connections, Key: { connectionId: id } }));
      const s = await stack.clients.doc.send(
        new QueryCommand({ TableName: stack.tables.subscriptions, KeyConditionExpression: 'topic = :t', ExpressionAttributeValues: { ':t': 'vehicleId:77' } }),
      );
      return !row.Item && (s.Items ?? []).length === 0;
    }, 5000, 'connection and subscription rows removed');
  });

  describe('bad input gets a coded error, writes nothing, and the connection stays usable', () => {
    const cases: [string, unknown, string][] = [
      ['invalid JSON', '{"action":"subscribe",', 'invalid_json'],
      ['a JSON array', '[1,2]', 'invalid_message'],
      ['missing topic', { action: 'subscribe' }, 'missing_topic'],
      ['a topic longer than 256 characters', { action: 'subscribe', topic: 'x'.repeat(257) }, 'invalid_topic'],
      ['a topic with control characters', { action: 'subscribe', topic: 'vehicle:\u0001' }, 'invalid_topic'],
      ['a non-string topic', { action: 'unsubscribe', topic: 42 }, 'invalid_topic'],
      ['a negative sinceSeq', { action: 'subscribe', topic: 'vehicle:9', sinceSeq: -1 }, 'invalid_since_seq'],
      ['an unknown action', { action: 'explode' }, 'unknown_action'],
      ['huge data', { action: 'subscribe', topic: 'vehicle:9', data: 'x'.repeat(100_000) }, 'frame_too_large'],
    ];
    for (const [name, frame, code] of cases) {
      it(name, async () => {
        const c = await open('?userId=bad');
        const subsBefore = await scanCount(stack.tables.subscriptions);
        const itemsBefore = await scanCount(stack.tables.items);
        const err = await c.request(frame, 'error');
        expect(err.code).to.equal(code);
        expect(err.message).to.be.a('string').and.not.equal('');
        expect(await scanCount(stack.tables.subscriptions)).to.equal(subsBefore);
        expect(await scanCount(stack.tables.items)).to.equal(itemsBefore);
        const pong = await c.request({ action: 'ping' }, 'pong');
        expect(pong.type).to.equal('pong');
        expect(c.closed).to.equal(false);
      });
    }
  });

  describe('POST /publish validation', () => {
    const cases: [string, unknown, number, string][] = [
      ['invalid JSON', '{', 400, 'invalid_json'],
      ['no data', { topic: 'vehicle:1' }, 400, 'missing_data'],
      ['neither topic nor userId', { data: 1 }, 400, 'invalid_target'],
      ['both topic and userId', { topic: 'a', userId: 'b', data: 1 }, 400, 'invalid_target'],
      ['a bad topic', { topic: 'a\u0000b', data: 1 }, 400, 'invalid_topic'],
      ['a ts in the future', { topic: 'a', data: 1, ts: Date.now() + 3_600_000 }, 400, 'invalid_ts'],
      ['data too big once framed', { topic: 'vehicle:big', data: 'x'.repeat(128 * 1024) }, 413, 'payload_too_large'],
      ['send-to-user data too big', { userId: 'u', data: 'x'.repeat(128 * 1024) }, 413, 'payload_too_large'],
    ];
    for (const [name, body, status, code] of cases) {
      it(`refuses ${name} with ${status} ${code} and writes nothing`, async () => {
        const before = await scanCount(stack.tables.items);
        const r = await publish(body);
        expect(r.status).to.equal(status);
        expect(r.body.code).to.equal(code);
        expect(await scanCount(stack.tables.items)).to.equal(before);
      });
    }

    it('accepts data just under the limit and delivers it', async () => {
      const c = await open();
      await c.request({ action: 'subscribe', topic: 'vehicle:edge' }, 'snapshot');
      // 128 KB minus the frame's envelope with worst-case numbers.
      const data = 'x'.repeat(128 * 1024 - 200);
      const r = await publish({ topic: 'vehicle:edge', data });
      expect(r.status).to.equal(202);
      await c.waitFor((fs) => fs.some((f) => f.type === 'event'), 5000, 'large event');
      expect((c.ofType('event')[0].data as string).length).to.equal(data.length);
    });
  });
});
