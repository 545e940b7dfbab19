import type { APIGatewayProxyWebsocketEventV2 } from 'aws-lambda';

/**
 * Lambda proxy events in the shape API Gateway WebSocket APIs send. The typed part is
 * `APIGatewayProxyWebsocketEventV2` from @types/aws-lambda; the extra fields below are what API
 * Gateway really sends and that type omits (identity, headers on $connect/$disconnect,
 * disconnectStatusCode/disconnectReason). Reference: "Set up WebSocket API integrations" and the
 * example events in https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-mapping-template-reference.html
 * (`$context.connectedAt`, `$context.requestTimeEpoch`, `$context.identity.sourceIp`, ...).
 */

export interface WebsocketIdentity {
  sourceIp: string;
  userAgent?: string;
}

/**
 * `requestContext.identity` as API Gateway sends it on WebSocket events: every field present,
 * `null` where there is no value (captured $connect events show exactly these twelve keys).
 */
export interface EventIdentity {
  accessKey: null;
  accountId: null;
  caller: null;
  cognitoAuthenticationProvider: null;
  cognitoAuthenticationType: null;
  cognitoIdentityId: null;
  cognitoIdentityPoolId: null;
  principalOrgId: null;
  sourceIp: string;
  user: null;
  userAgent: string | null;
  userArn: null;
}

export function eventIdentity(id: WebsocketIdentity): EventIdentity {
  return {
    accessKey: null,
    accountId: null,
    caller: null,
    cognitoAuthenticationProvider: null,
    cognitoAuthenticationType: null,
    cognitoIdentityId: null,
    cognitoIdentityPoolId: null,
    principalOrgId: null,
    sourceIp: id.sourceIp,
    user: null,
    userAgent: id.userAgent ?? null,
    userArn: null,
  };
}

export interface WebsocketRequestContext {
  routeKey: string;
  /** MESSAGE only. */
  messageId?: string;
  eventType: 'CONNECT' | 'MESSAGE' | 'DISCONNECT';
  extendedRequestId: string;
  requestTime: string;
  messageDirection: 'IN';
  stage: string;
  connectedAt: number;
  requestTimeEpoch: number;
  identity: EventIdentity;
  /** With a `$connect` authorizer: its `principalId` and `context`, on every event of the connection. */
  authorizer?: Record<string, string | number | boolean>;
  requestId: string;
  domainName: string;
  connectionId: string;
  apiId: string;
  /** DISCONNECT only. */
  disconnectStatusCode?: number;
  disconnectReason?: string;
}

export interface WebsocketEvent extends Omit<APIGatewayProxyWebsocketEventV2, 'requestContext'> {
  requestContext: WebsocketRequestContext;
  headers?: Record<string, string>;
  multiValueHeaders?: Record<string, string[]>;
}

/** What every event of one connection shares. */
export interface ConnectionFacts {
  connectionId: string;
  connectedAt: number;
  stage: string;
  apiId: string;
  domainName: string;
  identity: WebsocketIdentity;
  /** What the `$connect` authorizer allowed the connection with (principalId + context). */
  authorizer?: Record<string, string | number | boolean>;
  /** The upgrade request's query string without `?` (listed by `_emulator/connections`). */
  queryString?: string;
}

