import {
  BatchGetCommand,
  GetCommand,
  PutCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { retryUnprocessed } from '../retry';
import { isConditionFailed, isLive, queryAll } from './dynamo';
import { INDEX } from '../schema';
import { SubscriberError } from '../subscriber/errors';
import { MAX_TOPICS_PER_CONNECTION } from '../subscriber/limits';
import { takeToken, type BucketRate, type TokenBucket } from '../subscriber/rate-limit';

/**
 * The connections table: one row per live socket.
 *
 * `expiresAt` (epoch seconds) is `min(lastSeen + connectionTtlSeconds, connectedAt + 2 h)`:
 * API Gateway closes every WebSocket after 2 hours, so no row may claim to live longer; a ping
 * moves it forward up to that cap. DynamoDB TTL deletes rows up to ~48 h late, so every read
 * here treats a row whose `expiresAt` has passed as absent.
 */

export interface ConnectionRow {
  readonly connectionId: string;
  readonly userId: string;
  readonly allowedTopics: readonly string[];
  /** Topic patterns this connection may publish to from the socket (none on rows written before publishing existed). */
  readonly publishTopics?: readonly string[];
  /** The verified token's claims (jwt mode), handed to the application with each application action. */
  readonly claims?: Readonly<Record<string, unknown>>;
  /** The connection's token bucket for publishes and application actions (rate-limit.ts). */
  readonly bucket?: TokenBucket;
  readonly topics: readonly string[];
  /** Epoch ms, API Gateway's `requestContext.connectedAt`. */
  readonly connectedAt: number;
  readonly lastSeen: number;
  /** Epoch seconds (DynamoDB TTL). */
  readonly expiresAt: number;
}

export interface ConnectionStoreOptions {
  readonly table: string;
  readonly ttlSeconds: number;
  readonly maxLifetimeSeconds: number;
  readonly clock: () => number;
}

export class ConnectionStore {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly opts: ConnectionStoreOptions,
  ) {}

  /** `expiresAt` for a connection opened at `connectedAt` (ms) and last seen at `now` (ms). */
  expiresAt(connectedAt: number, now: number): number {
    const hardCap = Math.floor(connectedAt / 1000) + this.opts.maxLifetimeSeconds;
    return Math.min(Math.floor(now / 1000) + this.opts.ttlSeconds, hardCap);
  }

  /** Subscription rows live as long as the connection can: until API Gateway's hard cap. */
  subscriptionExpiresAt(connectedAt: number): number {
    return Math.floor(connectedAt / 1000) + this.opts.maxLifetimeSeconds;
  }

  async put(row: Omit<ConnectionRow, 'expiresAt' | 'lastSeen' | 'bucket'>): Promise<ConnectionRow> {
    const now = this.opts.clock();
    const full: ConnectionRow = { ...row, lastSeen: now, expiresAt: this.expiresAt(row.connectedAt, now) };
    await this.doc.send(
      new PutCommand({
        TableName: this.opts.table,
        Item: {
          ...full,
          // A string set cannot be empty in DynamoDB, and ADD/DELETE on a set are atomic.
          topics: full.topics.length ? new Set(full.topics) : undefined,
          allowedTopics: [...full.allowedTopics],
          publishTopics: full.publishTopics ? [...full.publishTopics] : undefined,
        },
      }),
    );
    return full;
  }

  async get(connectionId: string): Promise<ConnectionRow | undefined> {
    const r = await this.doc.send(new GetCommand({ TableName: this.opts.table, Key: { connectionId }, ConsistentRead: true }));
    return r.Item && this.live(r.Item) ? toRow(r.Item) : undefined;
  }

  /** Adds a topic to the row; refuses past MAX_TOPICS_PER_CONNECTION, `not_connected` when the row is gone. */
  async addTopic(connectionId: string, topic: string): Promise<void> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.opts.table,
          Key: { connectionId },
          UpdateExpression: 'ADD #topics :t',
          ConditionExpression:
            'attribute_exists(connectionId) AND #exp > :now AND (attribute_not_exists(#topics) OR contains(#topics, :topic) OR size(#topics) < :max)',
          ExpressionAttributeNames: { '#topics': 'topics', '#exp': 'expiresAt' },
          ExpressionAttributeValues: {
            ':t': new Set([topic]),
            ':topic': topic,
            ':max': MAX_TOPICS_PER_CONNECTION,
            ':now': Math.floor(this.opts.clock() / 1000),
          },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
    } catch (err) {
      if (!isConditionFailed(err)) throw err;
      // The document client does not translate the item carried by a failed condition: it comes
      // back in DynamoDB's wire format ({"expiresAt":{"N":"…"}}), so it is unmarshalled here.
      const raw = (err as { Item?: Record<string, AttributeValue> }).Item;
      const old = raw ? unmarshall(raw) : undefined;
      if (old && this.live(old)) {
        throw new SubscriberError('too_many_subscriptions', `a connection may hold at most ${MAX_TOPICS_PER_CONNECTION} topics`);
      }
      throw notConnected();
    }
  }

  /**
   * Puts `topic` back on the row without the cap check; false when the row is gone. For a topic
   * whose subscription row exists and that was already admitted under the cap: subscribe and
   * unsubscribe use it to repair a concurrent `removeTopic` (subscribe.ts, unsubscribe.ts). In
   * that race the row can end up one topic over the cap — admitted, then removed and re-added
   * while another subscribe took the freed slot — which is a bounded overshoot, not a leak.
   */
  ensureTopic(connectionId: string, topic: string): Promise<boolean> {
    return this.changeTopics(connectionId, 'ADD', topic);
  }

  async removeTopic(connectionId: string, topic: string): Promise<void> {
    if (!(await this.changeTopics(connectionId, 'DELETE', topic))) throw notConnected();
  }

  /** ADD or DELETE one topic in the row's set; false when the row is gone. */
  private async changeTopics(connectionId: string, op: 'ADD' | 'DELETE', topic: string): Promise<boolean> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.opts.table,
          Key: { connectionId },
          UpdateExpression: `${op} #topics :t`,
          // UpdateItem creates a missing item: a row deleted by $disconnect must stay deleted.
          ConditionExpression: 'attribute_exists(connectionId)',
          ExpressionAttributeNames: { '#topics': 'topics' },
          ExpressionAttributeValues: { ':t': new Set([topic]) },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailed(err)) return false;
      throw err;
    }
  }

  /**
   * Takes one token from the connection's bucket, or says how long until one is there. The bucket
   * lives on the connection row because a connection's frames are spread over any number of
   * Lambda environments; the write is conditional on the state it was computed from, so two
   * concurrent frames cannot spend the same token (the loser recomputes from the winner's state).
   */
  async takeToken(row: ConnectionRow, rate: BucketRate): Promise<{ ok: true } | { ok: false; retryAfterMs: number }> {
    let current = row;
    for (let attempt = 0; attempt < 5; attempt++) {
      const now = this.opts.clock();
      const r = takeToken(current.bucket, now, rate);
      if (!r.ok) return { ok: false, retryAfterMs: r.retryAfterMs };
      try {
        await this.doc.send(
          new UpdateCommand({
            TableName: this.opts.table,
            Key: { connectionId: row.connectionId },
            UpdateExpression: 'SET #b = :b',
            ConditionExpression: current.bucket
              ? 'attribute_exists(connectionId) AND #b.#at = :at AND #b.#tokens = :tokens'
              : 'attribute_exists(connectionId) AND attribute_not_exists(#b)',
            ExpressionAttributeNames: { '#b': 'bucket', ...(current.bucket ? { '#at': 'at', '#tokens': 'tokens' } : {}) },
            ExpressionAttributeValues: {
              ':b': r.bucket,
              ...(current.bucket ? { ':at': current.bucket.at, ':tokens': current.bucket.tokens } : {}),
            },
          }),
        );
        return { ok: true };
      } catch (err) {
        if (!isConditionFailed(err)) throw err;
        const fresh = await this.get(row.connectionId);
        if (!fresh) throw notConnected();
        current = fresh;
      }
    }
    // Five frames of this connection won the race in a row: it is sending faster than it may.
    return { ok: false, retryAfterMs: Math.ceil(1000 / rate.perSecond) };
  }

  /** Ping: refresh lastSeen and push expiresAt forward (never past the 2 h cap). */
  async touch(connectionId: string): Promise<ConnectionRow> {
    const row = await this.get(connectionId);
    if (!row) throw notConnected();
    const now = this.opts.clock();
    const expiresAt = this.expiresAt(row.connectedAt, now);
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.opts.table,
          Key: { connectionId },
          UpdateExpression: 'SET lastSeen = :now, expiresAt = :exp',
          ConditionExpression: 'attribute_exists(connectionId)',
          ExpressionAttributeValues: { ':now': now, ':exp': expiresAt },
        }),
      );
    } catch (err) {
      if (!isConditionFailed(err)) throw err;
      throw notConnected();
    }
    return { ...row, lastSeen: now, expiresAt };
  }

  /**
   * Live connection ids of one user. The `byUser` index projects keys only, so the rows are read
   * back (BatchGet, 100 keys per call) to drop those past `expiresAt`.
   */
  async liveIdsOfUser(userId: string): Promise<string[]> {
    return (await this.liveOfUser(userId)).map((c) => c.connectionId);
  }

  /** Live connections of one user with their `lastSeen` (epoch ms): send-to-user and presence. */
  async liveOfUser(userId: string): Promise<{ connectionId: string; lastSeen: number }[]> {
    const ids = (
      await queryAll(this.doc, {
        TableName: this.opts.table,
        IndexName: INDEX.connectionsByUser,
        KeyConditionExpression: 'userId = :u',
        ExpressionAttributeValues: { ':u': userId },
      })
    ).map((it) => String(it.connectionId));
    // The index is eventually consistent: the row may since belong to nobody or have expired.
    return (await this.readLive(ids))
      .filter((it) => it.userId === userId)
      .map((it) => ({ connectionId: String(it.connectionId), lastSeen: Number(it.lastSeen ?? 0) }));
  }

  /**
   * Presence: which of `ids` are live connections (row present, `expiresAt` ahead), with their
   * `lastSeen` (epoch ms). A subscription row outlives a socket dropped without `$disconnect`
   * until its own expiry (API Gateway's 2 h cap); the connection row is the one pings refresh.
   */
  async liveAmong(ids: readonly string[]): Promise<Map<string, { userId: string; lastSeen: number }>> {
    const out = new Map<string, { userId: string; lastSeen: number }>();
    for (const it of await this.readLive(ids)) out.set(String(it.connectionId), { userId: String(it.userId), lastSeen: Number(it.lastSeen ?? 0) });
    return out;
  }

  /** The live rows of `ids` (connectionId, userId, lastSeen, expiresAt): BatchGet, 100 keys per call, unprocessed keys retried. */
  private async readLive(ids: readonly string[]): Promise<Record<string, unknown>[]> {
    const live: Record<string, unknown>[] = [];
    for (let i = 0; i < ids.length; i += 100) {
      const keys = ids.slice(i, i + 100).map((connectionId) => ({ connectionId }));
      await retryUnprocessed(
        keys,
        async (pending) => {
          const r = await this.doc.send(
            new BatchGetCommand({
              RequestItems: { [this.opts.table]: { Keys: [...pending], ProjectionExpression: 'connectionId, userId, lastSeen, expiresAt' } },
            }),
          );
          for (const it of r.Responses?.[this.opts.table] ?? []) if (this.live(it)) live.push(it);
          return (r.UnprocessedKeys?.[this.opts.table]?.Keys ?? []) as { connectionId: string }[];
        },
        { attempts: 6, backoff: { baseMs: 25 } },
      );
    }
    return live;
  }

  private live(item: Record<string, unknown>): boolean {
    return isLive(item, this.opts.clock());
  }
}

function toRow(it: Record<string, unknown>): ConnectionRow {
  const topics = it.topics instanceof Set ? [...(it.topics as Set<string>)] : Array.isArray(it.topics) ? (it.topics as string[]) : [];
  return {
    connectionId: String(it.connectionId),
    userId: String(it.userId),
    allowedTopics: Array.isArray(it.allowedTopics) ? (it.allowedTopics as string[]) : [],
    ...(Array.isArray(it.publishTopics) ? { publishTopics: it.publishTopics as string[] } : {}),
    ...(it.claims && typeof it.claims === 'object' ? { claims: it.claims as Record<string, unknown> } : {}),
    ...(it.bucket && typeof it.bucket === 'object' ? { bucket: { tokens: Number((it.bucket as TokenBucket).tokens), at: Number((it.bucket as TokenBucket).at) } } : {}),
    topics,
    connectedAt: Number(it.connectedAt),
    lastSeen: Number(it.lastSeen),
    expiresAt: Number(it.expiresAt),
  };
}

function notConnected(): SubscriberError {
  return new SubscriberError('not_connected', 'the connection is not registered (closed or expired)', 410);
}
