import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { WebSocket as NodeWebSocket } from 'ws';
import { connect, type PresenceChange, type RealtimeClient } from '../../../client/index';
import { startTestStack, type LocalStack } from '../../support/stack';
import { waitFor } from '../../support/wait';
import { TestClient, type Frame } from '../subscriber/support/client';
import { MAX_CONNECTION_SECONDS } from '../../../lib/config';
import { userPresence } from '../../../lib/presence/presence';
import { ConnectionStore } from '../../../lib/stores/connections';
import { LastSeenStore } from '../../../lib/stores/last-seen';

/**
 * Presence against the local stack: the `presence` action and GET /presence list a topic's live
 * users; join/leave reach the members of PRESENCE_TOPICS topics up to the member cap; a socket
 * that vanished without `$disconnect` leaves once a delivery finds it gone (410).
 */
describe('presence (local stack)', function () {
  this.timeout(40_000);
  let stack: LocalStack;
  const clients: TestClient[] = [];
  const MAX_MEMBERS = 4;
  const room = () => `room:${randomUUID().slice(0, 8)}`;
  const open = async (userId: string) => {
    const c = await TestClient.connect(`${stack.endpoints.websocketUrl}?userId=${encodeURIComponent(userId)}`);
    clients.push(c);
    return c;
  };
  const get = async (query: string) => {
    const res = await fetch(`${stack.endpoints.httpUrl}/presence?${query}`);
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const changes = (c: TestClient, topic: string) =>
    c.frames.filter((f) => (f.type === 'join' || f.type === 'leave') && f.topic === topic).map((f) => `${f.type}:${String(f.userId)}`);
  const idOf = async (userId: string) => {
    const r = await stack.clients.doc.send(
      new QueryCommand({ TableName: stack.tables.connections, IndexName: 'byUser', KeyConditionExpression: 'userId = :u', ExpressionAttributeValues: { ':u': userId } }),
    );
    return String(r.Items![0]!.connectionId);
  };

  before(async () => {
    stack = await startTestStack({ env: { PRESENCE_TOPICS: 'room:*', PRESENCE_EVENT_MAX_MEMBERS: String(MAX_MEMBERS) } });
  });
  after(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await stack?.stop();
  });

  it('two users with three connections on a topic: 2 users / 3 connections, from the socket and from GET /presence', async () => {
    const topic = `lobby:${randomUUID().slice(0, 8)}`; // not a presence topic: the list works on every topic
    const a1 = await open('alice');
    const a2 = await open('alice');
    const b = await open('bob');
    for (const c of [a1, a2, b]) await c.request({ action: 'subscribe', topic }, 'snapshot');

    const frame = await b.request({ action: 'presence', topic }, 'presence');
    const expected = { type: 'presence', topic, users: [{ userId: 'alice', connections: 2 }, { userId: 'bob', connections: 1 }], count: { users: 2, connections: 3 } };
    expect(frame).to.deep.equal(expected);
    const http = await get(`topic=${encodeURIComponent(topic)}`);
    expect(http.status).to.equal(200);
    expect(http.body).to.deep.equal(expected);
    // Nobody heard a join: the topic is not one of PRESENCE_TOPICS.
    expect([a1, a2, b].flatMap((c) => changes(c, topic))).to.deep.equal([]);
  });

  it('cuts the list past the configured size and says so, with complete counts', async () => {
    const small = await startTestStack({ env: { PRESENCE_LIST_LIMIT: '2' } });
    const local: TestClient[] = [];
    try {
      const topic = room();
      for (const u of ['u1', 'u2', 'u3']) {
        const c = await TestClient.connect(`${small.endpoints.websocketUrl}?userId=${u}`);
        local.push(c);
        await c.request({ action: 'subscribe', topic }, 'snapshot');
      }
      const frame = await local[0]!.request({ action: 'presence', topic }, 'presence');
      expect(frame).to.deep.equal({
        type: 'presence',
        topic,
        users: [{ userId: 'u1', connections: 1 }, { userId: 'u2', connections: 1 }],
        count: { users: 3, connections: 3 },
        truncated: true,
      });
    } finally {
      await Promise.all(local.map((c) => c.close()));
      await small.stop();
    }
  });

  it('join and leave reach the members in order: first connection joins, last one leaves (unsubscribe and disconnect)', async () => {
    const topic = room();
    const watcher = await open('wendy');
    await watcher.request({ action: 'subscribe', topic }, 'snapshot');
    const c1 = await open('carol');
    const c2 = await open('carol');
    await c1.request({ action: 'subscribe', topic }, 'snapshot');
    await watcher.waitFor(() => changes(watcher, topic).length === 1, 5000, 'carol joins');
    await c2.request({ action: 'subscribe', topic }, 'snapshot'); // a second connection: no join
    await c2.request({ action: 'subscribe', topic }, 'snapshot'); // a repeated subscribe: no join
    const d = await open('dan');
    await d.request({ action: 'subscribe', topic }, 'snapshot');
    await watcher.waitFor(() => changes(watcher, topic).length === 2, 5000, 'dan joins');
    await c1.request({ action: 'unsubscribe', topic }, 'unsubscribed'); // carol still has c2: no leave
    await d.request({ action: 'unsubscribe', topic }, 'unsubscribed');
    await watcher.waitFor(() => changes(watcher, topic).length === 3, 5000, 'dan leaves');
    await c2.close(); // $disconnect: carol's last connection
    await watcher.waitFor(() => changes(watcher, topic).length === 4, 5000, 'carol leaves');
    // A duplicate would come from another frame's announcement, which runs after that frame's
    // answer: the emulator answers a ping on c1 and on d once their earlier invocations (and what
    // those posted) are done, and a ping on the watcher then comes after anything posted to it.
    await Promise.all([c1, d].map((c) => c.request({ action: 'ping' }, 'pong')));
    await watcher.request({ action: 'ping' }, 'pong');
    expect(changes(watcher, topic)).to.deep.equal(['join:carol', 'join:dan', 'leave:dan', 'leave:carol']);
    // carol's first connection heard dan come and go while it was subscribed, and not its own join.
    expect(changes(c1, topic)).to.deep.equal(['join:dan']);
    expect(changes(d, topic)).to.deep.equal([]);
  });

  it('sends no join or leave once the topic has more subscribers than the cap; counts still answer', async () => {
    const topic = room();
    const members: TestClient[] = [];
    for (let i = 0; i < MAX_MEMBERS; i++) {
      const c = await open(`m${i}`);
      await c.request({ action: 'subscribe', topic }, 'snapshot');
      members.push(c);
    }
    await members[0]!.waitFor(() => changes(members[0]!, topic).length === MAX_MEMBERS - 1, 5000, 'joins under the cap');
    const late = await open('late');
    await late.request({ action: 'subscribe', topic }, 'snapshot'); // MAX_MEMBERS + 1 subscribers now
    await late.request({ action: 'unsubscribe', topic }, 'unsubscribed'); // MAX_MEMBERS again: leave is sent
    await members[0]!.waitFor(() => changes(members[0]!, topic).includes('leave:late'), 5000, 'the leave at the cap');
    const over = await open('over');
    await over.request({ action: 'subscribe', topic }, 'snapshot');
    // Answered once over's subscribe invocation, with its join announcement, is done (the
    // emulator runs a connection's frames one after another), so a join:over would be on
    // members[0]'s socket before the pong asked for next.
    const frame = await over.request({ action: 'presence', topic }, 'presence');
    expect(frame.count).to.deep.equal({ users: MAX_MEMBERS + 1, connections: MAX_MEMBERS + 1 });
    await members[0]!.request({ action: 'ping' }, 'pong');
    expect(changes(members[0]!, topic)).to.deep.equal([...Array.from({ length: MAX_MEMBERS - 1 }, (_, i) => `join:m${i + 1}`), 'leave:late']);
  });

  it('GET /presence?userId= tells online users (connections, lastSeen) from offline ones (lastSeen of the last disconnect) and unknown ones', async () => {
    const before = Date.now();
    const e = await open('erin');
    const online = await get('userId=erin');
    expect(online.status).to.equal(200);
    expect(online.body).to.include({ userId: 'erin', online: true, connections: 1 });
    expect(online.body.lastSeen).to.be.a('number').and.at.least(before);

    await e.close();
    let offline: Record<string, unknown> = {};
    await waitFor(async () => (offline = (await get('userId=erin')).body).online === false, 5000, 'erin offline');
    expect(offline).to.include({ userId: 'erin', online: false, connections: 0 });
    expect(offline.lastSeen).to.be.a('number').and.at.least(online.body.lastSeen as number);

    expect((await get('userId=nobody-ever')).body).to.deep.equal({ userId: 'nobody-ever', online: false, connections: 0, lastSeen: null });
  });

  it('a user read while their last connection goes away is offline with that removal\'s lastSeen, never null', async () => {
    const connections = new ConnectionStore(stack.clients.doc, { table: stack.tables.connections, ttlSeconds: 600, maxLifetimeSeconds: MAX_CONNECTION_SECONDS, clock: Date.now });
    const lastSeen = new LastSeenStore(stack.clients.doc, { table: stack.tables.users });
    const userId = `uma-${randomUUID().slice(0, 8)}`;
    const u = await open(userId);
    const id = await idOf(userId);
    // The read starts while the user is online; its look at the live connections is held until
    // the disconnect has recorded lastSeen and deleted the connection row.
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const gated = Object.create(connections) as ConnectionStore;
    gated.liveOfUser = async (user) => {
      await held;
      return connections.liveOfUser(user);
    };
    const reading = userPresence(userId, { connections: gated, lastSeen });
    await u.close();
    await waitFor(async () => (await stack.clients.doc.send(new GetCommand({ TableName: stack.tables.connections, Key: { connectionId: id }, ConsistentRead: true }))).Item === undefined, 5000, 'the connection row deleted');
    release();
    const seen = await reading;
    expect(seen).to.include({ userId, online: false, connections: 0 });
    expect(seen.lastSeen).to.be.a('number').and.equal(await lastSeen.get(userId));
  });

  it('GET /presence refuses a request without exactly one of topic or userId, naming them', async () => {
    for (const q of ['', 'topic=a&userId=b']) {
      const r = await get(q);
      expect(r.status).to.equal(400);
      expect(r.body).to.include({ code: 'invalid_target' });
      expect(String(r.body.message)).to.match(/"topic" or "userId"/);
    }
  });

  it('the client SDK: rt.presence(topic) resolves with the presence body, rt.on(join|leave) hears others come and go', async () => {
    const topic = room();
    const sdk: RealtimeClient[] = [];
    try {
      const rt = connect(stack.endpoints.websocketUrl, { WebSocket: NodeWebSocket, userId: 'sam' });
      sdk.push(rt);
      rt.on('error', () => {});
      const heard: string[] = [];
      const hear = (kind: string) => (c: PresenceChange) => c.topic === topic && heard.push(`${kind}:${c.userId}`);
      rt.on('join', hear('join'));
      rt.on('leave', hear('leave'));
      let snap = false;
      rt.subscribe(topic, () => (snap = true));
      await waitFor(() => snap, 10_000, 'the snapshot');
      const other = await open('tom');
      await other.request({ action: 'subscribe', topic }, 'snapshot');
      await waitFor(() => heard.length === 1, 5000, 'tom joins');
      const [p1, p2] = await Promise.all([rt.presence(topic), rt.presence(`${topic}:empty`)]);
      expect(p1).to.deep.equal({ topic, users: [{ userId: 'sam', connections: 1 }, { userId: 'tom', connections: 1 }], count: { users: 2, connections: 2 } });
      expect(p2).to.deep.equal({ topic: `${topic}:empty`, users: [], count: { users: 0, connections: 0 } });
      await other.request({ action: 'unsubscribe', topic }, 'unsubscribed');
      await waitFor(() => heard.length === 2, 5000, 'tom leaves');
      expect(heard).to.deep.equal(['join:tom', 'leave:tom']);
    } finally {
      for (const c of sdk) c.close();
    }
  });

  it('a connection dropped without $disconnect stays listed until a delivery finds it gone (410), then leaves', async () => {
    const topic = room();
    const live = await open('lena');
    await live.request({ action: 'subscribe', topic }, 'snapshot');
    const doomed = await TestClient.connect(`${stack.endpoints.websocketUrl}?userId=ghost`);
    await doomed.request({ action: 'subscribe', topic }, 'snapshot');
    await live.waitFor(() => changes(live, topic).includes('join:ghost'), 5000, 'ghost joins');
    const ghostId = await idOf('ghost');
    const connRow = (await stack.clients.doc.send(new GetCommand({ TableName: stack.tables.connections, Key: { connectionId: ghostId }, ConsistentRead: true }))).Item!;
    const subRow = (await stack.clients.doc.send(new GetCommand({ TableName: stack.tables.subscriptions, Key: { topic, connectionId: ghostId }, ConsistentRead: true }))).Item!;
    // The socket goes; once $disconnect has cleaned up, its rows are put back, as if $disconnect
    // had never run (API Gateway calls it best effort only).
    doomed.terminate();
    await live.waitFor(() => changes(live, topic).includes('leave:ghost'), 5000, '$disconnect leave');
    await stack.clients.doc.send(new PutCommand({ TableName: stack.tables.connections, Item: connRow }));
    await stack.clients.doc.send(new PutCommand({ TableName: stack.tables.subscriptions, Item: subRow }));
    const users = async () => ((await get(`topic=${encodeURIComponent(topic)}`)).body.users as { userId: string }[]).map((u) => u.userId);
    expect(await users()).to.deep.equal(['ghost', 'lena']);

    const res = await fetch(`${stack.endpoints.httpUrl}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ topic, data: 1 }) });
    expect(res.status).to.equal(202);
    await live.waitFor(() => changes(live, topic).filter((c) => c === 'leave:ghost').length === 2, 10_000, 'the leave found by fan-out');
    expect(await users()).to.deep.equal(['lena']);
    expect(live.frames.some((f: Frame) => f.type === 'event' && f.topic === topic)).to.equal(true);
  });
});
