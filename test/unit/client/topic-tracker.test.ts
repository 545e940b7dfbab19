import { expect } from 'chai';
import { TopicTracker, type Delivery } from '../../../client/topic-tracker';
import { parseServerMessage } from '../../../lib/protocol/parse';
import type { EventMessage, SnapshotMessage } from '../../../lib/protocol/frames';

const snap = (seq: number, data: unknown = { seq }, reset = false): SnapshotMessage => ({ type: 'snapshot', topic: 't', seq, data, ts: 1, reset });
const ev = (seq: number): EventMessage => ({ type: 'event', topic: 't', seq, data: { seq }, ts: 1, latencyMs: 3 });
const seqs = (ds: Delivery[]) => ds.map((d) => `${d.kind === 'snapshot' ? (d.reset ? 'R' : 'S') : 'E'}${d.seq}`);

describe('client TopicTracker (dedupe, reorder, resume)', () => {
  it('delivers the snapshot, then contiguous events, and resumes from the last seq', () => {
    const t = new TopicTracker('t');
    expect(t.lastSeq).to.equal(undefined);
    expect(seqs(t.accept(snap(4)))).to.deep.equal(['S4']);
    expect(seqs(t.accept(ev(5)))).to.deep.equal(['E5']);
    expect(seqs(t.accept(ev(6)))).to.deep.equal(['E6']);
    expect(t.lastSeq).to.equal(6);
    expect(t.needsResync()).to.equal(false);
  });

  it('drops duplicates of events and snapshots by seq and counts them', () => {
    const t = new TopicTracker('t');
    t.accept(snap(1));
    t.accept(ev(2));
    expect(t.accept(ev(2))).to.deep.equal([]);
    expect(t.accept(ev(1))).to.deep.equal([]);
    expect(t.accept(snap(2))).to.deep.equal([]);
    expect(t.accept(snap(1))).to.deep.equal([]);
    expect(t.duplicates).to.equal(4);
    expect(t.lastSeq).to.equal(2);
  });

  it('holds events that overtake a gap and releases them in order once it is filled', () => {
    const t = new TopicTracker('t');
    t.accept(snap(10));
    expect(t.accept(ev(13))).to.deep.equal([]);
    expect(t.accept(ev(12))).to.deep.equal([]);
    expect(t.needsResync()).to.equal(true);
    expect(t.buffered).to.equal(2);
    expect(t.accept(ev(13))).to.deep.equal([]); // duplicate of a buffered one
    expect(seqs(t.accept(ev(11)))).to.deep.equal(['E11', 'E12', 'E13']);
    expect(t.needsResync()).to.equal(false);
    expect(t.duplicates).to.equal(1);
  });

  it('holds live events that arrive before the first snapshot, keeping only those after it', () => {
    const t = new TopicTracker('t');
    expect(t.accept(ev(7))).to.deep.equal([]);
    expect(t.accept(ev(8))).to.deep.equal([]);
    expect(seqs(t.accept(snap(7)))).to.deep.equal(['S7', 'E8']);
  });

  it('a reset snapshot newer than the position replaces state and releases what follows it', () => {
    const t = new TopicTracker('t');
    t.accept(snap(3));
    t.accept(ev(50));
    t.accept(ev(52));
    expect(seqs(t.accept(snap(51, {}, true)))).to.deep.equal(['R51', 'E52']);
    expect(t.lastSeq).to.equal(52);
    expect(t.needsResync()).to.equal(false);
  });

  it('a reset snapshot equal to the position is a duplicate', () => {
    const t = new TopicTracker('t');
    t.accept(snap(9));
    expect(t.accept(snap(9, {}, true))).to.deep.equal([]);
  });

  it('a reset snapshot below the position (server counter restarted) is delivered and clears the old buffer', () => {
    const t = new TopicTracker('t');
    t.accept(snap(500));
    t.accept(ev(502)); // buffered in the old numbering
    expect(seqs(t.accept(snap(2, {}, true)))).to.deep.equal(['R2']);
    expect(t.lastSeq).to.equal(2);
    expect(t.buffered).to.equal(0);
    expect(seqs(t.accept(ev(3)))).to.deep.equal(['E3']);
  });

  it('a plain snapshot older than the position is dropped (only a reset may rewind)', () => {
    const t = new TopicTracker('t');
    t.accept(snap(5));
    expect(t.accept(snap(3))).to.deep.equal([]);
    expect(t.lastSeq).to.equal(5);
  });

  it('"subscribed" with a seq above the position means events are owed: resync until they arrive', () => {
    const t = new TopicTracker('t');
    t.accept(snap(5));
    t.accept({ type: 'subscribed', topic: 't', seq: 5 });
    expect(t.needsResync()).to.equal(false);
    t.accept({ type: 'subscribed', topic: 't', seq: 7 });
    expect(t.needsResync()).to.equal(true);
    t.accept(ev(6));
    expect(t.needsResync()).to.equal(true);
    t.accept(ev(7));
    expect(t.needsResync()).to.equal(false);
  });

  it('bounds the reorder buffer: overflow drops it and asks for an immediate resync', () => {
    const t = new TopicTracker('t', { maxBuffered: 3 });
    t.accept(snap(1));
    for (const s of [3, 4, 5]) t.accept(ev(s));
    expect(t.takeOverflow()).to.equal(false);
    t.accept(ev(6));
    expect(t.buffered).to.equal(0);
    expect(t.needsResync()).to.equal(true);
    expect(t.takeOverflow()).to.equal(true);
    expect(t.takeOverflow()).to.equal(false);
    // The resync answer fills everything in.
    expect(seqs([2, 3, 4, 5, 6].flatMap((s) => t.accept(ev(s))))).to.deep.equal(['E2', 'E3', 'E4', 'E5', 'E6']);
  });

  it('delivers every seq exactly once and in order under random duplication and reordering', () => {
    for (let round = 0; round < 50; round++) {
      const t = new TopicTracker('t');
      const out: number[] = [];
      const frames: (SnapshotMessage | EventMessage)[] = [snap(0)];
      for (let s = 1; s <= 200; s++) {
        frames.push(ev(s));
        if (Math.random() < 0.3) frames.push(ev(s)); // duplicate
      }
      // Local shuffles (reordering within a small window, as two sockets or a replay produce).
      for (let i = 1; i < frames.length - 1; i++) {
        if (Math.random() < 0.3) [frames[i], frames[i + 1]] = [frames[i + 1], frames[i]];
      }
      for (const f of frames) for (const d of t.accept(f)) if (d.kind === 'event') out.push(d.seq);
      // Events that overtook the snapshot at index 0 can only be dropped if ≤ 0, so all 200 arrive.
      expect(out).to.deep.equal(Array.from({ length: 200 }, (_, i) => i + 1));
    }
  });

  it('a truncated placeholder (parsed from the wire) fills its seq with data null; the sequence goes on without a gap', () => {
    const t = new TopicTracker('t');
    t.accept(snap(1));
    const placeholder = parseServerMessage('{"type":"event","topic":"t","seq":2,"data":null,"ts":5,"truncated":true,"latencyMs":4}') as EventMessage;
    expect(placeholder).to.deep.equal({ type: 'event', topic: 't', seq: 2, data: null, ts: 5, latencyMs: 4, truncated: true });
    expect(t.accept(ev(3))).to.deep.equal([]); // 3 overtook the placeholder: held
    expect(t.needsResync()).to.equal(true);
    const out = t.accept(placeholder);
    expect(out.map((d) => [d.seq, d.data, d.truncated])).to.deep.equal([
      [2, null, true],
      [3, { seq: 3 }, undefined],
    ]);
    expect(t.needsResync()).to.equal(false);
    const s = parseServerMessage('{"type":"snapshot","topic":"t","seq":9,"data":{"big":1},"truncated":true}') as SnapshotMessage;
    expect(s).to.include({ seq: 9, data: null, truncated: true });
    expect(t.accept(s)).to.deep.equal([{ kind: 'snapshot', topic: 't', seq: 9, data: null, ts: undefined, reset: false, truncated: true }]);
  });
});
