import type { Deps } from '../lib/runtime';
import { lambdaEntry } from '../lib/runtime';
import { connect } from '../lib/subscriber/connect';
import { SubscriberError } from '../lib/subscriber/errors';
import { subscriberServices } from '../lib/subscriber/services';

/** WebSocket $connect: authenticate, record the connection, subscribe item-key query parameters. */

interface ConnectEvent {
  readonly headers?: Record<string, string | undefined> | null;
  readonly queryStringParameters?: Record<string, string | undefined> | null;
  readonly requestContext: { readonly connectionId: string; readonly connectedAt?: number };
}

export const createHandler = (deps: Deps) => {
  const services = subscriberServices(deps);
  return async (event: ConnectEvent) => {
    const { connectionId } = event.requestContext;
    try {
      const { principal } = await connect(
        {
          connectionId,
          connectedAt: event.requestContext.connectedAt ?? deps.clock(),
          headers: event.headers,
          query: event.queryStringParameters,
        },
        { auth: services.auth(), connections: services.connections, subscriptions: services.subscriptions, itemKeys: deps.config.subscriber.itemKeys },
      );
      // API Gateway forwards Sec-WebSocket-Protocol only when $connect returns it; browsers fail
      // the handshake if they offered one and none comes back.
      return { statusCode: 200, ...(principal.protocol ? { headers: { 'Sec-WebSocket-Protocol': principal.protocol } } : {}) };
    } catch (err) {
      if (err instanceof SubscriberError) {
        // The message names the fix (e.g. "offer ['bearer', token]"); API Gateway does not pass
        // the body to the client, so the log is where a developer finds it. It never holds a token.
        deps.log.info('connect refused', { connectionId, code: err.code, status: err.status, reason: err.message });
        return { statusCode: err.status, body: JSON.stringify({ code: err.code, message: err.message }) };
      }
      deps.log.error('connect failed', { connectionId, err });
      return { statusCode: 500, body: JSON.stringify({ code: 'internal_error', message: 'connect failed' }) };
    }
  };
};

export const handler = lambdaEntry(createHandler);
