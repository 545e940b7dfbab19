import { expect } from 'chai';
import { GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { SetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { createHandler as createFanout } from '../../../functions/fanout';
import { ENV } from '../../../lib/config';
import { createLogger } from '../../../lib/log';
import { partitionOf, partitionRange } from '../../../lib/fanout/partitions';
import { ItemStore } from '../../../lib/stores/items';
import { startTestStack, type LocalStack } from '../../support/stack';
import { TestClient } from '../subscriber/support/client';
import { waitFor } from '../../support/wait';

/**
 * Large topics in parallel, end to end on the local stack: publish over HTTP → items stream →
 * fanout (counts the topic, queues one message per record and partition on the FIFO queue) →
 * the fanout-partition function, once per partition, through the FIFO poller → real `ws`
 * subscribers of the API Gateway emulator. IAM enforced: every call is made as its function.
 * Threshold 50, 4 partitions, 60 subscribers.
 */
describe('large topics delivered in parallel partitions', function () {
  this.timeout(60_000);
  const SUBSCRIBERS = 60;
  const PARTITIONS = 4;
  let stack: LocalStack;
  const clients: TestClient[] = [];
  /** userId → connectionId of the subscribers. */
  const ids = new Map<string, string>();
  /** userId → the subscriber's socket. */
  const byUser = new Map<string, TestClient>();

  const publish = async (topic: string, data: unknown) => {
    const r = await fetch(`${stack.endpoints.httpUrl}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ topic, data }) });
    expect(r.status, await r.clone().text()).to.be.oneOf([200, 202]);
    return ((await r.json()) as { seq: number }).seq;
  };
  const rowsOf = async (topic: string) =>
    (
      await stack.clients.doc.send(
        new QueryCommand({ TableName: stack.tables.subscriptions, KeyConditionExpression: 'topic = :t', ExpressionAttributeValues: { ':t': topic }, ConsistentRead: true }),
      )
    ).Items ?? [];
  const subscribeAll = async (topic: string, prefix: string) => {
    const cs = await Promise.all(Array.from({ length: SUBSCRIBERS }, (_, i) => TestClient.connect(`${stack.endpoints.websocketUrl}?userId=${prefix}${i}`)));
    clients.push(...cs);
    cs.forEach((c, i) => byUser.set(`${prefix}${i}`, c));
    // Ten at a time, with generous time: 60 replies at once on a loaded 2-core machine can take longer than a reply may.
    for (let i = 0; i < cs.length; i += 10) await Promise.all(cs.slice(i, i + 10).map((c) => c.request({ action: 'subscribe', topic }, 'snapshot', 20_000)));
    for (const row of await rowsOf(topic)) ids.set(String(row.userId), String(row.connectionId));
    return cs;
  };
  const seqsOf = (c: TestClient, topic: string) => c.ofType('event').filter((e) => e.topic === topic).map((e) => e.seq as number);
  /** Each seq at its first arrival: what a client applies (it drops a seq it already has, DESIGN §3). */
  const applied = (c: TestClient, topic: string) => [...new Set(seqsOf(c, topic))];
  /** The stack's warnings and errors: a record retried or a subscriber resynced explains a re-sent frame. */
  const stackLog: string[] = [];
  const retriesLogged = () => stackLog.filter((l) => /will be retried|forcing the connection to resync/.test(l));
  /**
   * Every event once and in order: the applied sequence is exactly `expected`; on the wire too,
   * unless the fan-out reported a failed delivery (delivery is at least once: a retried record
   * re-sends what some subscribers already had, which happens on this shared machine under load).
   */
  const expectOnceInOrder = (subs: TestClient[], topic: string, expected: number[]) => {
    for (const c of subs) expect(applied(c, topic)).to.deep.equal(expected);
    if (retriesLogged().length === 0) for (const c of subs) expect(seqsOf(c, topic)).to.deep.equal(expected);
  };
  const poller = () => stack.queuePollers[0]!;

  before(async () => {
    stack = await startTestStack({
      env: { [ENV.fanoutPartitionThreshold]: '50', [ENV.fanoutPartitions]: String(PARTITIONS) },
      log: createLogger({ level: 'warn', write: (l) => stackLog.push(l) }),
    });
    // The deployed queue's message limit (infra/components/queues.ts sets none: the provider's
    // 262,144 bytes); the emulator's own default is SQS's newer maximum, 1 MiB.
    await stack.clients.sqs.send(new SetQueueAttributesCommand({ QueueUrl: stack.queueUrls.fanoutPartitions, Attributes: { MaximumMessageSize: '262144' } }));
  });
  afterEach(() => stack.websocket.faults.clear());
  after(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await stack?.stop();
  });

  it('delivers every event once and in order to every subscriber, one partition per worker, and prunes a 410 in one partition', async () => {
    const topic = 'big:1';
    const subs = await subscribeAll(topic, 'p');
    // A subscription whose socket is gone, in partition 2: only that partition's worker meets it.
    const range = partitionRange(2, PARTITIONS);
    const staleId = `${range.from}staleStale12=`;
    expect(partitionOf(staleId, PARTITIONS)).to.equal(2);
    const expiresAt = Math.floor(Date.now() / 1000) + 3600;
    await stack.clients.doc.send(new PutCommand({ TableName: stack.tables.connections, Item: { connectionId: staleId, userId: 'stale', topics: [topic], connectedAt: Date.now(), expiresAt } }));
    await stack.clients.doc.send(new PutCommand({ TableName: stack.tables.subscriptions, Item: { topic, connectionId: staleId, userId: 'stale', expiresAt } }));
    // The subscribers really span the partitions (the split is by connection id).
    const byPartition = new Set([...ids.values()].map((id) => partitionOf(id, PARTITIONS)));
    expect(byPartition.size).to.equal(PARTITIONS);

    const before = { ...poller().stats };
    const N = 25;
    for (let i = 1; i <= N; i++) await publish(topic, { i });

    await Promise.all(subs.map((c, i) => c.waitFor(() => applied(c, topic).length >= N, 20_000, `${N} events on subscriber ${i}`)));
    await new Promise((r) => setTimeout(r, 200));
    const expected = Array.from({ length: N }, (_, i) => i + 1);
    expectOnceInOrder(subs, topic, expected);
    expect(subs.every((c) => !c.closed)).to.equal(true);

    // Delivered by the partition workers: one message per record and partition went through the queue.
    // (A partition retried after a failed delivery hands its messages to the worker again.)
    if (retriesLogged().length === 0) expect(poller().stats.messages - before.messages).to.equal(N * PARTITIONS);
    else expect(poller().stats.messages - before.messages).to.be.at.least(N * PARTITIONS);
    expect(poller().stats.deadLettered).to.equal(before.deadLettered);

    // The 410 pruned the stale connection: its subscription and connection rows are gone.
    await waitFor(async () => !(await rowsOf(topic)).some((r) => r.connectionId === staleId), 10_000, 'the stale subscription removed');
    const conn = await stack.clients.doc.send(new GetCommand({ TableName: stack.tables.connections, Key: { connectionId: staleId }, ConsistentRead: true }));
    expect(conn.Item).to.equal(undefined);
    expect((await rowsOf(topic)).length).to.equal(SUBSCRIBERS);
  });

  it('a partition whose deliveries fail is retried by itself while the other partitions go on, then catches up in order', async () => {
    const topic = 'big:2';
    const subs = await subscribeAll(topic, 'q');
    const idOf = (i: number) => ids.get(`q${i}`)!;
    const failing = subs.map((_, i) => i).filter((i) => partitionOf(idOf(i), PARTITIONS) === 1);
    expect(failing.length).to.be.greaterThan(1);
    // Every subscriber of partition 1 answers 500: most of the partition's deliveries fail, which is
    // not one subscriber's fault, so its record fails (nobody is resynced) and its group is held.
    const r = await fetch(`${stack.endpoints.managementUrl}/_emulator/faults`, {
      method: 'PUT',
      body: JSON.stringify({ connections: Object.fromEntries(failing.map((i) => [idOf(i), 500])) }),
    });
    expect(r.status).to.equal(200);
    const retriesBefore = poller().stats.retries;

    const N = 5;
    for (let i = 1; i <= N; i++) await publish(topic, { i });
    const others = subs.filter((_, i) => !failing.includes(i));
    await Promise.all(others.map((c) => c.waitFor(() => applied(c, topic).length >= N, 20_000, 'the healthy partitions')));
    await waitFor(async () => poller().stats.retries > retriesBefore, 20_000, 'partition 1 retried');
    for (const i of failing) expect(seqsOf(subs[i]!, topic), `subscriber ${i} of the failing partition`).to.deep.equal([]);

    stack.websocket.faults.clear();
    await Promise.all(failing.map((i) => subs[i]!.waitFor(() => applied(subs[i]!, topic).length >= N, 30_000, `partition 1 subscriber ${i} catching up`)));
    await new Promise((res) => setTimeout(res, 200));
    const expected = Array.from({ length: N }, (_, i) => i + 1);
    // Partition 1's record failed on purpose (widespread): only it is retried, and its subscribers had nothing yet.
    for (const c of subs) expect(applied(c, topic)).to.deep.equal(expected);
    if (retriesLogged().every((l) => l.includes('"topic":"big:2"') && l.includes('will be retried'))) {
      for (const c of subs) expect(seqsOf(c, topic)).to.deep.equal(expected);
    }
    expect(subs.every((c) => !c.closed)).to.equal(true);
  });

  it('a topic below the threshold is delivered by the stream fan-out itself, without the queue', async () => {
    const small = await Promise.all(['s1', 's2'].map((u) => TestClient.connect(`${stack.endpoints.websocketUrl}?userId=${u}`)));
    clients.push(...small);
    await Promise.all(small.map((c) => c.request({ action: 'subscribe', topic: 'small:1' }, 'snapshot')));
    const before = poller().stats.messages;
    for (let i = 1; i <= 3; i++) await publish('small:1', i);
    await Promise.all(small.map((c) => c.waitFor(() => applied(c, 'small:1').length >= 3, 10_000, 'small topic events')));
    expectOnceInOrder(small, 'small:1', [1, 2, 3]);
    expect(poller().stats.messages).to.equal(before);
  });
  it('a large topic\'s record that cannot be queued is reported and holds back its topic\'s later records, while other topics are delivered', async () => {
    // big:1 (60 subscribers, seq 25 so far) and small:1 (2 subscribers) exist from the tests above.
    const big = clients.filter((c) => seqsOf(c, 'big:1').length > 0);
    const small = clients.filter((c) => c.ofType('snapshot').some((f) => f.topic === 'small:1'));
    expect(big).to.have.length(SUBSCRIBERS);
    expect(small).to.have.length(2);
    const bigBefore = big.map((c) => seqsOf(c, 'big:1').length);
    const smallBefore = small.map((c) => seqsOf(c, 'small:1').length);
    // The injected fault: a partition queue that does not exist, so SendMessageBatch fails.
    const missing = stack.queueUrls.fanoutPartitions.replace(/[^/]+$/, 'missing-partitions.fifo');
    const p = stack.config.subscriber.partitioning!;
    const logLines: string[] = [];
    const deps = {
      ...stack.deps,
      log: createLogger({ write: (l) => logLines.push(l) }),
      clients: stack.clientsFor('fanout'),
      config: { ...stack.config, subscriber: { ...stack.config.subscriber, partitioning: { ...p, queueUrl: missing } } },
    };
    const record = (topic: string, seq: number, n: number) => ({
      eventName: 'MODIFY',
      dynamodb: { SequenceNumber: String(9e20 + n), NewImage: marshall({ topic, seq, data: { n }, ts: Date.now() }) },
    });
    const batch = [record('big:1', 26, 1), record('small:1', 4, 2), record('big:1', 27, 3)];
    const out = await createFanout(deps, { retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 } })({ Records: batch });

    expect(out.batchItemFailures).to.deep.equal([{ itemIdentifier: batch[0]!.dynamodb.SequenceNumber }]);
    expect(logLines.filter((l) => l.includes('could not be queued to its partitions') && l.includes('"seq":26'))).to.have.length(1);
    await Promise.all(small.map((c, i) => c.waitFor(() => seqsOf(c, 'small:1').length > smallBefore[i]!, 10_000, 'the small topic')));
    for (const c of small) expect(seqsOf(c, 'small:1').at(-1)).to.equal(4);
    await new Promise((r) => setTimeout(r, 300));
    // Neither big:1 record went out directly: 27 would have overtaken 26, which goes again with the retried batch.
    expect(big.map((c) => seqsOf(c, 'big:1').length)).to.deep.equal(bigBefore);
  });
  it('an item too large for a queue message reaches every subscriber as the same truncated placeholder the direct path sends, and the topic goes on in order', async () => {
    // big:1 (60 subscribers, seq 25 applied; the test above queued nothing) and small:1 (2 subscribers, direct path).
    const big = clients.filter((c) => applied(c, 'big:1').length === 25);
    const small = clients.filter((c) => c.ofType('snapshot').some((f) => f.topic === 'small:1'));
    expect(big).to.have.length(SUBSCRIBERS);
    const items = new ItemStore(stack.clients.doc, { itemsTable: stack.tables.items, historyTable: stack.tables.history, historyTtlSeconds: 3600 });
    // Straight into the items table (publish refuses what cannot be delivered whole). 120,000 small
    // numbers: ~240 KB of JSON, a frame over API Gateway's 128 KB; as DynamoDB JSON ({"N":"7"}
    // each) ~1.2 MB, over what SQS takes in one message. Then text over SQS's 256 KiB even as JSON.
    const numbers = new Array<number>(120_000).fill(7);
    const text = 'x'.repeat(300_000);
    const bigSeqs: number[] = [];
    for (const data of [numbers, text, { after: 'large' }]) bigSeqs.push((await items.write('big:1', data)).seq);
    expect(bigSeqs).to.deep.equal([26, 27, 28]);
    const smallBefore = small.map((c) => seqsOf(c, 'small:1').length);
    for (const data of [numbers, text]) await items.write('small:1', data);

    await Promise.all(big.map((c, i) => c.waitFor(() => applied(c, 'big:1').includes(28), 20_000, `seq 28 after the large items on subscriber ${i}`)));
    // small:1's table row is at seq 3 (the test above sent seq 4 without writing it): these are 4 and 5 again, hence raw frames.
    await Promise.all(small.map((c, i) => c.waitFor(() => seqsOf(c, 'small:1').length >= smallBefore[i]! + 2, 10_000, 'the large items on the small topic')));
    /** A frame without what differs between topics and deliveries. */
    const shape = (f: Record<string, unknown>) => ({ ...f, topic: '-', seq: 0, ts: 0, latencyMs: typeof f.latencyMs });
    const directFrames = small[0]!.ofType('event').filter((e) => e.topic === 'small:1').slice(-2).map(shape);
    expect(directFrames).to.deep.equal([0, 1].map(() => ({ type: 'event', topic: '-', seq: 0, data: null, ts: 0, truncated: true, latencyMs: 'number' })));
    for (const c of big) {
      expect(applied(c, 'big:1').slice(-3)).to.deep.equal(bigSeqs);
      const frames = c.ofType('event').filter((e) => e.topic === 'big:1' && bigSeqs.includes(e.seq as number));
      const first = bigSeqs.map((seq) => frames.find((f) => f.seq === seq)!);
      expect(first.slice(0, 2).map(shape)).to.deep.equal(directFrames);
      expect(first[2]!.data).to.deep.equal({ after: 'large' });
    }
    expect(stackLog.filter((l) => l.includes('could not be queued'))).to.deep.equal([]);
  });
  it('a single failing subscriber in a partition is closed to resync, and its partition still delivers to the others', async () => {
    // big:2 (60 subscribers, seq 5 so far) from the retry test above.
    const subs = clients.filter((c) => applied(c, 'big:2').length === 5 && !c.closed);
    expect(subs).to.have.length(SUBSCRIBERS);
    const badId = ids.get('q7')!;
    const bad = byUser.get('q7')!;
    const r = await fetch(`${stack.endpoints.managementUrl}/_emulator/faults`, { method: 'PUT', body: JSON.stringify({ connections: { [badId]: 500 } }) });
    expect(r.status).to.equal(200);
    const seq = await publish('big:2', { resync: true });
    const others = subs.filter((c) => c !== bad);
    await Promise.all(others.map((c) => c.waitFor(() => seqsOf(c, 'big:2').includes(seq), 20_000, 'the record on the healthy subscribers')));
    await bad.waitFor(() => bad.closed, 20_000, 'the failing subscriber closed');
    expect(bad.closeCode).to.equal(1000);
    expect(seqsOf(bad, 'big:2')).to.not.include(seq);
    await waitFor(async () => !(await rowsOf('big:2')).some((row) => row.connectionId === badId), 10_000, "the resynced connection's rows removed");
  });
});
