import type { ItemStore } from '../stores/items';
import { topicAllowed } from '../topics';
import type { ConnectionStore } from './connections';
import { SubscriberError } from './errors';
import { eventFrame, snapshotFrame, subscribedFrame } from './frames';
import { MAX_REPLAY_EVENTS } from './limits';
import type { SubscriptionStore } from './subscriptions';

/**
 * subscribe, gap-free (DESIGN §3):
 *   1. write the subscription row;
 *   2. read the item with a consistent read (seq S);
 *   3. send the snapshot, or with `sinceSeq` the history rows (sinceSeq, S] when they are all
 *      still there, else a snapshot with `"reset":true`.
 * Because the row exists before the read, every write with seq > S reaches this connection
 * through fan-out (which queries subscriptions with ConsistentRead). Fan-out may deliver S+1
 * before the snapshot lands; clients drop any seq ≤ the last one they applied.
 *
 * `sinceSeq` equal to S (nothing missed) answers `{"type":"subscribed","topic","seq":S,"replayed":0}`;
 * a replay ends with the same frame carrying the number of events replayed. A `sinceSeq` ahead of
 * S (the topic was recreated) gets a reset snapshot.
 */

export interface SubscribeDeps {
  readonly connections: ConnectionStore;
  readonly subscriptions: SubscriptionStore;
  readonly items: ItemStore;
  /** Sends one frame to the subscribing connection, in order. */
  readonly send: (frame: string) => Promise<unknown>;
  readonly clock: () => number;
}

export type SubscribeOutcome =
  | { readonly kind: 'snapshot'; readonly seq: number }
  | { readonly kind: 'reset'; readonly seq: number }
  | { readonly kind: 'replay'; readonly seq: number; readonly replayed: number };

export async function subscribe(
  connectionId: string,
  req: { readonly topic: string; readonly sinceSeq?: number },
  deps: SubscribeDeps,
): Promise<SubscribeOutcome> {
  const { topic, sinceSeq } = req;
  const conn = await deps.connections.get(connectionId);
  if (!conn) throw new SubscriberError('not_connected', 'the connection is not registered (closed or expired)', 410);
  if (!topicAllowed(conn.allowedTopics, topic)) throw new SubscriberError('forbidden', `topic "${topic}" is not allowed for this connection`, 403);

  await deps.connections.addTopic(connectionId, topic);
  await deps.subscriptions.put({
    topic,
    connectionId,
    userId: conn.userId,
    expiresAt: deps.connections.subscriptionExpiresAt(conn.connectedAt),
  });

  const item = await deps.items.get(topic);
  const seq = item?.seq ?? 0;
  const snapshot = async (reset: boolean): Promise<SubscribeOutcome> => {
    await deps.send(snapshotFrame({ topic, seq, data: item?.data ?? null, ts: item?.ts, reset }));
    return { kind: reset ? 'reset' : 'snapshot', seq };
  };

  if (sinceSeq === undefined) return snapshot(false);
  if (sinceSeq === seq) {
    await deps.send(subscribedFrame(topic, seq, 0));
    return { kind: 'replay', seq, replayed: 0 };
  }
  if (sinceSeq > seq || seq - sinceSeq > MAX_REPLAY_EVENTS) return snapshot(true);

  const rows = await deps.items.historySince(topic, sinceSeq, seq);
  const contiguous = rows.length === seq - sinceSeq && rows.every((r, i) => r.seq === sinceSeq + 1 + i);
  if (!contiguous) return snapshot(true);
  for (const r of rows) await deps.send(eventFrame(r, deps.clock() - r.ts, { replay: true }));
  await deps.send(subscribedFrame(topic, seq, rows.length));
  return { kind: 'replay', seq, replayed: rows.length };
}
