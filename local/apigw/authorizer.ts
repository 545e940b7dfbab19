import { EmulatorOptionError } from './errors';
import type { WebsocketEvent } from './events';

/**
 * A Lambda REQUEST authorizer on `$connect`, as API Gateway WebSocket APIs run it
 * (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-lambda-auth.html):
 *
 * - identity sources are `route.request.header.NAME` and `route.request.querystring.NAME`; when
 *   one is missing or empty API Gateway answers 401 without invoking the authorizer;
 * - the authorizer gets the `$connect` request with `type: "REQUEST"` and
 *   `methodArn: arn:aws:execute-api:REGION:ACCOUNT:API/STAGE/$connect`;
 * - it answers `{ principalId, policyDocument, context }`: an explicit Deny, or no Allow for
 *   `execute-api:Invoke` on the method ARN → 403; throwing (or calling back with) "Unauthorized"
 *   → 401; any other error or a malformed answer (a context value that is an object or array)
 *   → 500;
 * - on Allow, `principalId` and `context` reach `requestContext.authorizer` of the connection's
 *   events.
 */

export interface IdentitySource {
  kind: 'header' | 'querystring';
  name: string;
}

export type AuthorizerContext = Record<string, string | number | boolean>;

export type AuthorizerOutcome = { allowed: true; authorizer: AuthorizerContext } | { allowed: false; status: 401 | 403 | 500; reason: string };

const SOURCE = /^route\.request\.(header|querystring)\.(.+)$/;

/** Validates `identitySource` entries; the error names the one that is wrong. */
export function parseIdentitySources(option: string, list: unknown): IdentitySource[] {
  if (list === undefined) return [];
  const items = typeof list === 'string' ? list.split(',').map((s) => s.trim()) : list;
  if (!Array.isArray(items)) throw new EmulatorOptionError(option, 'expected an array of "route.request.header.NAME" / "route.request.querystring.NAME"');
  return items.map((item, i) => {
    const m = typeof item === 'string' ? SOURCE.exec(item) : null;
    if (!m) {
      throw new EmulatorOptionError(
        `${option}[${i}]`,
        `${JSON.stringify(item)} is not an identity source; WebSocket APIs take route.request.header.NAME or route.request.querystring.NAME`,
      );
    }
    return { kind: m[1] as IdentitySource['kind'], name: m[2] };
  });
}

/** The first identity source the request lacks (absent or empty), described for the log. */
export function missingIdentitySource(sources: readonly IdentitySource[], event: Pick<WebsocketEvent, 'headers' | 'queryStringParameters'>): string | undefined {
  for (const s of sources) {
    let value: string | undefined;
    if (s.kind === 'header') {
      const lower = s.name.toLowerCase();
      const key = Object.keys(event.headers ?? {}).find((k) => k.toLowerCase() === lower);
      value = key === undefined ? undefined : event.headers![key];
    } else {
      value = event.queryStringParameters?.[s.name];
    }
    if (!value) return `route.request.${s.kind}.${s.name}`;
  }
  return undefined;
}

export function methodArn(region: string, account: string, apiId: string, stage: string): string {
  return `arn:aws:execute-api:${region}:${account}:${apiId}/${stage}/$connect`;
}

/** The authorizer's input: the `$connect` request plus `type` and `methodArn`. */
export function authorizerEvent(connect: WebsocketEvent, arn: string): Record<string, unknown> {
  return { type: 'REQUEST', methodArn: arn, ...connect, stageVariables: null };
}

/** IAM-style wildcard match (`*` any run, `?` one character), as API Gateway matches policy resources. */
function globMatch(pattern: string, value: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  return re.test(value);
}

const asList = (v: unknown): unknown[] => (Array.isArray(v) ? v : v === undefined ? [] : [v]);

function statementApplies(st: Record<string, unknown>, arn: string): boolean {
  const actions = asList(st.Action).filter((a): a is string => typeof a === 'string');
  const resources = asList(st.Resource).filter((r): r is string => typeof r === 'string');
  const actionOk = actions.some((a) => globMatch(a.toLowerCase(), 'execute-api:invoke'));
  return actionOk && resources.some((r) => globMatch(r, arn));
}

/** Turns the authorizer's answer (or its error) into API Gateway's decision. */
export function authorizerOutcome(result: { value?: unknown; error?: unknown }, arn: string): AuthorizerOutcome {
  if ('error' in result && result.error !== undefined) {
    const e = result.error;
    const message = typeof e === 'string' ? e : e instanceof Error ? e.message : String(e);
    if (message === 'Unauthorized') return { allowed: false, status: 401, reason: 'authorizer answered Unauthorized' };
    return { allowed: false, status: 500, reason: `authorizer failed: ${message}` };
  }
  const r = result.value as { principalId?: unknown; policyDocument?: { Statement?: unknown }; context?: unknown } | undefined;
  if (!r || typeof r !== 'object' || !r.policyDocument || typeof r.policyDocument !== 'object') {
    return { allowed: false, status: 500, reason: 'authorizer returned no policyDocument' };
  }
  const statements = asList(r.policyDocument.Statement).filter((s): s is Record<string, unknown> => !!s && typeof s === 'object');
  const applying = statements.filter((s) => statementApplies(s, arn));
  if (applying.some((s) => s.Effect === 'Deny')) return { allowed: false, status: 403, reason: 'policy denies execute-api:Invoke' };
  if (!applying.some((s) => s.Effect === 'Allow')) return { allowed: false, status: 403, reason: `policy allows no execute-api:Invoke on ${arn}` };
  const authorizer: AuthorizerContext = {};
  if (r.context !== undefined && r.context !== null) {
    if (typeof r.context !== 'object' || Array.isArray(r.context)) return { allowed: false, status: 500, reason: 'authorizer context must be an object' };
    for (const [k, v] of Object.entries(r.context)) {
      // "You can't set a JSON object or array as a valid value of any key in the context map."
      if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
        return { allowed: false, status: 500, reason: `authorizer context.${k} must be a string, number or boolean` };
      }
      authorizer[k] = v;
    }
  }
  if (typeof r.principalId === 'string') authorizer.principalId = r.principalId;
  return { allowed: true, authorizer };
}
