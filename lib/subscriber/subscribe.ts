import { API_GATEWAY_MESSAGE_LIMIT } from '../config';
import { DEFAULT_COLLECTION_MAX_MEMBERS, isCollectionPattern } from '../collections';
import type { CollectionStore } from '../stores/collections';
import type { ItemStore } from '../stores/items';
import { topicAllowed } from '../topics';
import type { ConnectionStore } from '../stores/connections';
import { SubscriberError } from './errors';
import { sendCollectionSnapshot, type CollectionSnapshotResult } from './collection-snapshot';
import { eventFrame, FrameTooLargeError, snapshotFrame, subscribedFrame } from './frames';
import { MAX_REPLAY_EVENTS } from './limits';
import { replayHistory } from './replay';
import type { SubscriptionStore } from '../stores/subscriptions';

/**
 * subscribe, gap-free (DESIGN §3):
 *   1. write the subscription row;
 *   2. read the item with a consistent read (seq S);
 *   3. send the snapshot, or with `sinceSeq` the history rows (sinceSeq, S] when they are all
 *      still there, else a snapshot with `"reset":true` (replay.ts: paged, parallel posts within
 *      a page, stopped when a newer subscribe of the same topic takes over).
 * Because the row exists before the read, every write with seq > S reaches this connection
 * through fan-out (which queries subscriptions with ConsistentRead). Fan-out may deliver S+1
 * before the snapshot lands; clients drop any seq ≤ the last one they applied.
 *
 * `sinceSeq` equal to S (nothing missed) answers `{"type":"subscribed","topic","seq":S,"replayed":0}`;
 * a replay ends with the same frame carrying the number of events replayed. A `sinceSeq` ahead of
 * S (the topic was recreated) gets a reset snapshot.
 *
 * A snapshot or replayed event too large for one WebSocket message (an item written directly to
 * the table can hold 400 KB, a message 128 KB) is sent as a placeholder with `"data":null,
 * "truncated":true` and its seq (frames.ts): replaying it in full would fail on every resync.
 */

export interface SubscribeDeps {
  readonly connections: ConnectionStore;
  readonly subscriptions: SubscriptionStore;
  readonly items: ItemStore;
  /** Sends one frame to the subscribing connection, in order. */
  readonly send: (frame: string) => Promise<unknown>;
  readonly clock: () => number;
  /** Largest frame API Gateway accepts; default 128 KB. */
  readonly maxMessageBytes?: number;
  /** Collection subscribes (`battery:*`): the members' state (collection-snapshot.ts). */
  readonly collections?: CollectionStore;
  /** Most members a collection snapshot sends (COLLECTION_MAX_MEMBERS). */
  readonly collectionMaxMembers?: number;
}

export type SubscribeOutcome = (
  | { readonly kind: 'snapshot'; readonly seq: number }
  | { readonly kind: 'reset'; readonly seq: number }
  | { readonly kind: 'replay'; readonly seq: number; readonly replayed: number }
  /** A newer subscribe of the same connection and topic took the replay over; it sends the answer. */
  | { readonly kind: 'superseded'; readonly seq: number; readonly replayed: number }
  | ({ readonly kind: 'collection' } & CollectionSnapshotResult)
) & {
  /** Presence: the connection already held the topic (a repeated subscribe is no join). */
  readonly wasSubscribed: boolean;
};

