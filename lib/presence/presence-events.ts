import type { PresenceSettings } from '../config';
import type { Logger } from '../log';
import { presenceChangeFrame } from '../protocol/frames';
import { topicAllowed } from '../topics';
import type { RemovedConnection } from '../subscriber/cleanup';
import { deliver, type RetryPolicy } from '../delivery/deliver';
import { createLimiter } from '../delivery/limiter';
import type { Sender } from '../delivery/sender';
import type { MemberRow, SubscriptionStore } from '../stores/subscriptions';

/**
 * Join/leave events (docs/subscriber-protocol.md#presence): `{"type":"join"|"leave","topic","userId"}`
 * to a topic's subscribers when a user's first connection subscribes or its last one goes
 * (unsubscribe, `$disconnect`, or a 410 found at delivery). Only on topics matching
 * PRESENCE_TOPICS, and only while the topic has at most PRESENCE_EVENT_MAX_MEMBERS subscribers:
 * each event costs one PostToConnection per member, so a join wave into a room of n members costs
 * n² messages. Past the cap members ask for counts (`presence`) instead.
 *
 * Decisions are taken from a consistent read made AFTER this connection's own write (its row put
 * on subscribe, deleted on leave), so concurrent connections of one user never lose an event:
 * - leave: the last of the user's rows to go finds no other → at least one leave;
 * - join: a connection announces unless another row of the user sorts before its own by
 *   (subscribedAt, connectionId) → the earliest always announces; two concurrent first
 *   subscribes may both announce. Clients treat join/leave as "at least once".
 * Announcing is best effort: a failure is logged and never fails the subscribe, unsubscribe or
 * the fan-out record that found a 410.
 */

export interface PresenceEventDeps {
  readonly subscriptions: SubscriptionStore;
  readonly sender: Sender;
  readonly settings: PresenceSettings;
  readonly concurrency: number;
  readonly log: Logger;
  readonly retry?: RetryPolicy;
}

export function isPresenceTopic(settings: PresenceSettings, topic: string): boolean {
  return topicAllowed(settings.topics, topic);
}

/** After `connectionId` subscribed `topic` (its row is written); `requestedAt` orders it against the user's other rows. */
export async function announceJoin(topic: string, connectionId: string, requestedAt: number, deps: PresenceEventDeps): Promise<boolean> {
  if (!isPresenceTopic(deps.settings, topic)) return false;
  return guarded(deps, 'join', topic, async () => {
    const { rows, more } = await deps.subscriptions.members(topic, deps.settings.eventMaxMembers);
    if (more) return false;
    const mine = rows.find((r) => r.connectionId === connectionId);
    if (!mine) return false; // unsubscribed or gone meanwhile: its leave path speaks for it
    const key = { ...mine, subscribedAt: mine.subscribedAt ?? requestedAt };
    if (rows.some((r) => r.userId === mine.userId && r.connectionId !== connectionId && before(r, key))) return false;
    await broadcast(rows.filter((r) => r.connectionId !== connectionId), presenceChangeFrame('join', topic, mine.userId), deps);
    return true;
  });
}

/** After `userId`'s connection left `topic` (its row is deleted). */
export async function announceLeave(topic: string, userId: string, deps: PresenceEventDeps): Promise<boolean> {
  if (!isPresenceTopic(deps.settings, topic)) return false;
  return guarded(deps, 'leave', topic, async () => {
    const { rows, more } = await deps.subscriptions.members(topic, deps.settings.eventMaxMembers);
    if (more || rows.some((r) => r.userId === userId)) return false;
    await broadcast(rows, presenceChangeFrame('leave', topic, userId), deps);
    return true;
  });
}

/** After removeConnections deleted these connections' rows: one leave per (topic, user) at most. */
export async function announceRemoved(removed: readonly RemovedConnection[], deps: PresenceEventDeps): Promise<void> {
  const pairs = new Map<string, { topic: string; userId: string }>();
  for (const c of removed) {
    if (c.userId === undefined) continue;
    for (const topic of c.topics) if (isPresenceTopic(deps.settings, topic)) pairs.set(JSON.stringify([topic, c.userId]), { topic, userId: c.userId });
  }
  for (const { topic, userId } of pairs.values()) await announceLeave(topic, userId, deps);
}

function before(a: MemberRow, b: MemberRow & { subscribedAt: number }): boolean {
  const at = a.subscribedAt ?? 0;
  return at < b.subscribedAt || (at === b.subscribedAt && a.connectionId < b.connectionId);
}

async function broadcast(to: readonly MemberRow[], frame: string, deps: PresenceEventDeps): Promise<void> {
  const limit = createLimiter(deps.concurrency);
  // A member that is gone (410) is left to fan-out and TTL: pruning it here would announce its
  // own leave from inside another announcement.
  await Promise.all(to.map((r) => deliver(deps.sender, r.connectionId, () => frame, deps.retry, limit)));
}

async function guarded(deps: PresenceEventDeps, kind: 'join' | 'leave', topic: string, run: () => Promise<boolean>): Promise<boolean> {
  try {
    return await run();
  } catch (err) {
    deps.log.warn('presence event not announced', { kind, topic, err });
    return false;
  }
}
