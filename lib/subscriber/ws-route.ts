import type { Deps } from '../runtime';
import { withRetries } from '../delivery/deliver';
import { SubscriberError } from './errors';
import { acceptedFrame, publishedFrame } from '../protocol/frames';
import { acceptAppAction } from './app-action';
import { errorFrame, FrameTooLargeError, pongFrame, unsubscribedFrame } from './frames';
import { parseClientFrame, parseFrameBody, type ParsedFrame } from './protocol';
import type { SubscriberServices } from './services';
import { RateLimitedError } from './socket-gate';
import { publishFromSocket } from './socket-publish';
import { subscribe } from './subscribe';
import { unsubscribe } from './unsubscribe';
import { presenceFrame } from '../protocol/frames';
import { topicAllowed } from '../topics';
import { topicPresence } from '../presence/presence';
import { announceJoin, announceLeave, isPresenceTopic } from '../presence/presence-events';

/**
 * The shared body of the message routes (subscribe, unsubscribe, ping, publish, $default). Application
 * actions (config `appActions`) arrive on `$default` and are dispatched here (docs/decisions.md). API Gateway
 * selects the route from `action` only; the handler validates the whole frame and answers over
 * the management API (`PostToConnection`, awaited in order, so a snapshot and the replies of
 * one frame arrive in sequence). Client errors become `{"type":"error","code",…}` frames and
 * the connection stays open; nothing is written for a frame that fails validation.
 */

export interface WebsocketMessageEvent {
  readonly body?: string | null;
  readonly isBase64Encoded?: boolean;
  readonly requestContext: {
    readonly connectionId: string;
    readonly routeKey?: string;
    /** When API Gateway received the frame (epoch ms); frames of one connection arrive in order. */
    readonly requestTimeEpoch?: number;
  };
}

export type RouteName = 'subscribe' | 'unsubscribe' | 'ping' | 'publish' | 'presence' | '$default';

