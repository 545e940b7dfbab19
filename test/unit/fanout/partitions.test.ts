import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { inRange, MAX_PARTITIONS, partitionOf, partitionRange, partitionRanges } from '../../../lib/fanout/partitions';
import { earliestFailure, handOffLargeTopics, MAX_PARTITION_MESSAGE_BYTES, partitionMessages, type PartitionMessage } from '../../../lib/fanout/partition-handoff';
import { batchesOf } from '../../../lib/fanout/partition-queue';
import { parsePartitionMessage } from '../../../lib/fanout/partition-worker';
import { createLogger } from '../../../lib/log';
import { eventAsStreamRecord, parseStreamRecord } from '../../../lib/fanout/stream-record';
import { marshall } from '@aws-sdk/util-dynamodb';

/** Ids as API Gateway makes them (local/apigw/connection-id.ts), plus odd ones a range must still place. */
const awsIds = (n: number) => Array.from({ length: n }, () => randomBytes(11).toString('base64'));
const oddIds = ['', '+', '++++', '/', '0', 'zzzzzzzzzzzzzzzz', 'z~', '~', 'É', '😀', 'E+', 'E', 'D~', 'a', 'connection-1'];

describe('large topics: partitions of a topic\'s subscribers', () => {
  it('puts every subscriber in exactly one partition, the one partitionOf names, for every split from 1 to the maximum', () => {
    const ids = [...awsIds(2000), ...oddIds];
    for (let p = 1; p <= MAX_PARTITIONS; p++) {
      const ranges = partitionRanges(p);
      for (const id of ids) {
        const holders = ranges.filter((r) => inRange(id, r)).map((r) => r.partition);
        expect(holders, `id ${JSON.stringify(id)} with ${p} partitions`).to.deep.equal([partitionOf(id, p)]);
      }
    }
  });

  it('ranges tile the key space: the first is open below, the last open above, each ends where the next begins', () => {
    for (const p of [1, 2, 3, 4, 7, 8, 50, MAX_PARTITIONS]) {
      const ranges = partitionRanges(p);
      expect(ranges[0]!.from).to.equal(undefined);
      expect(ranges[p - 1]!.to).to.equal(undefined);
      for (let k = 1; k < p; k++) {
        expect(ranges[k]!.from, `bound ${k} of ${p}`).to.be.a('string').and.equal(ranges[k - 1]!.to);
        if (k > 1) expect(ranges[k]!.from! > ranges[k - 1]!.from!, `bounds increase (${p})`).to.equal(true);
      }
    }
  });

  it('keeps a subscriber in the same partition whatever else joins or leaves (its partition depends on its id and P only)', () => {
    const stay = awsIds(200);
    const before = stay.map((id) => partitionOf(id, 8));
    // Others come and go; the split is recomputed from scratch each time.
    for (let round = 0; round < 5; round++) {
      awsIds(500);
      expect(stay.map((id) => partitionOf(id, 8))).to.deep.equal(before);
      expect(stay.map((id) => partitionRange(partitionOf(id, 8), 8)).every((r, i) => inRange(stay[i]!, r))).to.equal(true);
    }
  });

  it('spreads API Gateway ids evenly: each of 8 partitions holds within 25 % of an eighth of 40,000', () => {
    const counts = new Array<number>(8).fill(0);
    for (const id of awsIds(40_000)) counts[partitionOf(id, 8)]!++;
    for (const c of counts) expect(c).to.be.within(5000 * 0.75, 5000 * 1.25);
  });

  it('refuses a partition count or index outside its bounds, naming it', () => {
    expect(() => partitionRanges(0)).to.throw(/partitions is 0; expected an integer from 1 to 100/);
    expect(() => partitionRanges(MAX_PARTITIONS + 1)).to.throw(/partitions is 101/);
    expect(() => partitionRange(4, 4)).to.throw(/partition is 4; expected an integer from 0 to 3/);
    expect(() => partitionOf('x', 1.5)).to.throw(/partitions is 1.5/);
  });

  it('a record becomes one message per partition: group topic#k, a deduplication id per (topic, seq, partition), the event inside', () => {
    const event = { topic: 'vehicle:3', seq: 7, data: { a: 1, s: 'odd \ufffe\uffff end' }, ts: 1 };
    const msgs = partitionMessages(event, 4);
    expect(msgs.map((m) => m.groupId)).to.deep.equal(['vehicle:3#0', 'vehicle:3#1', 'vehicle:3#2', 'vehicle:3#3']);
    expect(new Set(msgs.map((m) => m.deduplicationId)).size).to.equal(4);
    expect(msgs[2]!.deduplicationId).to.equal('vehicle:3#7#2');
    expect(parsePartitionMessage(msgs[2]!.body)).to.deep.equal({ partition: 2, partitions: 4, event });
    // SQS refuses U+FFFE and U+FFFF in a body: they travel escaped and arrive as they were.
    expect(msgs[2]!.body).to.not.match(/[\ufffe\uffff]/);
    // A topic SQS ids cannot carry (non-ASCII, or long) is keyed by its hash, within SQS's 128 characters.
    const odd = partitionMessages({ ...event, topic: `ünïcode:${'x'.repeat(240)}`, seq: 9_007_199_254_740_991 }, MAX_PARTITIONS);
    for (const m of odd) {
      expect(m.groupId).to.match(/^[\x21-\x7e]{1,128}$/);
      expect(m.deduplicationId).to.match(/^[\x21-\x7e]{1,128}$/);
    }
  });

  it('a large item is queued as its plain event, never the stream record: no OldImage or other attributes, and a body over the SQS limit goes without its data, marked truncated', async () => {
    // 120,000 small numbers: ~240 KB as JSON, ~1.2 MB as DynamoDB JSON ({"N":"7"} each).
    const numbers = new Array<number>(120_000).fill(7);
    const text = 'x'.repeat(300_000);
    const image = (seq: number, data: unknown) => marshall({ topic: 'big:1', seq, data, ts: 1000 + seq, raw: 'r'.repeat(100_000) });
    const records = [
      { eventName: 'MODIFY', dynamodb: { SequenceNumber: '1', Keys: marshall({ topic: 'big:1' }), OldImage: image(0, numbers), NewImage: image(1, numbers) } },
      { eventName: 'MODIFY', dynamodb: { SequenceNumber: '2', Keys: marshall({ topic: 'big:1' }), OldImage: image(1, numbers), NewImage: image(2, text) } },
    ];
    const queued: PartitionMessage[][] = [];
    const out = await handOffLargeTopics(records, {
      subscribers: async function* () {
        yield ['a', 'b', 'c'];
      },
      enqueue: async (m) => void queued.push([...m]),
      threshold: 2,
      partitions: MAX_PARTITIONS,
      log: createLogger({ level: 'error', write: () => {} }),
      clock: () => 0,
    });
    expect(out.handedOff).to.equal(2);
    expect(queued).to.have.length(2);
    for (const m of queued.flat()) {
      expect(Buffer.byteLength(m.body, 'utf8')).to.be.at.most(MAX_PARTITION_MESSAGE_BYTES);
      expect(m.body).to.not.match(/OldImage|Keys|"raw"|"N":/);
    }
    const [full, cut] = queued.map((ms) => ms.map((m) => parsePartitionMessage(m.body)));
    expect(full![99]).to.deep.equal({ partition: 99, partitions: MAX_PARTITIONS, event: { topic: 'big:1', seq: 1, data: numbers, ts: 1001 } });
    expect(cut![99]).to.deep.equal({ partition: 99, partitions: MAX_PARTITIONS, event: { topic: 'big:1', seq: 2, data: null, ts: 1002 }, truncated: true });
    expect(cut!.every((b) => typeof b === 'object' && b.truncated === true)).to.equal(true);
  });

  it('the worker hands fan-out the very event the stream side parsed, numbers beyond 2^53 and nested data included', () => {
    const event = { topic: 'big:1', seq: 3, data: { n: 2 ** 60, f: 0.1, s: '', a: [null, true, [], {}], o: { deep: [1, 'x'] } }, ts: 1234 };
    const body = parsePartitionMessage(partitionMessages(event, 2)[1]!.body);
    expect(body).to.be.an('object');
    const parsed = parseStreamRecord(eventAsStreamRecord((body as { event: typeof event }).event, 'm-1'), 0);
    expect(parsed).to.deep.equal({ kind: 'event', sequenceNumber: 'm-1', event });
  });

  it('SendMessageBatch calls hold at most 10 entries and bodies summing to at most the SQS limit, in order', () => {
    const msg = (i: number, bytes: number): PartitionMessage => ({ groupId: `g#${i}`, deduplicationId: `d${i}`, body: 'x'.repeat(bytes) });
    const messages = [...Array.from({ length: 23 }, (_, i) => msg(i, 10)), msg(23, 200_000), msg(24, 100_000), msg(25, MAX_PARTITION_MESSAGE_BYTES), msg(26, 1)];
    const batches = batchesOf(messages);
    expect(batches.flat()).to.deep.equal(messages);
    for (const b of batches) {
      expect(b.length).to.be.within(1, 10);
      expect(b.reduce((n, m) => n + Buffer.byteLength(m.body), 0)).to.be.at.most(MAX_PARTITION_MESSAGE_BYTES);
    }
    expect(batches.map((b) => b.length)).to.deep.equal([10, 10, 4, 1, 1, 1]);
  });

  it('the batch reports the earlier of the direct path\'s failure and a record that could not be queued, by batch position', () => {
    const recs = ['10', '20', '30', '40'].map((n) => ({ dynamodb: { SequenceNumber: n } }));
    expect(earliestFailure(recs, [{ itemIdentifier: '30' }], 1)).to.deep.equal([{ itemIdentifier: '20' }]);
    expect(earliestFailure(recs, [{ itemIdentifier: '20' }], 3)).to.deep.equal([{ itemIdentifier: '20' }]);
    expect(earliestFailure(recs, [], 2)).to.deep.equal([{ itemIdentifier: '30' }]);
    expect(earliestFailure(recs, [{ itemIdentifier: '40' }], undefined)).to.deep.equal([{ itemIdentifier: '40' }]);
    expect(earliestFailure(recs, [], undefined)).to.deep.equal([]);
  });

  it('a partition message that names no valid partition or event is refused with the reason', () => {
    expect(parsePartitionMessage('nope')).to.equal('body is not JSON');
    expect(parsePartitionMessage(JSON.stringify({ partition: 3, partitions: 2, record: { dynamodb: {} } }))).to.match(/partition is 3/);
    expect(parsePartitionMessage(JSON.stringify({ partition: 0, partitions: 2 }))).to.equal('event is missing');
    expect(parsePartitionMessage(JSON.stringify({ partition: 0, partitions: 2, event: { topic: 't', seq: '1', ts: 1 } }))).to.match(/numeric seq/);
    expect(parsePartitionMessage(JSON.stringify({ partition: 0, partitions: 2, event: { topic: 't', seq: 1, ts: 1, data: 1 }, truncated: 'yes' }))).to.match(/truncated/);
  });
});