export async function subscribe(
  connectionId: string,
  req: {
    readonly topic: string;
    readonly sinceSeq?: number;
    /** When the frame reached API Gateway (requestContext.requestTimeEpoch); orders it against an unsubscribe. */
    readonly requestedAt?: number;
  },
  deps: SubscribeDeps,
): Promise<SubscribeOutcome> {
  const { topic, sinceSeq } = req;
  const conn = await deps.connections.get(connectionId);
  if (!conn) throw new SubscriberError('not_connected', 'the connection is not registered (closed or expired)', 410);
  if (!topicAllowed(conn.allowedTopics, topic)) throw new SubscriberError('forbidden', `topic "${topic}" is not allowed for this connection`, 403);
  const wasSubscribed = conn.topics.includes(topic);

  // The cap check and the liveness check come before the row exists (no row past 100 topics, none
  // for a closed connection).
  await deps.connections.addTopic(connectionId, topic);
  const written = await deps.subscriptions.put({
    topic,
    connectionId,
    userId: conn.userId,
    expiresAt: deps.connections.subscriptionExpiresAt(conn.connectedAt),
    ...(req.requestedAt !== undefined ? { subscribedAt: req.requestedAt } : {}),
  });
  // An older unsubscribe running concurrently (API Gateway does not serialise a connection's
  // route invocations) may have deleted the previous row and then removed the topic from the
  // connection row between our addTopic and our put. Re-adding it AFTER the put closes that
  // window; unsubscribe closes the other one (it re-checks for a row after its removeTopic).
  // Without this the row would exist while the topic is missing from the connection row: the
  // 100-topic cap undercounts and $disconnect's cleanup depends on the eventually consistent
  // byConnection index alone. When put kept a newer row, that subscribe does its own re-add.
  if (written && !(await deps.connections.ensureTopic(connectionId, topic))) {
    throw new SubscriberError('not_connected', 'the connection is not registered (closed or expired)', 410);
  }

  const max = deps.maxMessageBytes ?? API_GATEWAY_MESSAGE_LIMIT;
  // A collection's row is in place like a topic's, so fan-out reaches it for every later member
  // write; the state is read after it, as for a topic (gap-free in the same way).
  if (isCollectionPattern(topic)) {
    if (!deps.collections) throw new Error('subscribe: a collection subscribe needs deps.collections');
    const cap = deps.collectionMaxMembers ?? DEFAULT_COLLECTION_MAX_MEMBERS;
    return { kind: 'collection', ...(await sendCollectionSnapshot(topic, { collections: deps.collections, send: deps.send, maxMessageBytes: max, cap })), wasSubscribed };
  }
  /** Sends `full`, or the placeholder when `full` is over the limit or API Gateway refuses it as such. */
  const sendData = async (full: string, placeholder: () => string) => {
    if (Buffer.byteLength(full, 'utf8') > max) return deps.send(placeholder());
    try {
      return await deps.send(full);
    } catch (err) {
      if (err instanceof FrameTooLargeError) return deps.send(placeholder());
      throw err;
    }
  };

  const item = await deps.items.get(topic);
  const seq = item?.seq ?? 0;
  const snapshot = async (reset: boolean): Promise<SubscribeOutcome> => {
    const s = { topic, seq, data: item?.data ?? null, ts: item?.ts, reset };
    await sendData(snapshotFrame(s), () => snapshotFrame({ ...s, truncated: true }));
    return { kind: reset ? 'reset' : 'snapshot', seq, wasSubscribed };
  };

  if (sinceSeq === undefined) return snapshot(false);
  if (sinceSeq === seq) {
    await deps.send(subscribedFrame(topic, seq, 0));
    return { kind: 'replay', seq, replayed: 0, wasSubscribed };
  }
  if (sinceSeq > seq || seq - sinceSeq > MAX_REPLAY_EVENTS) return snapshot(true);

  const { requestedAt } = req;
  const replay = await replayHistory(sinceSeq, seq, {
    historyPage: (after, upto, limit) => deps.items.historyPage(topic, after, upto, limit),
    sendEvent: (r) => {
      const latency = deps.clock() - r.ts;
      return sendData(eventFrame(r, latency, { replay: true }), () => eventFrame(r, latency, { replay: true, truncated: true }));
    },
    // A newer subscribe of this connection and topic (a newer subscribedAt on the row) replays
    // from its own sinceSeq; a row that is gone means unsubscribed or disconnected (replay.ts).
    ...(requestedAt !== undefined
      ? {
          stillCurrent: async () => {
            const at = await deps.subscriptions.subscribedAt(topic, connectionId);
            return at !== null && (at === undefined || at <= requestedAt);
          },
        }
      : {}),
  });
  if (replay.kind === 'gap') return snapshot(true);
  if (replay.kind === 'superseded') return { kind: 'superseded', seq, replayed: replay.replayed, wasSubscribed };
  await deps.send(subscribedFrame(topic, seq, replay.replayed));
  return { kind: 'replay', seq, replayed: replay.replayed, wasSubscribed };
}
