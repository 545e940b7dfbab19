import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import { ItemStore } from '../../../lib/stores/items';
import { startTestStack, type LocalStack } from '../../support/stack';
import { waitFor } from '../../support/wait';
import { TestClient, type Frame } from './support/client';
import { postJson } from './support/http';

/**
 * Collections end to end (`batteryId:*`): publish → items (+ byCollection index) → stream →
 * fan-out → emulator → real `ws` clients. The stack caps snapshots at 8 members so the cap is
 * reachable with a few publishes.
 */
describe('collections (local stack)', function () {
  this.timeout(90_000);
  const CAP = 8;
  const MESSAGE_LIMIT = 128 * 1024;
  let stack: LocalStack;
  let decisionsFile: string;
  const clients: TestClient[] = [];
  const open = async () => {
    const c = await TestClient.connect(stack.endpoints.websocketUrl);
    clients.push(c);
    return c;
  };
  const publish = async (topic: string, data: unknown) => {
    for (let attempt = 1; ; attempt++) {
      const r = await postJson(`${stack.endpoints.httpUrl}/publish`, { topic, data });
      if (r.status === 503 && r.body.code === 'write_conflict' && attempt < 5) continue;
      if (r.status >= 300) throw new Error(`publish failed: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body as { seq: number };
    }
  };
  /** Frames of the collection snapshot answering a subscribe, up to the one without `more`. */
  const subscribeCollection = async (c: TestClient, pattern: string): Promise<Frame[]> => {
    const start = c.frames.length;
    c.send({ action: 'subscribe', topic: pattern });
    const isLast = (f: Frame) => f.type === 'snapshot' && f.topic === pattern && f.more !== true;
    await c.waitFor((fs) => fs.slice(start).some((f) => isLast(f) || f.type === 'error'), 20_000, `the last snapshot frame of ${pattern}`);
    const err = c.frames.slice(start).find((f) => f.type === 'error');
    if (err) throw new Error(`subscribe ${pattern}: ${JSON.stringify(err)}`);
    return c.frames.slice(start).filter((f) => f.type === 'snapshot' && f.topic === pattern);
  };
  type Member = { topic: string; seq: number; data: unknown; ts: number; truncated?: boolean };
  const membersOf = (frames: Frame[]) => frames.flatMap((f) => f.items as Member[]);
  const eventsOf = (c: TestClient, topic: string) => c.ofType('event').filter((e) => e.topic === topic).map((e) => e.seq as number);
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  before(async () => {
    // Every IAM decision of this stack as a JSON line (read per decision, so set for the whole
    // suite): the fan-out's DynamoDB calls are counted from it.
    decisionsFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'coll-')), 'decisions.jsonl');
    process.env.LOCAL_IAM_DECISIONS = decisionsFile;
    stack = await startTestStack({ env: { COLLECTION_MAX_MEMBERS: String(CAP) } });
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });
  after(async () => {
    await stack?.stop();
    delete process.env.LOCAL_IAM_DECISIONS;
    fs.rmSync(path.dirname(decisionsFile), { recursive: true, force: true });
  });

  it('answers one snapshot of every member at its current seq, then each member change once, in order, also when the member itself is subscribed', async () => {
    await publish('batteryId:1', { soc: 10 });
    for (const soc of [20, 21]) await publish('batteryId:2', { soc });
    for (const soc of [30, 31, 32]) await publish('batteryId:3', { soc });
    const c = await open();
    const frames = await subscribeCollection(c, 'batteryId:*');
    expect(frames).to.have.length(1);
    expect(frames[0]).to.not.have.property('more');
    expect(frames[0]).to.not.have.property('truncated');
    expect(membersOf(frames).map(({ topic, seq, data }) => ({ topic, seq, data }))).to.deep.equal([
      { topic: 'batteryId:1', seq: 1, data: { soc: 10 } },
      { topic: 'batteryId:2', seq: 2, data: { soc: 21 } },
      { topic: 'batteryId:3', seq: 3, data: { soc: 32 } },
    ]);

    await publish('batteryId:2', { soc: 22 });
    await c.waitFor(() => eventsOf(c, 'batteryId:2').includes(3), 10_000, 'batteryId:2 seq 3');
    const member = await c.request({ action: 'subscribe', topic: 'batteryId:2' }, 'snapshot');
    expect(member).to.include({ topic: 'batteryId:2', seq: 3 });
    // A connection on the member alone still gets its changes.
    const other = await open();
    await other.request({ action: 'subscribe', topic: 'batteryId:2' }, 'snapshot');
    await publish('batteryId:2', { soc: 23 });
    await publish('batteryId:2', { soc: 24 });
    await publish('batteryId:1', { soc: 11 });
    await c.waitFor(() => eventsOf(c, 'batteryId:2').includes(5) && eventsOf(c, 'batteryId:1').includes(2), 10_000, 'seq 5 and batteryId:1 seq 2');
    await other.waitFor(() => eventsOf(other, 'batteryId:2').includes(5), 10_000, 'seq 5 on the member subscriber');
    // Let any duplicate that fan-out might still post arrive before counting.
    await sleep(500);
    // Changes after the snapshot, each once and in order. (A change committed just before the
    // subscribe may still arrive from fan-out with a seq ≤ the snapshot's; clients drop those.)
    const after = (cl: TestClient, topic: string, seq: number) => eventsOf(cl, topic).filter((s) => s > seq);
    expect(after(c, 'batteryId:2', 2)).to.deep.equal([3, 4, 5]);
    expect(after(c, 'batteryId:1', 1)).to.deep.equal([2]);
    expect(after(c, 'batteryId:3', 3)).to.deep.equal([]);
    expect(after(other, 'batteryId:2', 3)).to.deep.equal([4, 5]);
    expect(c.ofType('event').find((e) => e.topic === 'batteryId:2' && e.seq === 5)).to.deep.include({ data: { soc: 24 } });
  });

  it('spreads a collection over 128 KB across frames under the limit that together hold every member, with an oversize member as a placeholder', async () => {
    const big = 'x'.repeat(30_000);
    const topics = Array.from({ length: 6 }, (_, i) => `big:${i + 1}`);
    for (const t of topics) await publish(t, { t, big });
    // 200 KB: only a direct table write can hold that (an item may hold 400 KB, a message 128 KB).
    const items = new ItemStore(stack.clients.doc, { itemsTable: stack.tables.items, historyTable: stack.tables.history, historyTtlSeconds: 3600 });
    await items.write('big:7', { huge: 'y'.repeat(200_000) });
    const c = await open();
    const frames = await subscribeCollection(c, 'big:*');
    expect(frames.length).to.be.greaterThan(1);
    frames.forEach((f, i) => {
      // The server's frames are compact JSON, so re-serialising gives their size back.
      expect(Buffer.byteLength(JSON.stringify(f), 'utf8')).to.be.at.most(MESSAGE_LIMIT);
      if (i < frames.length - 1) expect(f.more, `frame ${i}`).to.equal(true);
      else expect(f).to.not.have.property('more');
    });
    const members = membersOf(frames);
    expect(members.map((m) => m.topic)).to.deep.equal([...topics, 'big:7']);
    for (const m of members.slice(0, 6)) expect(m.data).to.deep.equal({ t: m.topic, big });
    expect(members[6]).to.deep.include({ topic: 'big:7', seq: 1, data: null, truncated: true });
  });

  it('past the member cap answers the first members in topic order and marks the snapshot truncated', async () => {
    const topics = Array.from({ length: CAP + 2 }, (_, i) => `capped:${String(i).padStart(2, '0')}`);
    await Promise.all(topics.map((t) => publish(t, { t })));
    const c = await open();
    const frames = await subscribeCollection(c, 'capped:*');
    expect(frames.at(-1)).to.include({ truncated: true });
    expect(membersOf(frames).map((m) => m.topic)).to.deep.equal(topics.slice(0, CAP));
  });

  it('after a reconnect during changes, re-subscribing the collection brings the view to the table', async () => {
    const topics = ['fleet:a', 'fleet:b', 'fleet:c'];
    for (const t of topics) await publish(t, { n: 0 });
    /** The client rule per member: a seq applies only if it moved; events wait for the snapshot's last frame. */
    const view = new Map<string, { seq: number; data: unknown }>();
    const attach = (c: TestClient) => {
      let held: Frame[] | undefined = [];
      const apply = (topic: string, seq: number, data: unknown) => {
        if ((view.get(topic)?.seq ?? 0) < seq) view.set(topic, { seq, data });
      };
      c.ws.on('message', (raw) => {
        const f = JSON.parse(raw.toString()) as Frame;
        if (f.type === 'event') {
          if (held) held.push(f);
          else apply(f.topic as string, f.seq as number, f.data);
        } else if (f.type === 'snapshot' && f.topic === 'fleet:*') {
          for (const m of f.items as Member[]) apply(m.topic, m.seq, m.data);
          if (f.more !== true) {
            for (const e of held ?? []) apply(e.topic as string, e.seq as number, e.data);
            held = undefined;
          }
        }
      });
    };
    let stop = false;
    let rounds = 0;
    const writer = (async () => {
      for (let n = 1; !stop; n++) {
        await Promise.all(topics.map((t) => publish(t, { n })));
        rounds++;
        await sleep(20);
      }
    })();
    // Changes made in each phase: counted in rounds of writes, not in time, which a slow run stretches.
    const writes = async (k: number, what: string) => {
      const until = rounds + k;
      await waitFor(() => rounds >= until, 10_000, `${k} rounds of changes ${what}`);
    };
    try {
      const first = await open();
      attach(first);
      await subscribeCollection(first, 'fleet:*');
      await writes(2, 'while subscribed');
      first.terminate();
      await writes(2, 'while the client is away');
      const second = await open();
      attach(second);
      await subscribeCollection(second, 'fleet:*');
      await writes(2, 'after the re-subscribe');
    } finally {
      stop = true;
      await writer;
    }
    const table = new Map<string, { seq: number; data: unknown }>();
    for (const t of topics) {
      const r = await stack.clients.doc.send(new QueryCommand({ TableName: stack.tables.items, KeyConditionExpression: 'topic = :t', ExpressionAttributeValues: { ':t': t }, ConsistentRead: true }));
      table.set(t, { seq: Number(r.Items![0].seq), data: r.Items![0].data });
    }
    const deadline = Date.now() + 15_000;
    while (JSON.stringify([...view].sort()) !== JSON.stringify([...table].sort()) && Date.now() < deadline) await sleep(50);
    expect(Object.fromEntries(view)).to.deep.equal(Object.fromEntries(table));
    expect(table.get('fleet:a')!.seq).to.be.greaterThan(3);
  });

  it('refuses to publish to a collection pattern and to resume a collection with sinceSeq', async () => {
    const r = await postJson(`${stack.endpoints.httpUrl}/publish`, { topic: 'batteryId:*', data: 1 });
    expect(r.status).to.equal(400);
    expect(r.body).to.include({ code: 'invalid_topic' });
    const c = await open();
    const err = await c.request({ action: 'subscribe', topic: 'batteryId:*', sinceSeq: 3 }, 'error');
    expect(err).to.include({ code: 'invalid_since_seq' });
  });

  it('costs fan-out one extra subscriptions Query per record of a collection member and none for a topic without a collection', async () => {
    const c = await open();
    await c.request({ action: 'subscribe', topic: 'meterplain' }, 'snapshot');
    await c.request({ action: 'subscribe', topic: 'meter:1' }, 'snapshot');
    // Stream polling (GetRecords, GetShardIterator, …) runs whether records come or not: not per record.
    const STREAM = /^dynamodb:(GetRecords|GetShardIterator|DescribeStream|ListStreams)$/;
    const READS = /^dynamodb:(Query|Scan|GetItem|BatchGetItem)$/;
    const fanoutReads = () =>
      fs
        .readFileSync(decisionsFile, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { principal: string; action: string; resource: string })
        .filter((d) => d.principal.endsWith('-fanout-role') && !STREAM.test(d.action) && READS.test(d.action));
    const measure = async (topic: string, n: number) => {
      const before = fanoutReads().length;
      const seen = eventsOf(c, topic).length;
      for (let i = 0; i < n; i++) await publish(topic, { i });
      await c.waitFor(() => eventsOf(c, topic).length === seen + n, 10_000, `${n} events of ${topic}`);
      const calls = fanoutReads().slice(before);
      return { readsPerRecord: calls.length / n, subscriptionQueriesPerRecord: calls.filter((d) => d.action === 'dynamodb:Query' && d.resource.endsWith('-subscriptions')).length / n };
    };
    const plain = await measure('meterplain', 5);
    const member = await measure('meter:1', 5);
    expect(plain).to.deep.equal({ readsPerRecord: 1, subscriptionQueriesPerRecord: 1 });
    expect(member).to.deep.equal({ readsPerRecord: 2, subscriptionQueriesPerRecord: 2 });
  });
});
