import { MAX_CONNECTION_SECONDS } from '../config';
import type { Deps } from '../runtime';
import { IdempotencyStore } from '../stores/idempotency';
import { CollectionStore } from '../stores/collections';
import { ItemStore } from '../stores/items';
import { sqsInboundQueue, type InboundQueue } from './app-action';
import { createAuthenticator, type Authenticator } from './auth';
import { removeConnections, type RemovedConnection } from './cleanup';
import { ConnectionStore } from '../stores/connections';
import { LeanSender } from '../delivery/lean-sender';
import { IDEMPOTENCY_WINDOW_SECONDS } from './limits';
import { LastSeenStore } from '../stores/last-seen';
import { announceRemoved, type PresenceEventDeps } from '../presence/presence-events';
import { SdkSender, singleAttemptClient, type Sender } from '../delivery/sender';
import { SubscriptionStore } from '../stores/subscriptions';

/**
 * The stores and senders a subscriber handler needs, built from `Deps` once per handler
 * instance (i.e. once per warm Lambda environment), never at import time.
 */
export interface SubscriberServices {
  readonly connections: ConnectionStore;
  readonly subscriptions: SubscriptionStore;
  readonly items: ItemStore;
  /** A collection's members and their state (collection subscribes). */
  readonly collections: CollectionStore;
  /** Idempotency keys of topic publishes (HTTP now; publishes from the socket reuse it). */
  readonly idempotency: IdempotencyStore;
  /** Replies to the connection that sent a frame: the fan-out sender, one attempt per call (ws-route retries). */
  readonly replySender: Sender;
  auth(): Authenticator;
  /** The inbound queue of application actions, when the stack has any (config `appActions`). */
  readonly inbound?: InboundQueue;
  /**
   * Deletes connections and all their subscription rows, then (presence) records when their users
   * were last seen — `seenAt`, or each connection's own lastSeen when it vanished unseen — and
   * announces leaves on presence topics.
   */
  removeConnections(ids: readonly string[], opts?: { readonly seenAt?: number }): Promise<number>;
  /** Presence: users' lastSeen, and what join/leave events need. */
  readonly lastSeen: LastSeenStore;
  readonly presenceEvents: PresenceEventDeps;
}

export function subscriberServices(deps: Deps): SubscriberServices {
  const { config, clients, clock } = deps;
  let auth: Authenticator | undefined;
  let replySender: Sender | undefined;
  const subscriptions = new SubscriptionStore(clients.doc, { table: config.tables.subscriptions, clock });
  // The fan-out sender (one attempt per call; ws-route's send retries within a 2 s budget): a
  // replay posts up to 1,000 frames, and through the SDK client each cost ~5x the CPU of a lean
  // post (issue 15 measured 5.4x per delivery), while the SDK's own nested retries (500 ms base delay after a
  // 429) spent the budget on a few throttled frames and failed whole replays. Built on first use.
  const reply = () => (replySender ??= fanoutSender(deps, config.subscriber.fanoutSender));
  const lastSeen = new LastSeenStore(clients.doc, { table: config.tables.users });
  const presenceEvents: PresenceEventDeps = {
    subscriptions,
    get sender() {
      return reply();
    },
    settings: config.subscriber.presence,
    concurrency: config.subscriber.fanoutConcurrency,
    log: deps.log,
  };
  /** Presence before a removal: lastSeen; never fails the cleanup. */
  const recordSeen = async (removed: RemovedConnection[], seenAt: number | undefined) => {
    try {
      const latest = new Map<string, number>();
      for (const c of removed) {
        if (c.userId === undefined) continue;
        const at = seenAt ?? c.lastSeen ?? clock();
        latest.set(c.userId, Math.max(latest.get(c.userId) ?? 0, at));
      }
      await Promise.all([...latest].map(([userId, at]) => lastSeen.record(userId, at)));
    } catch (err) {
      deps.log.warn('presence: lastSeen not recorded', { err });
    }
  };
  return {
    connections: new ConnectionStore(clients.doc, {
      table: config.tables.connections,
      ttlSeconds: config.subscriber.connectionTtlSeconds,
      maxLifetimeSeconds: MAX_CONNECTION_SECONDS,
      clock,
    }),
    subscriptions,
    items: new ItemStore(clients.doc, {
      itemsTable: config.tables.items,
      historyTable: config.tables.history,
      historyTtlSeconds: config.subscriber.historyTtlSeconds,
      clock,
    }),
    collections: new CollectionStore(clients.doc, { itemsTable: config.tables.items }),
    idempotency: new IdempotencyStore(clients.doc, { table: config.tables.idempotency, windowSeconds: IDEMPOTENCY_WINDOW_SECONDS, clock }),
    get replySender() {
      return reply();
    },
    auth: () => (auth ??= createAuthenticator(config)),
    ...(config.subscriber.inboundQueueUrl ? { inbound: sqsInboundQueue(clients.sqs, config.subscriber.inboundQueueUrl) } : {}),
    removeConnections: (ids, opts) =>
      removeConnections(clients.doc, { connections: config.tables.connections }, subscriptions, ids, {
        beforeDelete: (removing) => recordSeen(removing, opts?.seenAt),
        onRemoved: (removed) => announceRemoved(removed, presenceEvents),
      }),
    lastSeen,
    presenceEvents,
  };
}

export type SenderKind = 'sdk' | 'lean';

/**
 * The fan-out sender. `sdk` is the reference (the SDK client, one attempt per call because
 * fan-out owns retries); `lean` posts signed requests directly (see lean-sender.ts).
 */
export function fanoutSender(deps: Deps, kind: SenderKind): Sender {
  const base = deps.clients.management(deps.config.managementEndpoint);
  if (kind === 'sdk') return new SdkSender(singleAttemptClient(base, deps.config.managementEndpoint));
  return new LeanSender({
    endpoint: deps.config.managementEndpoint,
    region: deps.config.region,
    // The SDK client's resolved provider (the default chain, or the configured keys): the lean
    // sender caches what it returns until shortly before `expiration`.
    credentials: base.config.credentials,
    maxSockets: deps.config.subscriber.fanoutConcurrency,
    log: deps.log,
  });
}
