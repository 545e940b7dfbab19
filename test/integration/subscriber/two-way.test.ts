import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { WebSocket as NodeWebSocket } from 'ws';
import { DeleteMessageCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { connect, type RealtimeClient, type RealtimeError } from '../../../client/index';
import type { InboundMessage } from '../../../lib/subscriber/app-action';
import { startTestStack, type LocalStack } from '../../support/stack';
import { waitFor } from '../../support/wait';
import { TestClient } from './support/client';

/**
 * Two-way messaging against the local stack (emulator, DynamoDB Local, the SQS emulator through
 * the IAM gateway, real sockets and the SDK): publish from the socket, application actions on the
 * inbound queue, replies to one connection.
 */

const topicName = (what: string) => `${what}:${randomUUID().slice(0, 8)}`;

async function receiveAll(stack: LocalStack, max = 10, waitSeconds = 1): Promise<InboundMessage[]> {
  const sqs = stack.clients.sqs;
  const r = await sqs.send(new ReceiveMessageCommand({ QueueUrl: stack.queueUrls.inbound, MaxNumberOfMessages: max, WaitTimeSeconds: waitSeconds }));
  const out: InboundMessage[] = [];
  for (const m of r.Messages ?? []) {
    out.push(JSON.parse(m.Body!) as InboundMessage);
    await sqs.send(new DeleteMessageCommand({ QueueUrl: stack.queueUrls.inbound, ReceiptHandle: m.ReceiptHandle! }));
  }
  return out;
}

const history = async (stack: LocalStack, topic: string) =>
  (
    await stack.clients.doc.send(
      new QueryCommand({ TableName: stack.tables.history, KeyConditionExpression: 'topic = :t', ExpressionAttributeValues: { ':t': topic }, ConsistentRead: true }),
    )
  ).Items ?? [];

const post = async (stack: LocalStack, body: unknown) => {
  const res = await fetch(`${stack.endpoints.httpUrl}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

describe('two-way messaging (local stack, AUTH_MODE=none)', function () {
  this.timeout(40_000);
  let stack: LocalStack;
  const sdk: RealtimeClient[] = [];
  const raw: TestClient[] = [];
  const client = (userId: string) => {
    const c = connect(stack.endpoints.websocketUrl, { WebSocket: NodeWebSocket, userId });
    c.on('error', () => {});
    sdk.push(c);
    return c;
  };
  const rawClient = async (userId: string) => {
    const c = await TestClient.connect(`${stack.endpoints.websocketUrl}?userId=${encodeURIComponent(userId)}`);
    raw.push(c);
    return c;
  };

  before(async () => {
    stack = await startTestStack({ env: { APP_ACTIONS: 'chat.ask,order.track', SOCKET_RATE_PER_SECOND: '2', SOCKET_RATE_BURST: '4' } });
  });
  afterEach(async () => {
    for (const c of sdk.splice(0)) c.close();
    await Promise.all(raw.splice(0).map((c) => c.close()));
    await receiveAll(stack, 10, 0); // leave the queue empty for the next test
  });
  after(async () => {
    await stack?.stop();
  });

  it('two clients publish from their sockets and both receive both events in seq order; a repeated id is one seq and one event', async () => {
    const topic = topicName('chat');
    const a = client('alice');
    const b = client('bob');
    const got = { a: [] as unknown[], b: [] as unknown[] };
    const seqs = { a: [] as number[], b: [] as number[] };
    let subscribed = 0;
    const onSnap = () => void subscribed++;
    a.subscribe(topic, onSnap, (d, i) => (got.a.push(d), seqs.a.push(i.seq)));
    b.subscribe(topic, onSnap, (d, i) => (got.b.push(d), seqs.b.push(i.seq)));
    await waitFor(() => subscribed === 2, 10_000, 'both snapshots');

    const first = await a.publish(topic, { from: 'alice' }, { id: 'm-1' });
    const second = await b.publish(topic, { from: 'bob' });
    const repeat = await a.publish(topic, { from: 'alice' }, { id: 'm-1' });
    expect(first.seq).to.equal(1);
    expect(second.seq).to.equal(2);
    expect(repeat.seq).to.equal(1);

    await waitFor(() => got.a.length >= 2 && got.b.length >= 2, 10_000, 'both events on both clients');
    await new Promise((r) => setTimeout(r, 300)); // a duplicate event would arrive by now
    expect(got.a).to.deep.equal([{ from: 'alice' }, { from: 'bob' }]);
    expect(got.b).to.deep.equal([{ from: 'alice' }, { from: 'bob' }]);
    expect(seqs.a).to.deep.equal([1, 2]);
    expect(seqs.b).to.deep.equal([1, 2]);
    expect((await history(stack, topic)).map((r) => r.seq)).to.deep.equal([1, 2]);
  });

  it('an application action reaches the inbound queue with the sender\'s identity, and the reply reaches exactly that connection', async () => {
    const asker = client('carol');
    const sameUser = client('carol');
    const heard: unknown[] = [];
    const heardBySameUser: unknown[] = [];
    asker.on('message', (d) => heard.push(d));
    sameUser.on('message', (d) => heardBySameUser.push(d));
    await Promise.all([asker.whenOpen(), sameUser.whenOpen()]);

    await asker.send('chat.ask', { q: 'what time is it?' }, { id: 'q1' });
    let msgs: InboundMessage[] = [];
    await waitFor(async () => (msgs = msgs.concat(await receiveAll(stack))).length > 0, 10_000, 'the action on the inbound queue');
    expect(msgs).to.have.length(1);
    const m = msgs[0];
    expect(m).to.include({ action: 'chat.ask', id: 'q1', userId: 'carol' });
    expect(m.data).to.deep.equal({ q: 'what time is it?' });
    expect(m.connectionId).to.be.a('string').and.not.empty;
    expect(m.claims).to.equal(undefined);
    expect(m.receivedAt).to.be.a('number');

    const reply = await post(stack, { connectionId: m.connectionId, data: { a: 'noon' } });
    expect(reply).to.deep.equal({ status: 200, body: { connectionId: m.connectionId, reached: true } });
    await waitFor(() => heard.length === 1, 10_000, 'the reply');
    expect(heard).to.deep.equal([{ a: 'noon' }]);
    // The reply is posted before POST /publish answers, so a stray copy would already be queued on
    // the other socket: an answer asked for on that socket now comes after it.
    await sameUser.presence(topicName('marker'));
    expect(heardBySameUser).to.deep.equal([]);
  });

  it('a reply to a connection that is gone answers reached:false and removes its row', async () => {
    const c = await rawClient('dave');
    await c.request({ action: 'chat.ask', data: 1 }, 'accepted');
    const [m] = await receiveAll(stack);
    const rowOf = async () => (await stack.clients.doc.send(new GetCommand({ TableName: stack.tables.connections, Key: { connectionId: m.connectionId }, ConsistentRead: true }))).Item;
    const row = await rowOf();
    expect(row).to.not.equal(undefined);
    await c.close();
    // $disconnect removes the row; put it back as the stale row of a missed $disconnect, which only a 410 reveals.
    await waitFor(async () => !(await rowOf()), 10_000, '$disconnect cleanup');
    await stack.clients.doc.send(new PutCommand({ TableName: stack.tables.connections, Item: row }));
    const reply = await post(stack, { connectionId: m.connectionId, data: 'late' });
    expect(reply).to.deep.equal({ status: 200, body: { connectionId: m.connectionId, reached: false } });
    expect(await rowOf()).to.equal(undefined);
  });

  it('a client publishing faster than its rate gets rate_limited with retryAfterMs, stays usable, and every accepted publish is delivered', async () => {
    const topic = topicName('flood');
    const c = await rawClient('erin');
    await c.request({ action: 'subscribe', topic }, 'snapshot');
    for (let i = 0; i < 8; i++) c.send({ action: 'publish', topic, data: i, id: `f-${i}` });
    await c.waitFor((fs) => fs.filter((f) => f.type === 'published' || (f.type === 'error' && f.code === 'rate_limited')).length === 8, 10_000, 'eight answers');
    const published = c.ofType('published');
    const limited = c.frames.filter((f) => f.type === 'error' && f.code === 'rate_limited');
    expect(limited.length).to.be.greaterThan(0);
    expect(published.length).to.be.at.least(4); // the burst
    for (const f of limited) {
      expect(f.retryAfterMs).to.be.a('number').greaterThan(0).and.at.most(500);
      expect(f.id).to.match(/^f-\d$/);
    }
    await c.waitFor((fs) => fs.filter((f) => f.type === 'event' && f.topic === topic).length === published.length, 10_000, 'every accepted publish delivered');
    expect(c.ofType('event').map((f) => f.seq)).to.deep.equal(published.map((_, i) => i + 1));
    // Still usable: after the bucket refills, a publish goes through.
    await new Promise((r) => setTimeout(r, 600));
    const again = await c.request({ action: 'publish', topic, data: 'later' }, ['published', 'error']);
    expect(again.type).to.equal('published');
  });

  it('the SDK rejects a rate-limited publish with the server\'s retryAfterMs', async () => {
    const topic = topicName('sdk-flood');
    const c = client('frank');
    await c.whenOpen();
    const results = await Promise.allSettled(Array.from({ length: 7 }, (_, i) => c.publish(topic, i)));
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as RealtimeError);
    expect(refused.length).to.be.greaterThan(0);
    expect(refused[0].code).to.equal('rate_limited');
    expect(refused[0].retryAfterMs).to.be.a('number').greaterThan(0);
  });

  describe('bad input: a clear error, nothing written, nothing queued', () => {
    const cases: [string, (topic: string) => unknown, string][] = [
      ['publish without topic', () => ({ action: 'publish', data: 1 }), 'missing_topic'],
      ['publish without data', (topic) => ({ action: 'publish', topic }), 'missing_data'],
      ['a non-string id', (topic) => ({ action: 'publish', topic, data: 1, id: 17 }), 'invalid_idempotency_key'],
      ['an id over 64 characters', (topic) => ({ action: 'publish', topic, data: 1, id: 'x'.repeat(65) }), 'invalid_idempotency_key'],
      ['an action that is not configured', () => ({ action: 'chat.shout', data: 1 }), 'unknown_action'],
      ['an application action without data', () => ({ action: 'chat.ask' }), 'missing_data'],
      ['a publish over 32 KB', (topic) => ({ action: 'publish', topic, data: 'x'.repeat(33 * 1024) }), 'frame_too_large'],
      ['a subscribe over 4 KB', () => ({ action: 'subscribe', topic: 't', pad: 'x'.repeat(5000) }), 'frame_too_large'],
    ];
    for (const [what, frame, code] of cases) {
      it(`${what} → ${code}`, async () => {
        const topic = topicName('bad');
        const c = await rawClient('grace');
        const f = frame(topic);
        const err = await c.request(f, ['error', 'published', 'accepted']);
        expect(err).to.include({ type: 'error', code });
        expect(err.message).to.be.a('string').and.not.empty;
        expect(await history(stack, topic)).to.deep.equal([]);
        expect(await receiveAll(stack, 10, 0)).to.deep.equal([]);
        // The connection stays usable.
        expect((await c.request({ action: 'ping' }, 'pong')).type).to.equal('pong');
      });
    }

    it('malformed JSON → invalid_json', async () => {
      const c = await rawClient('heidi');
      const start = c.frames.length;
      c.ws.send('{"action":"publish",');
      await c.waitFor((fs) => fs.length > start, 5000, 'an answer');
      expect(c.frames[start]).to.include({ type: 'error', code: 'invalid_json' });
      expect(await receiveAll(stack, 10, 0)).to.deep.equal([]);
    });

    it('POST /publish with a malformed connectionId → 400 invalid_target', async () => {
      const r = await post(stack, { connectionId: 'not a connection id!', data: 1 });
      expect(r.status).to.equal(400);
      expect(r.body.code).to.equal('invalid_target');
    });
  });
});

describe('two-way messaging (local stack, AUTH_MODE=jwt)', function () {
  this.timeout(40_000);
  const SECRET = 'a-test-secret-that-is-long-enough-for-hs256';
  let stack: LocalStack;
  const raw: TestClient[] = [];
  const token = (claims: Record<string, unknown>) =>
    new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m').sign(new TextEncoder().encode(SECRET));
  const rawClient = async (claims: Record<string, unknown>) => {
    const c = await TestClient.connect(stack.endpoints.websocketUrl, { protocols: ['bearer', await token(claims)] });
    raw.push(c);
    return c;
  };
  /** The publish function as the HTTP API's JWT authoriser would invoke it, as its own IAM principal. */
  const publishAs = async (claims: Record<string, unknown>, body: unknown) => {
    const { createHandler } = await import('../../../functions/publish');
    const h = createHandler({ ...stack.deps, clients: stack.clientsFor('publish') });
    const r = (await h({ body: JSON.stringify(body), requestContext: { authorizer: { jwt: { claims } } } })) as { statusCode: number; body: string };
    return { status: r.statusCode, body: JSON.parse(r.body) as Record<string, unknown> };
  };

  before(async () => {
    stack = await startTestStack({ env: { AUTH_MODE: 'jwt', JWT_HS256_SECRET: SECRET, APP_ACTIONS: 'chat.ask' } });
  });
  afterEach(async () => {
    await Promise.all(raw.splice(0).map((c) => c.close()));
    await receiveAll(stack, 10, 0);
  });
  after(async () => {
    await stack?.stop();
  });

  it('a publish outside the publish claim is forbidden and writes nothing; inside it is written', async () => {
    const allowed = topicName('room');
    const other = topicName('other');
    const c = await rawClient({ sub: 'ivan', topics: ['*'], publish: ['room:*'] });
    const refused = await c.request({ action: 'publish', topic: other, data: 1, id: 'p1' }, ['error', 'published']);
    expect(refused).to.include({ type: 'error', code: 'forbidden', topic: other, id: 'p1' });
    expect(await history(stack, other)).to.deep.equal([]);
    const ok = await c.request({ action: 'publish', topic: allowed, data: 2 }, ['error', 'published']);
    expect(ok).to.include({ type: 'published', topic: allowed, seq: 1 });
  });

  it('an application action carries the token\'s claims; a reply needs the sendToConnection claim (403 without it)', async () => {
    const c = await rawClient({ sub: 'judy', topics: ['*'], tier: 'gold' });
    await c.request({ action: 'chat.ask', data: 'hi' }, 'accepted');
    const [m] = await receiveAll(stack);
    expect(m).to.include({ action: 'chat.ask', userId: 'judy', connectionId: m.connectionId });
    expect(m.claims).to.include({ sub: 'judy', tier: 'gold' });

    const start = c.frames.length;
    const denied = await publishAs({ sub: 'publisher', publish: ['*'], sendToUser: ['*'] }, { connectionId: m.connectionId, data: 'x' });
    expect(denied.status).to.equal(403);
    expect(denied.body.code).to.equal('forbidden');
    const ok = await publishAs({ sub: 'bot', sendToConnection: ['*'] }, { connectionId: m.connectionId, data: 'answer' });
    expect(ok).to.deep.equal({ status: 200, body: { connectionId: m.connectionId, reached: true } });
    await c.waitFor((fs) => fs.slice(start).some((f) => f.type === 'message'), 5000, 'the reply');
    expect(c.frames.slice(start).filter((f) => f.type === 'message').map((f) => f.data)).to.deep.equal(['answer']);
  });
});
