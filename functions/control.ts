import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { InputError } from '../lib/errors';
import { lambdaEntry, type Deps } from '../lib/runtime';
import { sqsCommandSender } from '../lib/upstream/commands';
import { controlCaller, type ControlAuthorizer } from '../lib/upstream/control-auth';
import { closeUpstream, describeUpstream, listUpstreams, openUpstream, socketIdFrom, type ControlDeps } from '../lib/upstream/control';
import { createSecretStore } from '../lib/upstream/secrets';
import { SsrfGuard } from '../lib/upstream/ssrf';
import { UpstreamStore } from '../lib/upstream/store';

/**
 * Upstream control API (HTTP API, payload format 2.0): POST/GET/DELETE /websocket and
 * GET /websockets. Thin: route, call lib/upstream/control.ts, shape the JSON response.
 * Errors are `{"code","message"}` with the InputError's status; anything else is a 500 that
 * names no internals. Every route first establishes the caller from the authoriser's context
 * (lib/upstream/control-auth.ts): JWT callers need the `upstream:admin` scope.
 */

export function controlDeps(deps: Deps): ControlDeps {
  return {
    store: new UpstreamStore(deps.clients.doc, deps.config.tables.upstreams),
    secrets: createSecretStore(deps.config.upstream, deps.clients.secrets),
    commands: sqsCommandSender(deps.clients.sqs, deps.config.commandQueueUrl, deps.clock),
    guard: new SsrfGuard({ allowHosts: deps.config.upstream.allowHosts }),
    secretPrefix: deps.config.upstream.secretPrefix,
    publishClaim: deps.config.auth.claims.publish,
    clock: deps.clock,
    log: deps.log,
  };
}

const json = (statusCode: number, body: unknown): APIGatewayProxyStructuredResultV2 => ({
  statusCode,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
});

export const createHandler = (deps: Deps, control: ControlDeps = controlDeps(deps)) =>
  async (event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> => {
    const route = event.routeKey ?? `${event.requestContext?.http?.method} ${event.rawPath}`;
    try {
      // Payload 2.0 puts the authoriser's output here (jwt.claims, or iam.userArn); absent locally.
      const caller = controlCaller((event.requestContext as { authorizer?: ControlAuthorizer } | undefined)?.authorizer);
      switch (route) {
        case 'POST /websocket':
          return json(202, await openUpstream(control, event.headers, caller));
        case 'GET /websocket':
          return json(200, await describeUpstream(control, socketIdFrom(event.headers, event.queryStringParameters)));
        case 'DELETE /websocket':
          return json(202, await closeUpstream(control, socketIdFrom(event.headers, event.queryStringParameters), caller));
        case 'GET /websockets':
          return json(200, await listUpstreams(control, event.queryStringParameters));
        default:
          return json(404, { code: 'unknown_route', message: `no route ${route}` });
      }
    } catch (err) {
      if (err instanceof InputError) return json(err.status, { code: err.code, message: err.message });
      // Headers are not logged: they carry asapa_pass (and the logger would redact it anyway).
      deps.log.error('control request failed', { route, err });
      return json(500, { code: 'internal_error', message: 'internal error' });
    }
  };

export const handler = lambdaEntry(createHandler);
