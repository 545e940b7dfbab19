import { expect } from 'chai';
import { CollectionView } from '../../../client/collection-view';
import type { Delivery } from '../../../client/topic-tracker';
import type { CollectionSnapshotMessage, EventMessage } from '../../../lib/protocol/frames';

const frame = (items: [string, number][], more = false): CollectionSnapshotMessage => ({
  type: 'snapshot',
  topic: 'b:*',
  items: items.map(([topic, seq]) => ({ topic, seq, data: { seq }, ts: 1 })),
  ...(more ? { more: true } : {}),
});
const ev = (topic: string, seq: number): EventMessage => ({ type: 'event', topic, seq, data: { seq }, ts: 1 });
const names = (ds: Delivery[]) => ds.map((d) => `${d.kind === 'snapshot' ? 'S' : 'E'} ${d.topic}@${d.seq}`);

describe('client CollectionView (per-member dedupe and hold-back)', () => {
  it('holds member events until the last snapshot frame, then applies those past each member\'s snapshot seq in order', () => {
    const v = new CollectionView('b:*');
    v.begin();
    expect(v.acceptEvent(ev('b:1', 3))).to.deep.equal([]);
    expect(v.acceptSnapshot(frame([['b:1', 2]], true))).to.equal(undefined);
    expect(v.acceptEvent(ev('b:2', 5))).to.deep.equal([]);
    expect(v.acceptEvent(ev('b:1', 2))).to.deep.equal([]);
    const out = v.acceptSnapshot(frame([['b:2', 5]]))!;
    expect(names(out.members)).to.deep.equal(['S b:1@2', 'S b:2@5']);
    expect(names(out.events)).to.deep.equal(['E b:1@3']);
    expect(names(v.acceptEvent(ev('b:2', 6)))).to.deep.equal(['E b:2@6']);
    expect(v.acceptEvent(ev('b:2', 6))).to.deep.equal([]);
  });

  it('on a re-subscribe delivers only the members whose seq moved', () => {
    const v = new CollectionView('b:*');
    v.begin();
    v.acceptSnapshot(frame([['b:1', 1], ['b:2', 1]]));
    v.begin();
    const out = v.acceptSnapshot(frame([['b:1', 1], ['b:2', 4]]))!;
    expect(names(out.members)).to.deep.equal(['S b:2@4']);
  });

  it('starts a member that was not in the snapshot with its first event', () => {
    const v = new CollectionView('b:*');
    v.begin();
    v.acceptSnapshot(frame([['b:1', 1]]));
    expect(names(v.acceptEvent(ev('b:9', 7)))).to.deep.equal(['E b:9@7']);
    expect(names(v.acceptEvent(ev('b:9', 8)))).to.deep.equal(['E b:9@8']);
  });

  it('buffers a member gap and asks for a resync until it fills', () => {
    const v = new CollectionView('b:*');
    v.begin();
    v.acceptSnapshot(frame([['b:1', 1]]));
    expect(v.acceptEvent(ev('b:1', 3))).to.deep.equal([]);
    expect(v.needsResync()).to.equal(true);
    expect(names(v.acceptEvent(ev('b:1', 2)))).to.deep.equal(['E b:1@2', 'E b:1@3']);
    expect(v.needsResync()).to.equal(false);
  });
});
