import { topicAllowed, topicProblem } from '../topics';
import type { Authenticator, Principal } from './auth';
import type { ConnectionStore } from '../stores/connections';
import { AuthError, SubscriberError } from './errors';
import { MAX_TOPICS_PER_CONNECTION } from './limits';
import type { SubscriptionStore } from '../stores/subscriptions';
import type { UpgradeRequest } from './token';

/**
 * $connect: authenticate, then record the connection and the topics named by item-key query
 * parameters (seed 002: item key `vehicleId`, `?vehicleId=3` → topic `vehicleId:3`).
 *
 * Nothing is written unless authentication and every item-key topic pass, so a refused upgrade
 * leaves no row behind. No snapshot is sent from here: API Gateway refuses PostToConnection
 * (410) until $connect has returned, so events flow from the connection's first moment and the
 * client sends `subscribe` for the snapshot (idempotent for a topic it already holds).
 */

export interface ConnectRequest extends UpgradeRequest {
  readonly connectionId: string;
  /** API Gateway's `requestContext.connectedAt` (epoch ms). */
  readonly connectedAt: number;
}

export interface ConnectDeps {
  readonly auth: Authenticator;
  readonly connections: ConnectionStore;
  readonly subscriptions: SubscriptionStore;
  readonly itemKeys: readonly string[];
}

export interface ConnectResult {
  readonly principal: Principal;
  readonly topics: readonly string[];
}

export function itemKeyTopics(itemKeys: readonly string[], query: UpgradeRequest['query']): string[] {
  const topics: string[] = [];
  for (const key of itemKeys) {
    const v = query?.[key];
    if (v === undefined || v === '') continue;
    const topic = `${key}:${v}`;
    const p = topicProblem(topic);
    if (p) throw new SubscriberError('invalid_topic', `query parameter ${key}: ${p}`);
    topics.push(topic);
  }
  return topics;
}

export async function connect(req: ConnectRequest, deps: ConnectDeps): Promise<ConnectResult> {
  const principal = await deps.auth.connect(req, req.connectionId);
  const topics = itemKeyTopics(deps.itemKeys, req.query);
  if (topics.length > MAX_TOPICS_PER_CONNECTION) {
    throw new SubscriberError('too_many_subscriptions', `a connection may hold at most ${MAX_TOPICS_PER_CONNECTION} topics`);
  }
  for (const t of topics) {
    if (!topicAllowed(principal.allowedTopics, t)) throw new AuthError('forbidden', `the token does not allow topic "${t}"`);
  }
  const row = await deps.connections.put({
    connectionId: req.connectionId,
    userId: principal.userId,
    allowedTopics: principal.allowedTopics,
    publishTopics: principal.publishTopics,
    ...(principal.claims ? { claims: principal.claims } : {}),
    topics,
    connectedAt: req.connectedAt,
  });
  const expiresAt = deps.connections.subscriptionExpiresAt(row.connectedAt);
  await Promise.all(
    topics.map((topic) => deps.subscriptions.put({ topic, connectionId: req.connectionId, userId: principal.userId, expiresAt })),
  );
  return { principal, topics };
}
