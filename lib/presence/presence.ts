import { presenceFrame, type PresenceMember, type PresenceMessage } from '../protocol/frames';
import type { ConnectionStore } from '../stores/connections';
import type { LastSeenStore } from '../stores/last-seen';
import type { SubscriptionStore } from '../stores/subscriptions';

/**
 * Presence reads (docs/subscriber-protocol.md#presence): who is on a topic, and whether a user
 * is online. The same bodies answer the `presence` socket action and `GET /presence`.
 *
 * A topic's members are its subscription rows (which carry the userId), kept only when their
 * connection row is live: a socket dropped without `$disconnect` keeps its subscription row until
 * a delivery answers 410 or API Gateway's 2 h cap passes, but its connection row stops being live
 * once pings stop (CONNECTION_TTL_SECONDS). Cost: one consistent Query of the topic's rows plus
 * one BatchGetItem per 100 of them.
 */

export type TopicPresence = Omit<PresenceMessage, 'type'>;

export interface UserPresence {
  readonly userId: string;
  readonly online: boolean;
  /** Live connections of the user. */
  readonly connections: number;
  /** Epoch ms: the latest ping or connect of a live connection, else when the user was last seen leaving; null if never. */
  readonly lastSeen: number | null;
}

export async function topicPresence(
  topic: string,
  deps: { subscriptions: SubscriptionStore; connections: ConnectionStore; listLimit: number; maxMessageBytes: number },
): Promise<TopicPresence> {
  const { rows } = await deps.subscriptions.members(topic);
  const live = await deps.connections.liveAmong(rows.map((r) => r.connectionId));
  const perUser = new Map<string, number>();
  for (const r of rows) {
    const c = live.get(r.connectionId);
    if (c) perUser.set(c.userId, (perUser.get(c.userId) ?? 0) + 1);
  }
  const all: PresenceMember[] = [...perUser].map(([userId, connections]) => ({ userId, connections })).sort((a, b) => (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0));
  const count = { users: all.length, connections: all.reduce((n, u) => n + u.connections, 0) };
  const users = fitting(topic, all.slice(0, deps.listLimit), count, deps.maxMessageBytes);
  return { topic, users, count, ...(users.length < all.length ? { truncated: true } : {}) };
}

/**
 * The longest prefix of `users` whose frame fits one WebSocket message: a user id may be 128
 * characters, so the configured list limit alone does not bound the bytes.
 */
function fitting(topic: string, users: PresenceMember[], count: TopicPresence['count'], maxBytes: number): PresenceMember[] {
  let bytes = Buffer.byteLength(presenceFrame({ topic, users: [], count, truncated: true }), 'utf8');
  for (let i = 0; i < users.length; i++) {
    bytes += Buffer.byteLength(JSON.stringify(users[i]), 'utf8') + (i > 0 ? 1 : 0);
    if (bytes > maxBytes) return users.slice(0, i);
  }
  return users;
}

export async function userPresence(userId: string, deps: { connections: ConnectionStore; lastSeen: LastSeenStore }): Promise<UserPresence> {
  // In this order, never in parallel: a removal records lastSeen before it deletes the connection
  // row, so a (consistent) lastSeen read made after the live read has found the row gone always
  // sees what that removal recorded. Read together, "offline" could come with `lastSeen: null`.
  const live = await deps.connections.liveOfUser(userId);
  const stored = await deps.lastSeen.get(userId);
  const seen = Math.max(stored ?? 0, ...live.map((c) => c.lastSeen));
  return { userId, online: live.length > 0, connections: live.length, lastSeen: seen > 0 ? seen : null };
}
