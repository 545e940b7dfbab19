import { IdempotencyStore, requestFingerprint, type IdempotencyRecord } from '../stores/idempotency';
import { ClaimTakenError, WriteConflictError, type ItemStore } from '../stores/items';
import { dataProblem, InvalidDataError } from '../stores/json-data';
import { writableTopicProblem } from '../collections';
import { hasLoneSurrogate, topicAllowed, topicMatches } from '../topics';
import { patternsClaim, userIdProblem } from './auth';
import { AuthError, SubscriberError } from './errors';
import { messageFrame, messageWorstCaseBytes, worstCaseEventBytes } from './frames';
import { MAX_IDEMPOTENCY_KEY_LENGTH } from './limits';

/**
 * POST /publish (HTTP API, payload 2.0).
 *
 *   {"topic","data"[,"ts"][,"id"]}
 *                            → items + history written in one transaction (seq + 1); 202 {"topic","seq"}.
 *                              Fan-out delivers it from the items stream. With an idempotency key
 *                              (`"id"` or the `Idempotency-Key` header) a retry within the window
 *                              answers the same 202 {"topic","seq"} and writes nothing.
 *   {"userId","data"}        → sent now to every live connection of the user; 200 {"userId","connections","reached"}.
 *   {"connectionId","data"}  → sent now to that one connection (a reply to an application action);
 *                              200 {"connectionId","reached"}; a gone connection is reached:false and pruned.
 *
 * Data whose framed event could exceed the WebSocket message limit (128 KB in API Gateway) is
 * refused with 413 here: accepted data must be deliverable. In AWS the route is protected by
 * the HTTP API's authoriser; when it is a JWT authoriser, its claims arrive in
 * `requestContext.authorizer.jwt.claims`: the publish claim must allow the topic, and send-to-
 * user needs the separate send-to-user claim to allow the user id, a reply to a connection the
 * send-to-connection claim (`*` or exact ids). Without claims (IAM
 * authoriser, local stack) the caller is trusted.
 */

/**
 * Default name of the claim listing the user ids a token may send to (exact ids, `prefix*`, `*`).
 * A separate claim rather than `user:<id>` entries in the publish claim: topic patterns and user
 * ids would share one namespace, so a topic grant such as `u*` or `*` (or a topic that happens to
 * be called `user:bob`) would silently also allow messaging users.
 */
export const DEFAULT_SEND_TO_USER_CLAIM = 'sendToUser';

/**
 * Default name of the claim allowing replies to connections: the application backend's token
 * holds `"sendToConnection": ["*"]`, so a publisher that may only write topics cannot message
 * arbitrary sockets.
 */
export const DEFAULT_SEND_TO_CONNECTION_CLAIM = 'sendToConnection';

export type PublishRequest =
  | { readonly kind: 'topic'; readonly topic: string; readonly data: unknown; readonly ts?: number; readonly id?: string }
  | { readonly kind: 'user'; readonly userId: string; readonly data: unknown }
  | { readonly kind: 'connection'; readonly connectionId: string; readonly data: unknown };

/** API Gateway connection ids are short base64 strings (`L0SM9cOFvHcCIhw=`); the emulator's are alike. */
const CONNECTION_ID = /^[A-Za-z0-9+/=_-]{1,128}$/;

export interface HttpResult {
  readonly status: number;
  readonly body: Record<string, unknown>;
  /** True when an idempotency key matched an earlier publish: nothing was written this time. */
  readonly replayed?: boolean;
}

/** Accepted `ts` range: a source timestamp in epoch ms between 2000-01-01 and 10 minutes ahead of now. */
const TS_MIN = Date.UTC(2000, 0, 1);
const TS_FUTURE_SLACK_MS = 10 * 60_000;

/**
 * The idempotency key from the `"id"` field and/or the `Idempotency-Key` header (both allowed
 * when equal), validated; undefined when neither is given.
 */
