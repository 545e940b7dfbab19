import type { HistoryRecord } from '../stores/items';
import { REPLAY_CONCURRENCY, REPLAY_PAGE_SIZE } from './limits';
import { createLimiter } from '../delivery/limiter';

/**
 * The `sinceSeq` replay of a subscribe: history rows (sinceSeq, uptoSeq] sent page by page.
 *
 * - One Query page at a time, the next page read while the current one is sent.
 * - A page's frames are posted in parallel under REPLAY_CONCURRENCY (why that is safe: limits.ts).
 *   Every frame of a page is acknowledged before the next page starts, so at most one page is
 *   ever out of order on the wire.
 * - Before each page the replay asks `stillCurrent`: a resent subscribe of the same connection and
 *   topic (the SDK re-sends one that got no answer in time) writes a newer `subscribedAt` on the
 *   subscription row and replays from its own, later `sinceSeq`; the older replay stops at its
 *   next page instead of sending the same range a second time. Each subscribe is a separate Lambda
 *   invocation on AWS, so the row is the only place both can see. The check reads the row once
 *   per page (one GetItem per 100 frames).
 * - A seq missing from history (expired, or never written) ends the replay with `gap`: the caller
 *   answers with a reset snapshot. Rows before the gap have been sent (they are valid events).
 */

export interface ReplayDeps {
  /** At most `limit` live history rows in (afterSeq, uptoSeq], in seq order (ItemStore.historyPage). */
  readonly historyPage: (afterSeq: number, uptoSeq: number, limit: number) => Promise<readonly HistoryRecord[]>;
  /** Posts one replayed event; rejects when the frame cannot be delivered (the replay stops). */
  readonly sendEvent: (row: HistoryRecord) => Promise<unknown>;
  /** False once a newer subscribe took this replay over, or the subscription is gone. */
  readonly stillCurrent?: () => Promise<boolean>;
  readonly pageSize?: number;
  readonly concurrency?: number;
}

export type ReplayResult =
  | { readonly kind: 'done'; readonly replayed: number }
  | { readonly kind: 'gap'; readonly replayed: number }
  | { readonly kind: 'superseded'; readonly replayed: number };

export async function replayHistory(sinceSeq: number, uptoSeq: number, deps: ReplayDeps): Promise<ReplayResult> {
  const pageSize = deps.pageSize ?? REPLAY_PAGE_SIZE;
  const limit = createLimiter(deps.concurrency ?? REPLAY_CONCURRENCY);
  const current = deps.stillCurrent ?? (async () => true);
  const fetch = (after: number) => Promise.all([deps.historyPage(after, uptoSeq, pageSize), current()]);
  let next = sinceSeq + 1;
  let replayed = 0;
  let ahead = fetch(sinceSeq);
  while (next <= uptoSeq) {
    const [rows, live] = await ahead;
    if (!live) return { kind: 'superseded', replayed };
    let n = 0;
    while (n < rows.length && rows[n].seq === next + n) n++;
    const page = rows.slice(0, n);
    const complete = n === rows.length && n > 0;
    const after = next + n - 1;
    if (complete && after < uptoSeq) {
      ahead = fetch(after);
      // Read ahead while this page is sent; if sending fails, nobody awaits it.
      ahead.catch(() => {});
    }
    const sent = await Promise.allSettled(page.map((r) => limit(() => deps.sendEvent(r))));
    const failed = sent.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    replayed += page.length;
    next += page.length;
    if (!complete) return { kind: 'gap', replayed };
  }
  return { kind: 'done', replayed };
}
