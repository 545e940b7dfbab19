import { DeleteCommand, GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { INDEX } from '../schema';
import { isConditionFailed, isLive, queryAll, queryPages } from './dynamo';

/**
 * The subscriptions table: (topic, connectionId) rows, the fan-out index.
 *
 * Fan-out reads a topic's rows page by page with ConsistentRead: the gap-free subscribe writes
 * its row *before* it reads the item, and only a strongly consistent query is guaranteed to
 * see that row for every later write of the topic. Rows past `expiresAt` are skipped (TTL
 * deletes them up to ~48 h late).
 */

export interface SubscriptionRow {
  readonly topic: string;
  readonly connectionId: string;
  readonly userId?: string;
  readonly expiresAt: number;
  /** Epoch ms the subscribe request reached API Gateway; absent on rows written at $connect. */
  readonly subscribedAt?: number;
}

/** A topic's subscriber as presence sees it. */
export interface MemberRow {
  readonly connectionId: string;
  readonly userId: string;
  readonly subscribedAt?: number;
}

export interface SubscriptionStoreOptions {
  readonly table: string;
  readonly clock: () => number;
  /** Rows per Query page; DynamoDB also stops a page at 1 MB. */
  readonly pageSize?: number;
}

export class SubscriptionStore {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly opts: SubscriptionStoreOptions,
  ) {}

  get table(): string {
    return this.opts.table;
  }

  /**
   * Writes the row. With `subscribedAt`, a row of a newer subscribe is kept (false is returned):
   * the connection is subscribed either way.
   */
  async put(row: SubscriptionRow): Promise<boolean> {
    if (row.subscribedAt === undefined) {
      await this.doc.send(new PutCommand({ TableName: this.opts.table, Item: { ...row } }));
      return true;
    }
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.opts.table,
          Item: { ...row },
          ConditionExpression: 'attribute_not_exists(#at) OR #at <= :at',
          ExpressionAttributeNames: { '#at': 'subscribedAt' },
          ExpressionAttributeValues: { ':at': row.subscribedAt },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailed(err)) return false;
      throw err;
    }
  }

  /**
   * Deletes the row. With `before` (the unsubscribe's request time), only a row subscribed
   * strictly earlier goes; a row of a subscribe that arrived at or after it stays and false is
   * returned. Strictly: within the same millisecond keeping a subscription (stray events the
   * client ignores) is the safe side of losing one.
   */
  async delete(topic: string, connectionId: string, before?: number): Promise<boolean> {
    try {
      await this.doc.send(
        new DeleteCommand({
          TableName: this.opts.table,
          Key: { topic, connectionId },
          ...(before === undefined
            ? {}
            : {
                ConditionExpression: 'attribute_not_exists(#at) OR #at < :at',
                ExpressionAttributeNames: { '#at': 'subscribedAt' },
                ExpressionAttributeValues: { ':at': before },
              }),
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailed(err)) return false;
      throw err;
    }
  }

  /** Whether a live row (topic, connectionId) exists, read with ConsistentRead (a write that completed before is seen). */
  async exists(topic: string, connectionId: string): Promise<boolean> {
    const r = await this.doc.send(
      new GetCommand({
        TableName: this.opts.table,
        Key: { topic, connectionId },
        ProjectionExpression: '#e',
        ExpressionAttributeNames: { '#e': 'expiresAt' },
        ConsistentRead: true,
      }),
    );
    return r.Item !== undefined && isLive(r.Item, this.opts.clock());
  }

  /**
   * The row's `subscribedAt` (ConsistentRead): a replay compares it with its own request time to
   * learn that a newer subscribe of the same connection and topic took over. `null`: no live row
   * (unsubscribed or disconnected); `undefined`: a row without it (written at $connect).
   */
  async subscribedAt(topic: string, connectionId: string): Promise<number | null | undefined> {
    const r = await this.doc.send(
      new GetCommand({
        TableName: this.opts.table,
        Key: { topic, connectionId },
        ProjectionExpression: '#at, #e',
        ExpressionAttributeNames: { '#at': 'subscribedAt', '#e': 'expiresAt' },
        ConsistentRead: true,
      }),
    );
    if (r.Item === undefined || Number(r.Item.expiresAt ?? 0) <= Math.floor(this.opts.clock() / 1000)) return null;
    return r.Item.subscribedAt === undefined ? undefined : Number(r.Item.subscribedAt);
  }

  /**
   * Live connection ids subscribed to `topic`, one page at a time. With `range` (a partition of a
   * large topic, fanout/partitions.ts), only ids with `from` ≤ id < `to`, read with a key
   * condition so a partition worker reads its own share only. A key condition takes one
   * comparison: `BETWEEN` is inclusive, so an id equal to `to` (the next range's) is dropped here.
   */
  async *pages(topic: string, range?: { readonly from?: string; readonly to?: string }): AsyncGenerator<string[]> {
    const { from, to } = range ?? {};
    const sortKey =
      from !== undefined && to !== undefined ? ' AND #c BETWEEN :from AND :to' : from !== undefined ? ' AND #c >= :from' : to !== undefined ? ' AND #c < :to' : '';
    const query = {
      TableName: this.opts.table,
      KeyConditionExpression: '#t = :t' + sortKey,
      ExpressionAttributeNames: { '#t': 'topic', '#c': 'connectionId', '#e': 'expiresAt' },
      ExpressionAttributeValues: { ':t': topic, ...(from !== undefined ? { ':from': from } : {}), ...(to !== undefined ? { ':to': to } : {}) },
      ProjectionExpression: '#c, #e',
      ConsistentRead: true,
      Limit: this.opts.pageSize,
    };
    for await (const page of queryPages(this.doc, query)) {
      const now = this.opts.clock();
      const ids = page.filter((it) => isLive(it, now) && it.connectionId !== to).map((it) => String(it.connectionId));
      if (ids.length) yield ids;
    }
  }

  /**
   * Presence: the topic's live rows with their user, read with ConsistentRead (a subscribe that
   * completed is seen). With `limit`, reading stops once more than `limit` live rows are found
   * and `more` is true: join/leave only need to know "at most N, and which".
   */
  async members(topic: string, limit?: number): Promise<{ rows: MemberRow[]; more: boolean }> {
    const rows: MemberRow[] = [];
    const pages = queryPages(this.doc, {
      TableName: this.opts.table,
      KeyConditionExpression: '#t = :t',
      ExpressionAttributeNames: { '#t': 'topic', '#c': 'connectionId', '#u': 'userId', '#e': 'expiresAt', '#at': 'subscribedAt' },
      ExpressionAttributeValues: { ':t': topic },
      ProjectionExpression: '#c, #u, #e, #at',
      ConsistentRead: true,
      ...(limit !== undefined ? { Limit: limit + 1 } : this.opts.pageSize ? { Limit: this.opts.pageSize } : {}),
    });
    for await (const page of pages) {
      const now = this.opts.clock();
      for (const it of page) {
        if (!isLive(it, now)) continue;
        // Rows written before subscriptions carried a userId count as their connection's own user.
        rows.push({
          connectionId: String(it.connectionId),
          userId: String(it.userId ?? it.connectionId),
          ...(it.subscribedAt !== undefined ? { subscribedAt: Number(it.subscribedAt) } : {}),
        });
      }
      if (limit !== undefined && rows.length > limit) return { rows: rows.slice(0, limit), more: true };
    }
    return { rows, more: false };
  }

  /** Topics of a connection from the `byConnection` index (eventually consistent; callers union it with the connection row). */
  async topicsOf(connectionId: string): Promise<string[]> {
    const items = await queryAll(this.doc, {
      TableName: this.opts.table,
      IndexName: INDEX.subscriptionsByConnection,
      KeyConditionExpression: '#c = :c',
      ExpressionAttributeNames: { '#c': 'connectionId' },
      ExpressionAttributeValues: { ':c': connectionId },
    });
    return items.map((it) => String(it.topic));
  }
}