export function idempotencyKeyOf(bodyId: unknown, header: string | undefined): string | undefined {
  if (bodyId !== undefined && header !== undefined && bodyId !== header) {
    throw new SubscriberError('invalid_idempotency_key', 'the Idempotency-Key header and "id" differ; give one, or the same value in both');
  }
  const id = bodyId ?? header;
  if (id === undefined) return undefined;
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_IDEMPOTENCY_KEY_LENGTH || /[\u0000-\u001f\u007f-\u009f]/.test(id) || hasLoneSurrogate(id)) {
    throw new SubscriberError(
      'invalid_idempotency_key',
      `the idempotency key ("id" or Idempotency-Key) must be a string of 1-${MAX_IDEMPOTENCY_KEY_LENGTH} characters without control characters`,
    );
  }
  return id;
}

export function parsePublishBody(
  body: string | undefined | null,
  isBase64Encoded: boolean,
  now: number,
  opts: { readonly idempotencyKey?: string } = {},
): PublishRequest {
  const text = isBase64Encoded && body ? Buffer.from(body, 'base64').toString('utf8') : (body ?? '');
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new SubscriberError('invalid_json', 'the body is not valid JSON');
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw new SubscriberError('invalid_message', 'the body must be a JSON object with "topic" or "userId", and "data"');
  }
  const o = v as Record<string, unknown>;
  if (!('data' in o) || o.data === undefined) throw new SubscriberError('missing_data', '"data" is required (null is allowed)');
  const problem = dataProblem(o.data);
  if (problem) throw new SubscriberError('invalid_data', `"data" cannot be stored as sent: ${problem}`);
  const id = idempotencyKeyOf(o.id, opts.idempotencyKey);
  const targets = [o.topic, o.userId, o.connectionId].filter((t) => t !== undefined).length;
  if (targets !== 1) throw new SubscriberError('invalid_target', 'give exactly one of "topic", "userId" or "connectionId"');
  const hasUser = o.userId !== undefined;
  if (o.connectionId !== undefined) {
    if (typeof o.connectionId !== 'string' || !CONNECTION_ID.test(o.connectionId)) {
      throw new SubscriberError('invalid_target', '"connectionId" must be a connection id (1-128 characters of A-Z a-z 0-9 + / = _ -)');
    }
    if (id !== undefined) throw new SubscriberError('invalid_idempotency_key', 'idempotency keys apply to topic publishes; a reply to a connection cannot be deduplicated');
    return { kind: 'connection', connectionId: o.connectionId, data: o.data };
  }
  if (hasUser) {
    const p = userIdProblem(o.userId);
    if (p) throw new SubscriberError('invalid_target', `"userId" ${p}`);
    // A send-to-user is delivered at once and stored nowhere: there is no first answer to repeat.
    if (id !== undefined) throw new SubscriberError('invalid_idempotency_key', 'idempotency keys apply to topic publishes; a send-to-user cannot be deduplicated');
    return { kind: 'user', userId: o.userId as string, data: o.data };
  }
  const p = writableTopicProblem(o.topic);
  if (p) throw new SubscriberError('invalid_topic', p);
  if (o.ts !== undefined) {
    if (typeof o.ts !== 'number' || !Number.isSafeInteger(o.ts) || o.ts < TS_MIN || o.ts > now + TS_FUTURE_SLACK_MS) {
      throw new SubscriberError('invalid_ts', `"ts" must be the source time in epoch milliseconds, at most ${TS_FUTURE_SLACK_MS / 60_000} minutes ahead of the server clock`);
    }
  }
  return {
    kind: 'topic',
    topic: o.topic as string,
    data: o.data,
    ...(o.ts !== undefined ? { ts: o.ts as number } : {}),
    ...(id !== undefined ? { id } : {}),
  };
}

/**
 * Claims from a JWT authoriser, or undefined when the route has none (IAM, local). A topic
 * publish is checked against `publishClaim` (topic patterns), a send-to-user against
 * `sendToUserClaim` (user-id patterns) only.
 */
