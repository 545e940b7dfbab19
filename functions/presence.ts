import type { Deps } from '../lib/runtime';
import { lambdaEntry } from '../lib/runtime';
import { SubscriberError } from '../lib/subscriber/errors';
import { topicPresence, userPresence } from '../lib/presence/presence';
import { authorizePresence, parsePresenceQuery } from '../lib/presence/presence-query';
import { subscriberServices } from '../lib/subscriber/services';

/** GET /presence?topic= (the `presence` frame's body) or ?userId= ({userId, online, connections, lastSeen}). */

interface HttpEvent {
  readonly queryStringParameters?: Readonly<Record<string, string | undefined>> | null;
  readonly requestContext?: { readonly authorizer?: { readonly jwt?: { readonly claims?: Record<string, unknown> } } };
}

const json = (statusCode: number, body: unknown) => ({ statusCode, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

export const createHandler = (deps: Deps) => {
  const services = subscriberServices(deps);
  const { publish, sendToUser } = deps.config.auth.claims;
  return async (event: HttpEvent) => {
    try {
      const req = parsePresenceQuery(event.queryStringParameters);
      authorizePresence(req, event.requestContext?.authorizer?.jwt?.claims, publish, sendToUser);
      if (req.kind === 'user') return json(200, await userPresence(req.userId, services));
      const body = await topicPresence(req.topic, {
        ...services,
        listLimit: deps.config.subscriber.presence.listLimit,
        maxMessageBytes: deps.config.subscriber.maxMessageBytes,
      });
      return json(200, { type: 'presence', ...body });
    } catch (err) {
      if (err instanceof SubscriberError) return json(err.status, { code: err.code, message: err.message });
      deps.log.error('presence failed', { err });
      return json(500, { code: 'internal_error', message: 'presence failed' });
    }
  };
};

export const handler = lambdaEntry(createHandler);
