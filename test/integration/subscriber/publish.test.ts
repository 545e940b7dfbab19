import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { IdempotencyStore } from '../../../lib/stores/idempotency';
import { MAX_DATA_DEPTH } from '../../../lib/stores/json-data';
import { IDEMPOTENCY_WINDOW_SECONDS } from '../../../lib/subscriber/limits';
import { startTestStack, type LocalStack } from '../../support/stack';
import { TestClient } from './support/client';

/** POST /publish through the local HTTP API emulator into DynamoDB Local: idempotency keys and the JSON it accepts. */
describe('POST /publish (local stack)', function () {
  this.timeout(30_000);
  let stack: LocalStack;
  const clients: TestClient[] = [];

  /** Posts a raw body (so the test controls the exact JSON text). */
  const post = async (body: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${stack.endpoints.httpUrl}/publish`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
    const text = await res.text();
    return { status: res.status, text, body: JSON.parse(text) as Record<string, unknown>, replayed: res.headers.get('idempotent-replayed') };
  };
  const history = async (topic: string) =>
    (
      await stack.clients.doc.send(
        new QueryCommand({ TableName: stack.tables.history, KeyConditionExpression: 'topic = :t', ExpressionAttributeValues: { ':t': topic }, ConsistentRead: true }),
      )
    ).Items ?? [];
  const item = async (topic: string) => (await stack.clients.doc.send(new GetCommand({ TableName: stack.tables.items, Key: { topic }, ConsistentRead: true }))).Item;
  const topicName = (what: string) => `${what}:${randomUUID().slice(0, 8)}`;

  before(async () => {
    stack = await startTestStack();
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });
  after(async () => {
    await stack?.stop();
  });

  describe('idempotency key', () => {
    it('the same "id" twice: one seq, one history row, the same answer both times', async () => {
      const topic = topicName('idem');
      const body = JSON.stringify({ topic, data: { n: 1 }, id: 'order-17' });
      const first = await post(body);
      const second = await post(body);
      expect(first.status).to.equal(202);
      expect(second.status).to.equal(202);
      expect(second.text).to.equal(first.text);
      expect(first.body).to.deep.equal({ topic, seq: 1 });
      expect(first.replayed).to.equal(null);
      expect(second.replayed).to.equal('true');
      expect((await history(topic)).map((r) => r.seq)).to.deep.equal([1]);
      expect((await item(topic))?.seq).to.equal(1);
    });

    it('the same Idempotency-Key header twice (and the header and "id" together): one seq; a new key is a new seq', async () => {
      const topic = topicName('idem-h');
      const body = JSON.stringify({ topic, data: 'x' });
      const a = await post(body, { 'Idempotency-Key': 'k-1' });
      const b = await post(body, { 'Idempotency-Key': 'k-1' });
      const c = await post(JSON.stringify({ topic, data: 'x', id: 'k-1' }), { 'Idempotency-Key': 'k-1' });
      const d = await post(body, { 'Idempotency-Key': 'k-2' });
      expect([a.body.seq, b.body.seq, c.body.seq, d.body.seq]).to.deep.equal([1, 1, 1, 2]);
      expect((await history(topic)).map((r) => r.seq)).to.deep.equal([1, 2]);
    });

    it('ten concurrent copies of one request write once and all answer the same seq', async () => {
      const topic = topicName('idem-race');
      await post(JSON.stringify({ topic, data: 0 })); // seq 1 exists, so the copies race on a real condition
      const body = JSON.stringify({ topic, data: { v: 2 }, id: 'race' });
      const answers = await Promise.all(Array.from({ length: 10 }, () => post(body)));
      expect(answers.map((a) => a.status)).to.deep.equal(Array(10).fill(202));
      expect(new Set(answers.map((a) => a.text)).size).to.equal(1);
      expect(answers[0].body.seq).to.equal(2);
      expect((await history(topic)).map((r) => r.seq)).to.deep.equal([1, 2]);
    });

    it('the same key with different data is refused with 422 idempotency_key_reused and writes nothing', async () => {
      const topic = topicName('idem-reuse');
      await post(JSON.stringify({ topic, data: 1, id: 'same' }));
      const r = await post(JSON.stringify({ topic, data: 2, id: 'same' }));
      expect(r.status).to.equal(422);
      expect(r.body.code).to.equal('idempotency_key_reused');
      expect((await history(topic)).map((x) => x.data)).to.deep.equal([1]);
    });

    it('keys are per topic: the same id on two topics is two publishes', async () => {
      const [t1, t2] = [topicName('idem-a'), topicName('idem-b')];
      expect((await post(JSON.stringify({ topic: t1, data: 1, id: 'k' }))).body.seq).to.equal(1);
      expect((await post(JSON.stringify({ topic: t2, data: 1, id: 'k' }))).body.seq).to.equal(1);
      expect((await history(t2))).to.have.length(1);
    });

    it(`remembers a key for ${IDEMPOTENCY_WINDOW_SECONDS / 3600} h, and an expired row that TTL has not deleted yet counts as absent`, async () => {
      const topic = topicName('idem-ttl');
      await post(JSON.stringify({ topic, data: 1, id: 'old' }));
      const key = IdempotencyStore.key('http:trusted', topic, 'old');
      const row = (await stack.clients.doc.send(new GetCommand({ TableName: stack.tables.idempotency, Key: { key } }))).Item!;
      const nowSec = Math.floor(Date.now() / 1000);
      expect(row.expiresAt).to.be.within(nowSec + IDEMPOTENCY_WINDOW_SECONDS - 60, nowSec + IDEMPOTENCY_WINDOW_SECONDS + 1);
      // Age the row past its window, as if TTL had not caught up yet.
      await stack.clients.doc.send(
        new (await import('@aws-sdk/lib-dynamodb')).UpdateCommand({
          TableName: stack.tables.idempotency,
          Key: { key },
          UpdateExpression: 'SET expiresAt = :past',
          ExpressionAttributeValues: { ':past': nowSec - 1 },
        }),
      );
      const again = await post(JSON.stringify({ topic, data: 1, id: 'old' }));
      expect(again.body.seq).to.equal(2);
      expect((await history(topic)).map((r) => r.seq)).to.deep.equal([1, 2]);
    });

    const badKeys: [string, string, Record<string, string>][] = [
      ['an empty id', JSON.stringify({ topic: 't:bad', data: 1, id: '' }), {}],
      ['a numeric id', JSON.stringify({ topic: 't:bad', data: 1, id: 17 }), {}],
      ['an id over 64 characters', JSON.stringify({ topic: 't:bad', data: 1, id: 'x'.repeat(65) }), {}],
      ['a header and an id that differ', JSON.stringify({ topic: 't:bad', data: 1, id: 'a' }), { 'Idempotency-Key': 'b' }],
      ['an id on a send-to-user', JSON.stringify({ userId: 'bob', data: 1, id: 'a' }), {}],
    ];
    for (const [what, body, headers] of badKeys) {
      it(`refuses ${what} with 400 invalid_idempotency_key and writes nothing`, async () => {
        const r = await post(body, headers);
        expect(r.status).to.equal(400);
        expect(r.body.code).to.equal('invalid_idempotency_key');
        expect(await item('t:bad')).to.equal(undefined);
      });
    }
  });

  describe('JSON data', () => {
    /** Publishes raw JSON `data`, then reads it back from the items table, history and a subscriber's snapshot. */
    const roundTrip = async (dataJson: string) => {
      const topic = topicName('json');
      const r = await post(`{"topic":${JSON.stringify(topic)},"data":${dataJson}}`);
      expect(r.status, r.text).to.equal(202);
      const c = await TestClient.connect(stack.endpoints.websocketUrl);
      clients.push(c);
      const snap = await c.request({ action: 'subscribe', topic }, 'snapshot');
      return { stored: (await item(topic))?.data, history: (await history(topic))[0]?.data, snapshot: snap.data };
    };

    const faithful: [string, string][] = [
      ['a "constructor" key', '{"constructor":1}'],
      ['a "constructor" key that looks like a Map', '{"constructor":{"name":"Map"}}'],
      ['a "constructor" key that looks like a Set', '{"a":[{"constructor":{"name":"Set"}}]}'],
      ['keys such as hasOwnProperty and toString', '{"hasOwnProperty":1,"toString":"x","valueOf":[]}'],
      ['the largest safe integer', '{"n":9007199254740991,"m":-9007199254740991}'],
      ['empty strings, maps and lists', '{"s":"","m":{},"l":[]}'],
      ['a paired surrogate (an emoji)', '"\\ud83d\\ude00"'],
      [`nesting ${MAX_DATA_DEPTH} levels deep`, '['.repeat(MAX_DATA_DEPTH) + ']'.repeat(MAX_DATA_DEPTH)],
    ];
    for (const [what, json] of faithful) {
      it(`stores ${what} faithfully (table, history, snapshot)`, async () => {
        const want = JSON.parse(json);
        const got = await roundTrip(json);
        expect(got.stored).to.deep.equal(want);
        expect(got.history).to.deep.equal(want);
        expect(got.snapshot).to.deep.equal(want);
      });
    }

    const refused: [string, string, RegExp][] = [
      ['an integer above 2^53', '{"n":9007199254740993}', /data\["n"\] is a number beyond ±9007199254740991/],
      ['a negative integer below -2^53', '[-18446744073709551616]', /data\[0\] is a number beyond/],
      ['1e400', '{"x":1e400}', /data\["x"\] is a number outside the range of a double/],
      ['a "__proto__" key', '{"a":{"__proto__":{"x":1}}}', /the key "__proto__" cannot be stored/],
      ['a lone surrogate in a string', '{"s":"\\ud800"}', /lone UTF-16 surrogate/],
      ['a lone surrogate in a key', '{"\\udc00":1}', /lone UTF-16 surrogate/],
      [`nesting ${MAX_DATA_DEPTH + 1} levels deep`, '['.repeat(MAX_DATA_DEPTH + 1) + ']'.repeat(MAX_DATA_DEPTH + 1), /nested deeper than 31 levels/],
      ['nesting 100,000 levels deep', '['.repeat(100_000) + ']'.repeat(100_000), /nested deeper than 31 levels/],
    ];
    for (const [what, json, message] of refused) {
      it(`refuses ${what} with 400 invalid_data naming the place, and writes nothing`, async () => {
        const topic = topicName('json-bad');
        const r = await post(`{"topic":${JSON.stringify(topic)},"data":${json}}`);
        expect(r.status).to.equal(400);
        expect(r.body.code).to.equal('invalid_data');
        expect(r.body.message).to.match(message);
        expect(await item(topic)).to.equal(undefined);
        expect(await history(topic)).to.have.length(0);
      });
    }
  });
});
