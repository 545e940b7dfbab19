import type { Deps } from '../lib/runtime';
import { lambdaEntry } from '../lib/runtime';
import { createDeliveryMetrics, metricsNamespace } from '../lib/metrics';
import { SubscriberError } from '../lib/subscriber/errors';
import {
  assertDeliverable,
  authorize,
  messageFrame,
  parsePublishBody,
  publishToTopic,
} from '../lib/subscriber/publish';
import { sendToConnection } from '../lib/subscriber/send-to-connection';
import { sendToUser } from '../lib/subscriber/send-to-user';
import { fanoutSender, subscriberServices, type SenderKind } from '../lib/subscriber/services';

/** POST /publish: write a topic update (seq + history), send to every connection of a user, or reply to one connection. */

interface HttpEvent {
  readonly body?: string | null;
  /** Payload 2.0 lower-cases header names. */
  readonly headers?: Readonly<Record<string, string | undefined>> | null;
  readonly isBase64Encoded?: boolean;
  readonly requestContext?: { readonly authorizer?: { readonly jwt?: { readonly claims?: Record<string, unknown> } } };
}

const json = (statusCode: number, body: unknown, headers: Record<string, string> = {}) => ({
  statusCode,
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify(body),
});

/**
 * Whose idempotency keys these are: the JWT subject when the HTTP API's JWT authoriser admitted
 * the call, else one shared space for the trusted callers of an IAM-authorised (or local) API.
 */
function idempotencyScope(claims: Record<string, unknown> | undefined): string {
  return typeof claims?.sub === 'string' ? `http:jwt:${claims.sub}` : 'http:trusted';
}

export const createHandler = (deps: Deps, opts: { sender?: SenderKind } = {}) => {
  const services = subscriberServices(deps);
  const metrics = createDeliveryMetrics({ namespace: metricsNamespace(deps.config.stack), write: deps.emf });
  let sender: ReturnType<typeof fanoutSender> | undefined;
  const { publish: publishClaim, sendToUser: sendToUserClaim, sendToConnection: sendToConnectionClaim } = deps.config.auth.claims;
  return async (event: HttpEvent) => {
    try {
      const idempotencyKey = event.headers?.['idempotency-key'];
      const req = parsePublishBody(event.body, Boolean(event.isBase64Encoded), deps.clock(), idempotencyKey !== undefined ? { idempotencyKey } : {});
      const claims = event.requestContext?.authorizer?.jwt?.claims;
      authorize(req, claims, publishClaim, sendToUserClaim, sendToConnectionClaim);
      assertDeliverable(req, deps.config.subscriber.maxMessageBytes);
      if (req.kind === 'topic') {
        const r = await publishToTopic(req, services.items, { store: services.idempotency, scope: idempotencyScope(claims) });
        // A replay wrote nothing; fan-out counts the deliveries of what was written.
        metrics.count('published', r.replayed ? 0 : 1);
        // The body repeats the first answer exactly; the header tells a curious client it was a repeat.
        return json(r.status, r.body, r.replayed ? { 'idempotent-replayed': 'true' } : {});
      }
      sender ??= fanoutSender(deps, opts.sender ?? deps.config.subscriber.fanoutSender);
      if (req.kind === 'connection') {
        const r = await sendToConnection(req.connectionId, messageFrame(req.data, deps.clock()), { sender, removeConnections: services.removeConnections });
        metrics.count(r.reached ? 'deliveries' : 'gone', 1);
        return json(200, { connectionId: req.connectionId, reached: r.reached });
      }
      const r = await sendToUser(req.userId, messageFrame(req.data, deps.clock()), {
        connections: services.connections,
        sender,
        removeConnections: services.removeConnections,
        concurrency: deps.config.subscriber.fanoutConcurrency,
      });
      metrics.count('deliveries', r.reached);
      metrics.count('gone', r.gone);
      metrics.count('failed', r.failed);
      metrics.count('throttled', r.throttled);
      return json(200, { userId: req.userId, connections: r.connections, reached: r.reached });
    } catch (err) {
      if (err instanceof SubscriberError) return json(err.status, { code: err.code, message: err.message });
      deps.log.error('publish failed', { err });
      return json(500, { code: 'internal_error', message: 'publish failed' });
    } finally {
      metrics.flush();
    }
  };
};

export const handler = lambdaEntry(createHandler);