export function messageRoute(deps: Deps, services: SubscriberServices, route: RouteName) {
  return async (event: WebsocketMessageEvent): Promise<{ statusCode: number }> => {
    const connectionId = event.requestContext.connectionId;
    const requestedAt = event.requestContext.requestTimeEpoch ?? deps.clock();
    const send = async (frame: string) => {
      // Retried like a fan-out delivery (429/5xx with backoff, bounded in time): a replay of many
      // events that gave up at the first failed frame would, at a few % of failed calls, almost
      // never complete, and the client would re-subscribe over and over.
      const outcome = await withRetries(() => services.replySender.send(connectionId, frame));
      // The client left mid-reply: nothing more to say; fan-out or $disconnect prunes the rows.
      if (outcome === 'gone') throw new ClientGoneError(connectionId);
      // subscribe falls back to a truncated placeholder on this; anywhere else it is a topic-scoped error.
      if (outcome === 'too_large') throw new FrameTooLargeError(connectionId);
      if (outcome !== 'ok') throw new Error(`reply to ${connectionId} failed: ${outcome}`);
    };
    let frame: ParsedFrame | undefined;
    let raw: Record<string, unknown> | undefined;
    const { appActions, socketRate: rate } = deps.config.subscriber;
    try {
      raw = parseFrameBody(event.body, Boolean(event.isBase64Encoded), appActions);
      frame = parseClientFrame(raw, appActions);
      if ('app' in frame) {
        if (route !== '$default') throw new SubscriberError('invalid_message', `the ${route} route received action "${frame.action}"`);
        if (!services.inbound) throw new Error('application actions are configured without an inbound queue');
        await acceptAppAction(connectionId, frame, requestedAt, { connections: services.connections, rate, inbound: services.inbound });
        await send(acceptedFrame(frame.action, frame.id));
        return { statusCode: 200 };
      }
      if (route === '$default') {
        // API Gateway sends a known action here only if its route is not deployed.
        throw new SubscriberError('unknown_action', `action "${frame.action}" is not routed on this stage`);
      }
      if (frame.action !== route) {
        throw new SubscriberError('invalid_message', `the ${route} route received action "${frame.action}"`);
      }
      switch (frame.action) {
        case 'subscribe': {
          const r = await subscribe(
            connectionId,
            { ...frame, requestedAt },
            {
              ...services,
              send,
              clock: deps.clock,
              maxMessageBytes: deps.config.subscriber.maxMessageBytes,
              collectionMaxMembers: deps.config.subscriber.collectionMaxMembers,
            },
          );
          if (!r.wasSubscribed) await announceJoin(frame.topic, connectionId, requestedAt, services.presenceEvents);
          break;
        }
        case 'unsubscribe': {
          // Presence needs the user of a leave; only read for topics that announce one.
          const conn = isPresenceTopic(services.presenceEvents.settings, frame.topic) ? await services.connections.get(connectionId) : undefined;
          const removed = await unsubscribe(connectionId, frame.topic, services, requestedAt);
          await send(unsubscribedFrame(frame.topic));
          if (removed && conn) await announceLeave(frame.topic, conn.userId, services.presenceEvents);
          break;
        }
        case 'presence': {
          const conn = await services.connections.get(connectionId);
          if (!conn) throw new SubscriberError('not_connected', 'the connection is not registered (closed or expired)', 410);
          // Seeing who is on a topic is reading it: the same right as subscribing.
          if (!topicAllowed(conn.allowedTopics, frame.topic)) throw new SubscriberError('forbidden', `topic "${frame.topic}" is not allowed for this connection`, 403);
          const body = await topicPresence(frame.topic, {
            ...services,
            listLimit: deps.config.subscriber.presence.listLimit,
            maxMessageBytes: deps.config.subscriber.maxMessageBytes,
          });
          await send(presenceFrame({ ...body, ...(frame.id !== undefined ? { id: frame.id } : {}) }));
          break;
        }
        case 'ping': {
          await services.connections.touch(connectionId);
          await send(pongFrame(deps.clock()));
          break;
        }
        case 'publish': {
          const { seq } = await publishFromSocket(connectionId, frame, {
            ...services,
            rate,
            maxMessageBytes: deps.config.subscriber.maxMessageBytes,
          });
          await send(publishedFrame(frame.topic, seq, frame.id));
          break;
        }
      }
      return { statusCode: 200 };
    } catch (err) {
      if (err instanceof ClientGoneError) return { statusCode: 410 };
      const action = typeof raw?.action === 'string' ? raw.action.slice(0, 64) : undefined;
      const topic = typeof raw?.topic === 'string' && raw.topic.length <= 256 ? raw.topic : undefined;
      // The topic goes on every error so a client can tie it to its subscription (and stop waiting for a reply).
      // The id ties an error to the publish or action it answers (the SDK settles that call).
      const id = typeof raw?.id === 'string' && raw.id.length <= 64 ? raw.id : undefined;
      const scope = { ...(action ? { action } : {}), ...(topic ? { topic } : {}), ...(id !== undefined ? { id } : {}) };
      if (err instanceof SubscriberError) {
        const extra = err instanceof RateLimitedError ? { retryAfterMs: err.retryAfterMs } : {};
        await send(errorFrame(err.code, err.message, { ...scope, ...extra })).catch(() => {});
        return { statusCode: err.status };
      }
      if (err instanceof FrameTooLargeError) {
        deps.log.warn('websocket reply refused as too large', { route, connectionId, topic });
        await send(errorFrame('payload_too_large', 'a reply exceeded the WebSocket message limit', scope)).catch(() => {});
        return { statusCode: 413 };
      }
      deps.log.error('websocket route failed', { route, connectionId, err });
      await send(errorFrame('internal_error', 'the request could not be completed; retry', scope)).catch(() => {});
      return { statusCode: 500 };
    }
  };
}

/** The client left while its reply was being sent (410): nothing more can be said to it. */
export class ClientGoneError extends Error {
  readonly code = 'client_gone';
  constructor(connectionId: string) {
    super(`connection ${connectionId} is gone`);
    this.name = 'ClientGoneError';
  }
}