export interface EventIds {
  requestId: string;
  /** API Gateway sends a distinct extendedRequestId; it has the same form. */
  extendedRequestId: string;
  /** MESSAGE only. */
  messageId?: string;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad = (n: number) => String(n).padStart(2, '0');

/** `$context.requestTime`: CLF format, e.g. `09/Feb/2024:13:04:05 +0000` (always UTC). */
export function clfTime(ms: number): string {
  const d = new Date(ms);
  return (
    `${pad(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`
  );
}

function requestContext(
  facts: ConnectionFacts,
  routeKey: string,
  eventType: WebsocketRequestContext['eventType'],
  ids: EventIds,
  now: number,
): WebsocketRequestContext {
  return {
    routeKey,
    ...(ids.messageId !== undefined ? { messageId: ids.messageId } : {}),
    eventType,
    extendedRequestId: ids.extendedRequestId,
    requestTime: clfTime(now),
    messageDirection: 'IN',
    stage: facts.stage,
    connectedAt: facts.connectedAt,
    requestTimeEpoch: now,
    identity: eventIdentity(facts.identity),
    ...(facts.authorizer ? { authorizer: { ...facts.authorizer } } : {}),
    requestId: ids.requestId,
    domainName: facts.domainName,
    connectionId: facts.connectionId,
    apiId: facts.apiId,
  };
}

export interface UpgradeRequestFacts {
  /** Node's `req.rawHeaders`: [name, value, name, value, ...] with the client's casing. */
  rawHeaders: readonly string[];
  /** The request URL's query string without `?` ('' when none). */
  query: string;
  /** The port the client connected to (X-Forwarded-Port). */
  localPort: number;
  /** The scheme the client connected with (X-Forwarded-Proto). */
  proto: 'http' | 'https';
  /** Keep `Connection`/`Upgrade`: the authorizer's input has them, the `$connect` integration's not. */
  keepHopByHop?: boolean;
}

/**
 * Hop-by-hop headers of the upgrade are consumed by API Gateway's edge and do not reach the
 * integration; API Gateway adds X-Forwarded-* instead.
 */
const DROPPED = new Set(['connection', 'upgrade']);

/** `headers` (last value wins) and `multiValueHeaders`, keeping the client's header-name casing. */
export function headerMaps(rawHeaders: readonly string[], extra: Record<string, string> = {}, dropped: ReadonlySet<string> = DROPPED) {
  const headers: Record<string, string> = {};
  const multiValueHeaders: Record<string, string[]> = {};
  const nameFor = new Map<string, string>();
  const add = (name: string, value: string) => {
    const lower = name.toLowerCase();
    if (dropped.has(lower)) return;
    const key = nameFor.get(lower) ?? name;
    nameFor.set(lower, key);
    headers[key] = value;
    (multiValueHeaders[key] ??= []).push(value);
  };
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) add(rawHeaders[i], rawHeaders[i + 1]);
  for (const [k, v] of Object.entries(extra)) if (!nameFor.has(k.toLowerCase())) add(k, v);
  return { headers, multiValueHeaders };
}

/** `queryStringParameters` (last value wins) and the multi-value form; both absent without a query. */
export function queryMaps(query: string) {
  const params = new URLSearchParams(query);
  const single: Record<string, string> = {};
  const multi: Record<string, string[]> = {};
  for (const [k, v] of params) {
    single[k] = v;
    (multi[k] ??= []).push(v);
  }
  return Object.keys(single).length ? { queryStringParameters: single, multiValueQueryStringParameters: multi } : {};
}

export function connectEvent(facts: ConnectionFacts, req: UpgradeRequestFacts, ids: EventIds, now: number): WebsocketEvent {
  const { headers, multiValueHeaders } = headerMaps(
    req.rawHeaders,
    { 'X-Forwarded-For': facts.identity.sourceIp, 'X-Forwarded-Port': String(req.localPort), 'X-Forwarded-Proto': req.proto },
    req.keepHopByHop ? new Set() : DROPPED,
  );
  return {
    headers,
    multiValueHeaders,
    ...queryMaps(req.query),
    requestContext: requestContext(facts, '$connect', 'CONNECT', ids, now),
    isBase64Encoded: false,
  };
}

export function messageEvent(facts: ConnectionFacts, routeKey: string, body: string, ids: EventIds, now: number): WebsocketEvent {
  return {
    requestContext: requestContext(facts, routeKey, 'MESSAGE', ids, now),
    body,
    isBase64Encoded: false,
  };
}

/**
 * API Gateway's $disconnect event carries a few fixed headers (Host plus empty `x-api-key`,
 * `X-Forwarded-For`, `x-restapi`) and the close frame's status code and reason.
 */
export function disconnectEvent(
  facts: ConnectionFacts,
  status: { code: number; reason: string },
  ids: EventIds,
  now: number,
): WebsocketEvent {
  const headers: Record<string, string> = { Host: facts.domainName, 'x-api-key': '', 'X-Forwarded-For': '', 'x-restapi': '' };
  const multiValueHeaders = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]]));
  const ctx = requestContext(facts, '$disconnect', 'DISCONNECT', ids, now);
  return {
    headers,
    multiValueHeaders,
    requestContext: { ...ctx, disconnectStatusCode: status.code, disconnectReason: status.reason },
    isBase64Encoded: false,
  };
}

/**
 * `disconnectReason` when the close frame carried no reason text. Strings follow what API
 * Gateway writes (e.g. "Connection Closed Normally" for 1000, "Client-side close frame status not
 * set" for 1005, "Going away" for its idle/duration timeouts).
 */
export function disconnectReasonFor(code: number, reason: string): string {
  if (reason) return reason;
  switch (code) {
    case 1000:
      return 'Connection Closed Normally';
    case 1001:
      return 'Going away';
    case 1005:
      return 'Client-side close frame status not set';
    case 1006:
      return 'Connection closed abnormally';
    case 1009:
      return 'Message too big';
    default:
      return `Closed with status ${code}`;
  }
}
