import type { Deps } from '../lib/runtime';
import { lambdaEntry } from '../lib/runtime';
import { SubscriberError } from '../lib/subscriber/errors';
import {
  assertDeliverable,
  authorize,
  messageFrame,
  parsePublishBody,
  publishToTopic,
} from '../lib/subscriber/publish';
import { sendToUser } from '../lib/subscriber/send-to-user';
import { fanoutSender, subscriberServices, type SenderKind } from '../lib/subscriber/services';

/** POST /publish: write a topic update (seq + history) or send to every connection of a user. */

interface HttpEvent {
  readonly body?: string | null;
  readonly isBase64Encoded?: boolean;
  readonly requestContext?: { readonly authorizer?: { readonly jwt?: { readonly claims?: Record<string, unknown> } } };
}

const json = (statusCode: number, body: unknown) => ({
  statusCode,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
});

export const createHandler = (deps: Deps, opts: { sender?: SenderKind } = {}) => {
  const services = subscriberServices(deps);
  let sender: ReturnType<typeof fanoutSender> | undefined;
  const { publish: publishClaim, sendToUser: sendToUserClaim } = deps.config.auth.claims;
  return async (event: HttpEvent) => {
    try {
      const req = parsePublishBody(event.body, Boolean(event.isBase64Encoded), deps.clock());
      authorize(req, event.requestContext?.authorizer?.jwt?.claims, publishClaim, sendToUserClaim);
      assertDeliverable(req, deps.config.subscriber.maxMessageBytes);
      if (req.kind === 'topic') {
        const r = await publishToTopic(req, services.items);
        return json(r.status, r.body);
      }
      sender ??= fanoutSender(deps, opts.sender ?? deps.config.subscriber.fanoutSender);
      const r = await sendToUser(req.userId, messageFrame(req.data, deps.clock()), {
        connections: services.connections,
        sender,
        removeConnections: services.removeConnections,
        concurrency: deps.config.subscriber.fanoutConcurrency,
      });
      return json(200, { userId: req.userId, connections: r.connections, reached: r.reached });
    } catch (err) {
      if (err instanceof SubscriberError) return json(err.status, { code: err.code, message: err.message });
      deps.log.error('publish failed', { err });
      return json(500, { code: 'internal_error', message: 'publish failed' });
    }
  };
};

export const handler = lambdaEntry(createHandler);
