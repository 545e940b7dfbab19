import { expect } from 'chai';
import { numericFields, SeriesWindow } from '../../../../local/dashboard/series';

describe('dashboard chart series', () => {
  it('takes the top-level finite numbers of an object, leaving out times, strings, nested values and non-objects', () => {
    expect(numericFields({ voltage: 131.2, current: -4, timestamp: 1_796_000_000_000, ts: 1, updatedAt: 2, name: 'b1', nested: { x: 1 }, bad: NaN, inf: Infinity })).to.deep.equal({
      voltage: 131.2,
      current: -4,
    });
    for (const v of [null, 3, 'x', [1, 2], { text: 'hi' }]) expect(numericFields(v)).to.deep.equal({});
  });

  it('adds a point per update with numbers, reports new fields once, and keeps the newest points within its bound', () => {
    const w = new SeriesWindow(3);
    expect(w.add(1000, { a: 1 })).to.deep.equal({ added: true, newFields: true });
    expect(w.add(2000, { a: 2 }, 5)).to.deep.equal({ added: true, newFields: false });
    expect(w.add(2500, { text: 'no numbers' })).to.deep.equal({ added: false, newFields: false });
    expect(w.add(3000, { a: 3, b: 30 }, 7)).to.deep.equal({ added: true, newFields: true });
    w.add(4000, { b: 40 }, 9);
    expect(w.fields).to.deep.equal(['a', 'b']);
    expect(w.columns()).to.deep.equal([
      [2, 3, 4],
      [2, 3, null],
      [null, 30, 40],
      [5, 7, 9],
    ]);
  });
});
