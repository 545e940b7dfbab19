import { InputError } from '../errors';
import { MAX_TOPIC_LENGTH, topicProblem } from '../topics';
import { defaultTopic, type ConnectionParams } from './socket-id';

/**
 * The control API's request headers (seed 000): `internalID`, `interWorkingInterface`,
 * `platformID`, and on POST the credentials `asapa_email` / `asapa_pass`, plus an optional
 * `topic`. HTTP header names are case-insensitive (RFC 9110 §5.1) and API Gateway's payload
 * 2.0 lower-cases them anyway, so they are matched without regard to case.
 */

export const HEADER = {
  internalID: 'internalID',
  interWorkingInterface: 'interWorkingInterface',
  platformID: 'platformID',
  email: 'asapa_email',
  pass: 'asapa_pass',
  topic: 'topic',
  redundancy: 'redundancy',
  dedupePath: 'dedupe-path',
} as const;

/** Upper bounds per header value (bytes, UTF-8). Anything longer is refused with 400. */
export const LIMITS = {
  internalID: 256,
  platformID: 256,
  // Browsers and CDNs commonly cap URLs around 2 KB; an upstream base URL has no reason to be longer.
  interWorkingInterface: 2048,
  // RFC 5321: 64-octet local part + @ + 255-octet domain.
  email: 320,
  pass: 1024,
} as const;

export interface Credentials {
  readonly email: string;
  readonly pass: string;
}

export type HeaderMap = Readonly<Record<string, string | undefined>> | null | undefined;

/** Case-insensitive header lookup; a blank value counts as absent. */
export function headerValue(headers: HeaderMap, name: string): string | undefined {
  if (!headers) return undefined;
  const want = name.toLowerCase();
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() === want && v !== undefined) {
      const t = v.trim();
      return t === '' ? undefined : t;
    }
  }
  return undefined;
}

function required(headers: HeaderMap, name: string, limit: number): string {
  const v = headerValue(headers, name);
  if (v === undefined) throw new InputError('missing_header', `header ${name} is required`);
  checkSize(name, v, limit);
  return v;
}

function checkSize(name: string, v: string, limit: number): void {
  const n = Buffer.byteLength(v, 'utf8');
  if (n > limit) throw new InputError('header_too_long', `header ${name} is ${n} bytes; the limit is ${limit}`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(v)) throw new InputError('invalid_header', `header ${name} contains control characters`);
}

/** The three connection parameters, each required. Missing headers are named in order. */
export function parseConnectionParams(headers: HeaderMap): ConnectionParams {
  const missing = [HEADER.internalID, HEADER.interWorkingInterface, HEADER.platformID].filter(
    (h) => headerValue(headers, h) === undefined,
  );
  if (missing.length) {
    throw new InputError('missing_header', `header${missing.length > 1 ? 's' : ''} ${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} required`);
  }
  return {
    internalID: required(headers, HEADER.internalID, LIMITS.internalID),
    interWorkingInterface: required(headers, HEADER.interWorkingInterface, LIMITS.interWorkingInterface),
    platformID: required(headers, HEADER.platformID, LIMITS.platformID),
  };
}

export function parseCredentials(headers: HeaderMap): Credentials {
  const missing = [HEADER.email, HEADER.pass].filter((h) => headerValue(headers, h) === undefined);
  if (missing.length) {
    throw new InputError('missing_header', `header${missing.length > 1 ? 's' : ''} ${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} required`);
  }
  return { email: required(headers, HEADER.email, LIMITS.email), pass: required(headers, HEADER.pass, LIMITS.pass) };
}

/** The optional `topic` header, validated like every topic (lib/topics.ts). */
export function parseTopic(headers: HeaderMap): string | undefined {
  const t = headerValue(headers, HEADER.topic);
  if (t === undefined) return undefined;
  const p = topicProblem(t);
  if (p) throw new InputError(/limit/.test(p) ? 'header_too_long' : 'invalid_topic', `header topic: ${p}`);
  return t;
}

/**
 * The topic the socket writes to: the `topic` header, or `platform:{platformID}:{internalID}`,
 * which must pass the same rules as a subscribe (lib/topics.ts): otherwise the upstream would be
 * opened and every message it writes refused (or unreachable by any subscriber). The error names
 * the header to change.
 */
export function socketTopic(headers: HeaderMap, params: ConnectionParams): string {
  const explicit = parseTopic(headers);
  if (explicit !== undefined) return explicit;
  for (const h of [HEADER.platformID, HEADER.internalID] as const) {
    const p = topicProblem(params[h]);
    // Length is judged on the whole topic below; here only what one header alone gets wrong.
    if (p && !/limit/.test(p)) throw new InputError('invalid_header', `header ${h}: ${p.replace(/^topic/, 'the socket\'s topic')}`);
  }
  const topic = defaultTopic(params);
  const p = topicProblem(topic);
  if (p) {
    throw new InputError(
      'header_too_long',
      `headers ${HEADER.platformID} and ${HEADER.internalID} make the socket's topic ("platform:{platformID}:{internalID}") ${topic.length} characters long; the limit is ${MAX_TOPIC_LENGTH} (shorten them or give a ${HEADER.topic} header)`,
    );
  }
  return topic;
}

/** `redundancy`: 1 (the default: one agent) or 2 (two agents keep the upstream open). */
export function parseRedundancy(headers: HeaderMap): 1 | 2 {
  const v = headerValue(headers, HEADER.redundancy);
  if (v === undefined) return 1;
  if (v.trim() === '1' || v.trim() === '2') return Number(v.trim()) as 1 | 2;
  throw new InputError('invalid_header', `header ${HEADER.redundancy} must be 1 or 2 (got ${JSON.stringify(v.slice(0, 20))})`);
}

/** `$` then 1–8 `.name` steps, each a JSON member name of letters, digits, `_` or `-`. */
const DEDUPE_PATH = /^\$(\.[A-Za-z0-9_-]{1,64}){1,8}$/;

/**
 * `dedupe-path`: where a redundant socket's messages carry the platform's message id (e.g.
 * `$.id`, `$.meta.messageId`), so the two copies are recognised by it; without it, by content.
 * Only with `redundancy: 2`: with one agent there is nothing to deduplicate.
 */
export function parseDedupePath(headers: HeaderMap, redundancy: 1 | 2): string | undefined {
  const v = headerValue(headers, HEADER.dedupePath);
  if (v === undefined) return undefined;
  if (redundancy !== 2) throw new InputError('invalid_header', `header ${HEADER.dedupePath} only applies with ${HEADER.redundancy}: 2`);
  if (!DEDUPE_PATH.test(v)) {
    throw new InputError('invalid_header', `header ${HEADER.dedupePath} must be a JSON path of member names like $.id or $.meta.messageId (1 to 8 steps of letters, digits, _ or -)`);
  }
  return v;
}

/** The value at a `dedupe-path` in a decoded message, as a string key; undefined when absent or not a string/number. */
export function valueAtPath(data: unknown, path: string): string | undefined {
  let v: unknown = data;
  for (const step of path.slice(2).split('.')) {
    if (v === null || typeof v !== 'object' || Array.isArray(v) || !Object.prototype.hasOwnProperty.call(v, step)) return undefined;
    v = (v as Record<string, unknown>)[step];
  }
  return typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v)) ? String(v) : undefined;
}
