import type { IncomingMessage } from 'node:http';

/**
 * Route keys and payload-format-2.0 events of API Gateway HTTP APIs.
 */

export interface CompiledRoute<T> {
  readonly key: string;
  readonly target: T;
  /** Higher wins when several routes match. */
  readonly specificity: number;
  match(method: string, path: string): Record<string, string> | undefined;
}

export function routeMatcher<T>(key: string, target: T): CompiledRoute<T> {
  if (key === '$default') return { key, target, specificity: -1, match: () => ({}) };
  const m = /^(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS|ANY) (\/.*)$/.exec(key);
  if (!m) throw new Error(`route key "${key}": expected "METHOD /path" or "$default"`);
  const [, method, pattern] = m;
  const names: string[] = [];
  let literal = 0;
  let greedy = false;
  const re = pattern
    .split('/')
    .map((seg) => {
      const p = /^\{([A-Za-z0-9_]+)(\+)?\}$/.exec(seg);
      if (!p) {
        literal += 1;
        return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      }
      names.push(p[1]);
      if (p[2]) {
        greedy = true;
        return '(.+)';
      }
      return '([^/]+)';
    })
    .join('/');
  const rx = new RegExp(`^${re}/?$`);
  const specificity = (method === 'ANY' ? 0 : 1000) + literal * 10 - (greedy ? 5 : 0);
  return {
    key,
    target,
    specificity,
    match(reqMethod, path) {
      if (method !== 'ANY' && method !== reqMethod) return undefined;
      const mm = rx.exec(path);
      if (!mm) return undefined;
      const params: Record<string, string> = {};
      names.forEach((n, i) => (params[n] = decodeURIComponent(mm[i + 1])));
      return params;
    },
  };
}

const TEXT_TYPES = /^(text\/|application\/(json|xml|x-www-form-urlencoded|javascript)|[^;]*\+json|[^;]*\+xml)/i;

export interface HttpEventInput {
  req: IncomingMessage;
  url: URL;
  body: Buffer;
  routeKey: string;
  pathParameters: Record<string, string>;
  apiId: string;
  host: string;
  requestId: string;
}

/** An `APIGatewayProxyEventV2`, the way HTTP APIs build it. */
export function buildHttpEvent(i: HttpEventInput) {
  // Duplicate headers and query parameters are joined with commas; cookies move to `cookies`.
  const headers: Record<string, string> = {};
  let cookies: string[] | undefined;
  const raw = i.req.rawHeaders;
  for (let k = 0; k < raw.length; k += 2) {
    const name = raw[k].toLowerCase();
    const value = raw[k + 1];
    if (name === 'cookie') {
      cookies = [...(cookies ?? []), ...value.split(';').map((c) => c.trim()).filter(Boolean)];
      continue;
    }
    headers[name] = headers[name] === undefined ? value : `${headers[name]},${value}`;
  }
  const query: Record<string, string> = {};
  for (const [k, v] of i.url.searchParams) query[k] = query[k] === undefined ? v : `${query[k]},${v}`;
  const contentType = headers['content-type'] ?? '';
  const hasBody = i.body.length > 0;
  const text = !contentType || TEXT_TYPES.test(contentType);
  const now = new Date();
  return {
    version: '2.0',
    routeKey: i.routeKey,
    rawPath: i.url.pathname,
    rawQueryString: i.url.search.replace(/^\?/, ''),
    ...(cookies ? { cookies } : {}),
    headers,
    ...(Object.keys(query).length ? { queryStringParameters: query } : {}),
    ...(Object.keys(i.pathParameters).length ? { pathParameters: i.pathParameters } : {}),
    requestContext: {
      accountId: '000000000000',
      apiId: i.apiId,
      domainName: i.host,
      domainPrefix: i.host.split('.')[0],
      http: {
        method: (i.req.method ?? 'GET').toUpperCase(),
        path: i.url.pathname,
        protocol: `HTTP/${i.req.httpVersion}`,
        sourceIp: i.req.socket.remoteAddress?.replace(/^::ffff:/, '') ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: i.requestId,
      routeKey: i.routeKey,
      stage: '$default',
      time: clfTime(now),
      timeEpoch: now.getTime(),
    },
    ...(hasBody ? { body: text ? i.body.toString('utf8') : i.body.toString('base64') } : {}),
    isBase64Encoded: hasBody && !text,
  };
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/** `12/Mar/2020:19:03:58 +0000`, the format of requestContext.time. */
function clfTime(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}