export function authorize(
  req: PublishRequest,
  claims: Record<string, unknown> | undefined,
  publishClaim: string,
  sendToUserClaim: string = DEFAULT_SEND_TO_USER_CLAIM,
  sendToConnectionClaim: string = DEFAULT_SEND_TO_CONNECTION_CLAIM,
): void {
  if (!claims) return;
  if (req.kind === 'connection') {
    // Exact ids or `*`: connection ids are random, so a prefix pattern would grant nothing useful.
    const allowed = patternsClaim(claims[sendToConnectionClaim]);
    if (!allowed.includes('*') && !allowed.includes(req.connectionId)) {
      throw new AuthError('forbidden', `the token's "${sendToConnectionClaim}" claim does not allow replying to connection "${req.connectionId}"`);
    }
    return;
  }
  if (req.kind === 'topic') {
    if (!topicAllowed(patternsClaim(claims[publishClaim]), req.topic)) {
      throw new AuthError('forbidden', `the token's "${publishClaim}" claim does not allow topic "${req.topic}"`);
    }
    return;
  }
  if (!patternsClaim(claims[sendToUserClaim]).some((p) => topicMatches(p, req.userId))) {
    throw new AuthError('forbidden', `the token's "${sendToUserClaim}" claim does not allow sending to user "${req.userId}"`);
  }
}

export function assertDeliverable(req: PublishRequest, maxMessageBytes: number): void {
  const bytes = req.kind === 'topic' ? worstCaseEventBytes(req.topic, req.data) : messageWorstCaseBytes(req.data);
  if (bytes > maxMessageBytes) {
    throw new SubscriberError(
      'payload_too_large',
      `the framed message would be ${bytes} bytes; WebSocket messages are limited to ${maxMessageBytes} bytes`,
      413,
    );
  }
}

/**
 * Writes a topic publish. With an `id`, at most once per (scope, topic, id) within the
 * idempotency window: a repeat answers with the first seq and writes nothing (stores/idempotency.ts).
 * `scope` is the publisher's identity (see functions/publish.ts); publishes from the socket use
 * their user's.
 */
export async function publishToTopic(
  req: Extract<PublishRequest, { kind: 'topic' }>,
  items: ItemStore,
  idempotency: { readonly store: IdempotencyStore; readonly scope: string },
): Promise<HttpResult> {
  try {
    if (req.id === undefined) {
      const rec = await items.write(req.topic, req.data, req.ts !== undefined ? { ts: req.ts } : {});
      return { status: 202, body: { topic: rec.topic, seq: rec.seq } };
    }
    const { store, scope } = idempotency;
    const key = IdempotencyStore.key(scope, req.topic, req.id);
    // `ts` is part of the request only when the publisher gave it; otherwise the server's clock
    // differs between a request and its retry.
    const fingerprint = requestFingerprint([req.data, req.ts ?? null]);
    const prior = await store.get(key);
    if (prior) return repeatOf(prior, fingerprint, store.windowSeconds);
    try {
      const rec = await items.write(req.topic, req.data, { ...(req.ts !== undefined ? { ts: req.ts } : {}), claim: store.claim(key, req.topic, fingerprint) });
      return { status: 202, body: { topic: rec.topic, seq: rec.seq } };
    } catch (err) {
      if (!(err instanceof ClaimTakenError)) throw err;
      // A concurrent copy of this request won the transaction; its row is there now.
      const winner = await store.get(key);
      if (!winner) throw new WriteConflictError(req.topic, 1);
      return repeatOf(winner, fingerprint, store.windowSeconds);
    }
  } catch (err) {
    if (err instanceof WriteConflictError) {
      throw new SubscriberError('write_conflict', 'too many concurrent writers on this topic; retry', 503);
    }
    if (err instanceof InvalidDataError) throw new SubscriberError('invalid_data', `"data" cannot be stored as sent: ${err.message}`);
    // DynamoDB refuses some JSON it cannot store (numbers beyond its 38-digit range, for instance).
    if ((err as { name?: string }).name === 'ValidationException') {
      throw new SubscriberError('invalid_data', `"data" cannot be stored: ${(err as Error).message}`);
    }
    throw err;
  }
}

function repeatOf(prior: IdempotencyRecord, fingerprint: string, windowSeconds: number): HttpResult {
  if (prior.fingerprint !== fingerprint) {
    throw new SubscriberError(
      'idempotency_key_reused',
      `this idempotency key was used for a different publish to "${prior.topic}" within the last ${windowSeconds / 3600} h; use a new key for new data`,
      422,
    );
  }
  return { status: 202, body: { topic: prior.topic, seq: prior.seq }, replayed: true };
}

export { messageFrame };
