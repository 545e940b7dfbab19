import { expect } from 'chai';
import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import { createTables } from '../../../local/bootstrap';
import { StreamPoller, type StreamFailure } from '../../../local/streams/stream-poller';
import { LOCAL_CREDENTIALS, testDynamoEndpoint, uniquePrefix } from '../../support/env';
import { waitFor } from '../../support/wait';

type Rec = { eventName: string; dynamodb: { SequenceNumber: string; NewImage: any; Keys: any; ApproximateCreationDateTime: number } };

const until = (cond: () => boolean) => waitFor(cond, 10_000, 'the poller');

describe('stream poller (Lambda event source mapping semantics)', () => {
  let ddb: DynamoDBClient;
  let streams: DynamoDBStreamsClient;
  const pollers: StreamPoller[] = [];
  before(() => {
    ddb = new DynamoDBClient({ endpoint: testDynamoEndpoint(), region: 'us-east-1', credentials: LOCAL_CREDENTIALS });
    streams = new DynamoDBStreamsClient({ endpoint: testDynamoEndpoint(), region: 'us-east-1', credentials: LOCAL_CREDENTIALS });
  });
  afterEach(async () => {
    await Promise.all(pollers.splice(0).map((p) => p.stop()));
  });
  after(() => {
    ddb.destroy();
    streams.destroy();
  });

  async function itemsTable() {
    const { names, streamArns } = await createTables(ddb, uniquePrefix());
    const put = (topic: string, seq: number) =>
      ddb.send(new PutItemCommand({ TableName: names.items, Item: { topic: { S: topic }, seq: { N: String(seq) }, bin: { B: new Uint8Array([1, 2]) } } }));
    return { arn: streamArns.items!, put };
  }

  it('delivers Lambda-shaped records in order', async () => {
    const { arn, put } = await itemsTable();
    const got: Rec[] = [];
    const p = new StreamPoller({ streams, streamArn: arn, idlePollMs: 10, handler: async (e: { Records: Rec[] }) => void got.push(...e.Records) });
    pollers.push(p);
    await p.start();
    for (let i = 1; i <= 5; i++) await put('a', i);
    await until(() => got.length === 5);
    expect(got.map((r) => r.dynamodb.NewImage.seq.N)).to.deep.equal(['1', '2', '3', '4', '5']);
    const r = got[0] as any;
    expect(r.eventSource).to.equal('aws:dynamodb');
    expect(r.eventSourceARN).to.equal(arn);
    expect(r.eventName).to.equal('INSERT');
    expect(r.dynamodb.Keys).to.deep.equal({ topic: { S: 'a' } });
    expect(r.dynamodb.NewImage.bin).to.deep.equal({ B: Buffer.from([1, 2]).toString('base64') });
    expect(r.dynamodb.ApproximateCreationDateTime).to.be.a('number');
    expect(r.dynamodb.StreamViewType).to.equal('NEW_IMAGE');
  });

  it('retries from the earliest failed record reported in batchItemFailures', async () => {
    const { arn, put } = await itemsTable();
    for (let i = 1; i <= 4; i++) await put('b', i);
    const calls: string[][] = [];
    let failOnce = true;
    const p = new StreamPoller({
      streams,
      streamArn: arn,
      idlePollMs: 10,
      retryBaseMs: 1,
      handler: async (e: { Records: Rec[] }) => {
        const seqs = e.Records.map((r) => r.dynamodb.NewImage.seq.N);
        calls.push(seqs);
        if (failOnce && seqs.includes('3')) {
          failOnce = false;
          // Both 3 and 4 reported; the poller must restart at 3 (the earliest).
          const id = (n: string) => e.Records.find((r) => r.dynamodb.NewImage.seq.N === n)!.dynamodb.SequenceNumber;
          return { batchItemFailures: [{ itemIdentifier: id('4') }, { itemIdentifier: id('3') }] };
        }
        return { batchItemFailures: [] };
      },
    });
    pollers.push(p);
    await p.start();
    await until(() => p.stats.records === 4);
    expect(calls[0]).to.deep.equal(['1', '2', '3', '4']);
    expect(calls[1]).to.deep.equal(['3', '4']);
    expect(p.stats.retries).to.equal(1);
  });

  it('bisects a batch on a thrown error, sends the poison record to the failure destination, and moves on', async () => {
    const { arn, put } = await itemsTable();
    for (let i = 1; i <= 4; i++) await put('c', i);
    const delivered: string[] = [];
    const failures: StreamFailure[] = [];
    const p = new StreamPoller({
      streams,
      streamArn: arn,
      idlePollMs: 10,
      retryBaseMs: 1,
      maxRetryAttempts: 2,
      handler: async (e: { Records: Rec[] }) => {
        const seqs = e.Records.map((r) => r.dynamodb.NewImage.seq.N);
        if (seqs.includes('2')) throw new Error('poison');
        delivered.push(...seqs);
      },
      onFailure: async (f) => void failures.push(f),
    });
    pollers.push(p);
    await p.start();
    await until(() => failures.length === 1 && delivered.length === 3);
    expect(delivered.sort()).to.deep.equal(['1', '3', '4']);
    expect(failures[0].batchSize).to.equal(1);
    expect(failures[0].reason).to.equal('RetryAttemptsExhausted');
    // The stream keeps flowing after the poison record.
    await put('c', 5);
    await until(() => delivered.includes('5'));
  });

  it('treats an unknown itemIdentifier as a failure of the whole batch', async () => {
    const { arn, put } = await itemsTable();
    await put('d', 1);
    await put('d', 2);
    const calls: number[] = [];
    let first = true;
    const p = new StreamPoller({
      streams,
      streamArn: arn,
      idlePollMs: 10,
      retryBaseMs: 1,
      handler: async (e: { Records: Rec[] }) => {
        calls.push(e.Records.length);
        if (first) {
          first = false;
          return { batchItemFailures: [{ itemIdentifier: 'no-such-sequence-number' }] };
        }
        return {};
      },
    });
    pollers.push(p);
    await p.start();
    await until(() => p.stats.records === 2);
    expect(calls).to.deep.equal([2, 2]);
  });

  it('with a parallelization factor, runs batches of different keys concurrently while each key stays in order', async () => {
    const { arn, put } = await itemsTable();
    const topics = Array.from({ length: 12 }, (_, i) => `pf${i}`);
    for (let seq = 1; seq <= 5; seq++) for (const t of topics) await put(t, seq);
    const seen = new Map<string, number[]>();
    let active = 0;
    let maxActive = 0;
    // The first batch waits (up to 2 s) for another to start beside it, so batches in parallel
    // overlap whatever the host's speed; handled one at a time, none can start, and maxActive
    // stays 1. (A 30 ms handler alone overlapped only while reads were faster than 30 ms.)
    let secondStarted!: () => void;
    const second = new Promise<void>((r) => (secondStarted = r));
    let gated = false;
    const p = new StreamPoller({
      streams,
      streamArn: arn,
      idlePollMs: 10,
      batchSize: 4,
      parallelizationFactor: 4,
      partitionKey: 'topic',
      handler: async (e: { Records: Rec[] }) => {
        active += 1;
        maxActive = Math.max(maxActive, active);
        if (active >= 2) secondStarted();
        if (!gated) {
          gated = true;
          await Promise.race([second, new Promise((r) => setTimeout(r, 2000))]);
        }
        await new Promise((r) => setTimeout(r, 30));
        for (const r of e.Records) {
          const t = r.dynamodb.NewImage.topic.S as string;
          seen.set(t, [...(seen.get(t) ?? []), Number(r.dynamodb.NewImage.seq.N)]);
        }
        active -= 1;
      },
    });
    pollers.push(p);
    await p.start();
    await until(() => p.stats.records === 60);
    for (const t of topics) expect(seen.get(t), t).to.deep.equal([1, 2, 3, 4, 5]);
    expect(maxActive, 'batches in flight at once').to.be.greaterThan(1);
    expect(maxActive).to.be.at.most(4);
  });

  it('with the default factor of 1, one batch of a shard is in flight at a time', async () => {
    const { arn, put } = await itemsTable();
    for (let i = 0; i < 12; i++) await put(`one${i}`, 1);
    let active = 0;
    let maxActive = 0;
    const p = new StreamPoller({
      streams,
      streamArn: arn,
      idlePollMs: 10,
      batchSize: 3,
      handler: async () => {
        active += 1;
        maxActive = Math.max(maxActive, active);
        await new Promise((r) => setTimeout(r, 20));
        active -= 1;
      },
    });
    pollers.push(p);
    await p.start();
    await until(() => p.stats.records === 12);
    expect(maxActive).to.equal(1);
  });

  it('refuses a parallelization factor outside the mapping\'s 1–10', () => {
    expect(() => new StreamPoller({ streams, streamArn: 'arn:x', handler: async () => {}, parallelizationFactor: 11 })).to.throw(RangeError, /parallelizationFactor must be an integer from 1 to 10/);
  });
});
