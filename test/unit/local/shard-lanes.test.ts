import { expect } from 'chai';
import type { _Record as StreamRecord } from '@aws-sdk/client-dynamodb-streams';
import { laneOf, partitionKeyOf, ShardLanes } from '../../../local/streams/shard-lanes';

const rec = (topic: string, seq: number): StreamRecord => ({
  dynamodb: { Keys: { topic: { S: topic } }, NewImage: { topic: { S: topic }, seq: { N: String(seq) } }, SequenceNumber: `${topic}-${seq}` },
});
const topicOf = (r: StreamRecord) => r.dynamodb!.Keys!.topic.S!;
const seqOf = (r: StreamRecord) => Number(r.dynamodb!.NewImage!.seq.N);
const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

describe('shard lanes (ParallelizationFactor)', () => {
  it('routes every record of one partition key to the same lane, and spreads keys over all lanes', () => {
    const lanesSeen = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const key = partitionKeyOf(rec(`t${i}`, 1), 'topic');
      expect(laneOf(key, 7)).to.equal(laneOf(partitionKeyOf(rec(`t${i}`, 99), 'topic'), 7));
      lanesSeen.add(laneOf(key, 7));
    }
    expect([...lanesSeen].sort()).to.deep.equal([0, 1, 2, 3, 4, 5, 6]);
  });

  it('keeps per-key order while batches of different keys run at once, never more than N', async () => {
    let active = 0;
    let maxActive = 0;
    const applied = new Map<string, number[]>();
    const lanes = new ShardLanes({
      lanes: 4,
      batchSize: 3,
      hashKey: 'topic',
      run: async (records) => {
        active += 1;
        maxActive = Math.max(maxActive, active);
        // Uneven durations: a lane that finishes early must not overtake a key in another lane.
        await tick(1 + Math.floor(Math.random() * 8));
        for (const r of records) applied.set(topicOf(r), [...(applied.get(topicOf(r)) ?? []), seqOf(r)]);
        active -= 1;
      },
    });
    const topics = Array.from({ length: 16 }, (_, i) => `k${i}`);
    for (let seq = 1; seq <= 10; seq++) {
      await lanes.room();
      lanes.push(topics.map((t) => rec(t, seq)));
    }
    await lanes.idle();
    for (const t of topics) expect(applied.get(t), t).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(maxActive).to.be.greaterThan(1);
    expect(maxActive).to.be.at.most(4);
  });

  it('holds the reader back while batchSize × N records wait, and releases it as lanes drain', async () => {
    const gates: (() => void)[] = [];
    const lanes = new ShardLanes({ lanes: 1, batchSize: 2, run: () => new Promise<void>((r) => gates.push(r)) });
    lanes.push([rec('a', 1), rec('a', 2), rec('a', 3), rec('a', 4)]); // 2 in flight, 2 queued
    let roomy = false;
    void lanes.room().then(() => (roomy = true));
    await tick();
    expect(roomy, 'reader blocked with a full queue').to.equal(false);
    gates.shift()!(); // the first batch finishes; the queued two start
    await tick();
    expect(roomy).to.equal(true);
    gates.shift()!();
    await lanes.idle();
  });

  it('close drops the queued batches and idle waits for the one in flight to finish', async () => {
    const gates: (() => void)[] = [];
    const ran: number[] = [];
    const lanes = new ShardLanes({
      lanes: 1,
      batchSize: 1,
      run: (records) => new Promise<void>((r) => gates.push(() => (ran.push(seqOf(records[0])), r()))),
    });
    lanes.push([rec('a', 1), rec('a', 2)]); // 1 in flight, 1 queued
    await tick();
    lanes.close();
    let idle = false;
    void lanes.idle().then(() => (idle = true));
    await tick();
    expect(idle, 'idle while a batch is still running').to.equal(false);
    gates.shift()!();
    await tick();
    expect(idle).to.equal(true);
    expect(ran).to.deep.equal([1]);
    expect(gates).to.have.length(0); // the queued batch never started
    lanes.push([rec('a', 3)]); // a read that was in flight when the lanes closed
    await lanes.idle();
    expect(gates).to.have.length(0);
  });

  it('a lane whose batch rejects goes on with its next batch', async () => {
    const done: number[] = [];
    const lanes = new ShardLanes({
      lanes: 1,
      batchSize: 1,
      run: async (records) => {
        if (seqOf(records[0]) === 1) throw new Error('boom');
        done.push(seqOf(records[0]));
      },
    });
    lanes.push([rec('a', 1), rec('a', 2)]);
    await lanes.idle();
    expect(done).to.deep.equal([2]);
  });

  it('refuses a factor outside 1–10 and a batch size below 1, naming the setting', () => {
    expect(() => new ShardLanes({ lanes: 0, batchSize: 1, run: async () => {} })).to.throw(RangeError, /parallelizationFactor/);
    expect(() => new ShardLanes({ lanes: 2, batchSize: 0, run: async () => {} })).to.throw(RangeError, /batchSize/);
  });
});
