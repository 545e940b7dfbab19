import { GetCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/**
 * Presence: when each user was last seen (the session sample's `lastSeen`), one row per user in
 * the `users` table. Written when a connection of the user goes away — `$disconnect` (now) or a
 * 410 found at delivery (the connection's own last ping) — because that is the moment "online"
 * can turn into "offline"; while a user is online its live connections carry a fresher value.
 * The write keeps the latest time only, so a late cleanup of an old socket cannot move it back.
 */
export class LastSeenStore {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly opts: { readonly table: string },
  ) {}

  async record(userId: string, at: number): Promise<void> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.opts.table,
          Key: { userId },
          UpdateExpression: 'SET #s = :at',
          ConditionExpression: 'attribute_not_exists(#s) OR #s < :at',
          ExpressionAttributeNames: { '#s': 'lastSeen' },
          ExpressionAttributeValues: { ':at': at },
        }),
      );
    } catch (err) {
      if ((err as { name?: string }).name !== 'ConditionalCheckFailedException') throw err;
    }
  }

  /** Epoch ms, or undefined for a user never seen leaving. Consistent: presence reads it right after a removal may have written it. */
  async get(userId: string): Promise<number | undefined> {
    const r = await this.doc.send(new GetCommand({ TableName: this.opts.table, Key: { userId }, ConsistentRead: true }));
    return r.Item?.lastSeen === undefined ? undefined : Number(r.Item.lastSeen);
  }
}
