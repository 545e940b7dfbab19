import { expect } from 'chai';
import type { HistoryRecord } from '../../../lib/stores/items';
import { replayHistory, type ReplayDeps } from '../../../lib/subscriber/replay';

const row = (seq: number): HistoryRecord => ({ topic: 't', seq, data: { seq }, ts: 1, expiresAt: 9e9 });
const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** History 1..n (minus `missing`) read page by page, the way ItemStore.historyPage answers. */
function history(n: number, missing: number[] = []) {
  const pages: [number, number][] = [];
  const rows = Array.from({ length: n }, (_, i) => row(i + 1)).filter((r) => !missing.includes(r.seq));
  const historyPage: ReplayDeps['historyPage'] = async (after, upto, limit) => {
    pages.push([after, limit]);
    return rows.filter((r) => r.seq > after && r.seq <= upto).slice(0, limit);
  };
  return { historyPage, pages };
}

describe('sinceSeq replay core', () => {
  it('sends every row once, page by page, with the frames of a page in parallel under the limit', async () => {
    const { historyPage, pages } = history(250);
    const sent: number[] = [];
    let active = 0;
    let maxActive = 0;
    const r = await replayHistory(0, 250, {
      historyPage,
      pageSize: 100,
      concurrency: 8,
      sendEvent: async (x) => {
        active += 1;
        maxActive = Math.max(maxActive, active);
        await tick(1);
        sent.push(x.seq);
        active -= 1;
      },
    });
    expect(r).to.deep.equal({ kind: 'done', replayed: 250 });
    expect([...sent].sort((a, b) => a - b)).to.deep.equal(Array.from({ length: 250 }, (_, i) => i + 1));
    expect(pages.map(([after]) => after)).to.deep.equal([0, 100, 200]);
    expect(maxActive).to.equal(8);
  });

  it('finishes every frame of a page before any frame of the next page is posted', async () => {
    const { historyPage } = history(30);
    const sent: number[] = [];
    await replayHistory(0, 30, {
      historyPage,
      pageSize: 10,
      concurrency: 4,
      // Later frames of a page finish first: a page boundary must still hold.
      sendEvent: async (x) => {
        await tick(12 - (x.seq % 10));
        sent.push(x.seq);
      },
    });
    for (let i = 0; i < 30; i++) expect(Math.ceil(sent[i] / 10), `position ${i}`).to.equal(Math.floor(i / 10) + 1);
  });

  it('stops at the next page once a newer subscribe has taken over, without sending the rest', async () => {
    const { historyPage } = history(300);
    const sent: number[] = [];
    let checks = 0;
    const r = await replayHistory(0, 300, {
      historyPage,
      pageSize: 100,
      sendEvent: async (x) => void sent.push(x.seq),
      // Current for the first page, taken over before the second.
      stillCurrent: async () => ++checks === 1,
    });
    expect(r).to.deep.equal({ kind: 'superseded', replayed: 100 });
    expect(sent).to.have.length(100);
  });

  it('reports a gap at the seq history no longer holds, after sending the rows before it', async () => {
    const { historyPage } = history(40, [25]);
    const sent: number[] = [];
    const r = await replayHistory(10, 40, { historyPage, pageSize: 10, sendEvent: async (x) => void sent.push(x.seq) });
    expect(r).to.deep.equal({ kind: 'gap', replayed: 14 });
    expect([...sent].sort((a, b) => a - b)).to.deep.equal(Array.from({ length: 14 }, (_, i) => i + 11));
  });

  it('reports a gap when history starts after sinceSeq + 1 (expired rows), sending nothing', async () => {
    const { historyPage } = history(20, [1, 2, 3]);
    const sent: number[] = [];
    const r = await replayHistory(0, 20, { historyPage, sendEvent: async (x) => void sent.push(x.seq) });
    expect(r).to.deep.equal({ kind: 'gap', replayed: 0 });
    expect(sent).to.deep.equal([]);
  });

  it('fails when a frame cannot be delivered, after the page in flight settled', async () => {
    const { historyPage } = history(20);
    let settled = 0;
    const err = await replayHistory(0, 20, {
      historyPage,
      pageSize: 10,
      sendEvent: async (x) => {
        await tick(1);
        settled += 1;
        if (x.seq === 3) throw new Error('reply failed');
      },
    }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).to.equal('reply failed');
    expect(settled, 'the first page only').to.equal(10);
  });
});
