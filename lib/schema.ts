/**
 * The one definition of every table, index, TTL, stream and queue.
 *
 * Two consumers read it: the Pulumi program (`infra/`) turns it into `aws.dynamodb.Table` /
 * `aws.sqs.Queue` arguments, and the local bootstrap (`local/bootstrap.ts`) turns it into
 * CreateTable / CreateQueue calls against DynamoDB Local and the SQS emulator. Nothing else
 * may declare a key, an index or a TTL attribute, so local and cloud cannot drift.
 */

export type AttributeType = 'S' | 'N' | 'B';

export interface KeyAttribute {
  readonly name: string;
  readonly type: AttributeType;
}

export interface IndexSpec {
  readonly name: string;
  readonly hashKey: KeyAttribute;
  readonly rangeKey?: KeyAttribute;
  /** ALL, KEYS_ONLY, or INCLUDE with `nonKeyAttributes`. */
  readonly projection: 'ALL' | 'KEYS_ONLY' | 'INCLUDE';
  readonly nonKeyAttributes?: readonly string[];
}

export interface TableSpec {
  /** Logical name: the key of `TABLES` and the suffix of the physical name. */
  readonly logicalName: TableName;
  readonly hashKey: KeyAttribute;
  readonly rangeKey?: KeyAttribute;
  readonly indexes: readonly IndexSpec[];
  /** TTL attribute (epoch seconds). A backstop only: readers ignore expired rows themselves. */
  readonly ttlAttribute?: string;
  readonly stream?: 'NEW_IMAGE' | 'NEW_AND_OLD_IMAGES' | 'KEYS_ONLY' | 'OLD_IMAGE';
  readonly description: string;
}

export type TableName = 'connections' | 'subscriptions' | 'items' | 'history' | 'upstreams' | 'idempotency' | 'users';

/** The TTL attribute every table uses (epoch seconds, as DynamoDB TTL requires). */
export const TTL_ATTRIBUTE = 'expiresAt';

/** The items-table attribute naming a member's collection (lib/collections.ts): the `byCollection` index's key. */
export const COLLECTION_ATTRIBUTE = 'collection';

export const INDEX = {
  connectionsByUser: 'byUser',
  subscriptionsByConnection: 'byConnection',
  upstreamsByDesiredLease: 'byDesiredLease',
  itemsByCollection: 'byCollection',
} as const;

export const TABLES: Readonly<Record<TableName, TableSpec>> = {
  connections: {
    logicalName: 'connections',
    description: 'One row per live WebSocket connection: userId, allowed topics, topics[], connectedAt, lastSeen.',
    hashKey: { name: 'connectionId', type: 'S' },
    indexes: [
      // Send-to-user (seed 001): every live connection of one user.
      { name: INDEX.connectionsByUser, hashKey: { name: 'userId', type: 'S' }, projection: 'KEYS_ONLY' },
    ],
    ttlAttribute: TTL_ATTRIBUTE,
  },
  subscriptions: {
    logicalName: 'subscriptions',
    description: 'Fan-out index: which connections listen to a topic.',
    hashKey: { name: 'topic', type: 'S' },
    rangeKey: { name: 'connectionId', type: 'S' },
    indexes: [
      // Cleaning up a stale connection found at fan-out needs all of its topics, not just the
      // one being delivered; the connection row may already be gone.
      {
        name: INDEX.subscriptionsByConnection,
        hashKey: { name: 'connectionId', type: 'S' },
        rangeKey: { name: 'topic', type: 'S' },
        projection: 'KEYS_ONLY',
      },
    ],
    ttlAttribute: TTL_ATTRIBUTE,
  },
  items: {
    logicalName: 'items',
    description: 'Latest state of each real-time item: data, per-topic seq, source timestamp. Its stream drives fan-out.',
    hashKey: { name: 'topic', type: 'S' },
    indexes: [
      // Collections (lib/collections.ts): a `battery:*` subscribe lists its members here, then
      // reads their state with a consistent BatchGetItem. Sparse (only topics with a `:` carry
      // `collection`); KEYS_ONLY, so a write that changes neither key adds no index write.
      {
        name: INDEX.itemsByCollection,
        hashKey: { name: COLLECTION_ATTRIBUTE, type: 'S' },
        rangeKey: { name: 'topic', type: 'S' },
        projection: 'KEYS_ONLY',
      },
    ],
    stream: 'NEW_IMAGE',
  },
  history: {
    logicalName: 'history',
    description: 'Recent changes per topic, for gap-free resume with sinceSeq.',
    hashKey: { name: 'topic', type: 'S' },
    rangeKey: { name: 'seq', type: 'N' },
    indexes: [],
    ttlAttribute: TTL_ATTRIBUTE,
  },
  idempotency: {
    logicalName: 'idempotency',
    description:
      'Idempotency keys of topic writes: key → the seq the first write got; written in the same transaction as the item (stores/idempotency.ts).',
    hashKey: { name: 'key', type: 'S' },
    indexes: [],
    ttlAttribute: TTL_ATTRIBUTE,
  },
  // ---- presence (issue 14) ----
  users: {
    logicalName: 'users',
    description:
      'Presence: one row per user ever connected, {userId, lastSeen}; written when a connection of the user goes away ($disconnect or a 410 at delivery), read by GET /presence?userId=.',
    hashKey: { name: 'userId', type: 'S' },
    indexes: [],
  },
  // ---- end presence ----
  upstreams: {
    logicalName: 'upstreams',
    description: 'Upstream sockets: desired state, status, lease owner, health and counters.',
    hashKey: { name: 'socketId', type: 'S' },
    indexes: [
      // The reconcile loop asks "desired = open and lease expired" without a Scan.
      {
        name: INDEX.upstreamsByDesiredLease,
        hashKey: { name: 'desired', type: 'S' },
        rangeKey: { name: 'leaseExpiresAt', type: 'N' },
        projection: 'KEYS_ONLY',
      },
    ],
  },
};

export const TABLE_NAMES = Object.keys(TABLES) as TableName[];

/** Every attribute that appears in a key of the table or one of its indexes. */
export function keyAttributes(spec: TableSpec): KeyAttribute[] {
  const all = [spec.hashKey, spec.rangeKey, ...spec.indexes.flatMap((i) => [i.hashKey, i.rangeKey])];
  const seen = new Map<string, KeyAttribute>();
  for (const a of all) {
    if (!a) continue;
    const prior = seen.get(a.name);
    if (prior && prior.type !== a.type) {
      throw new Error(`schema: attribute ${spec.logicalName}.${a.name} is declared as both ${prior.type} and ${a.type}`);
    }
    seen.set(a.name, a);
  }
  return [...seen.values()];
}

/** Physical table name for a stack prefix, e.g. `rtg-local-connections`. */
export function physicalTableName(prefix: string, table: TableName): string {
  return `${prefix}-${table}`;
}

// ---------------------------------------------------------------------------------------------
// Queues

export interface QueueSpec {
  readonly logicalName: QueueName;
  readonly description: string;
  /** Seconds a received message stays invisible; longer than the slowest handling of one command. */
  readonly visibilityTimeoutSeconds: number;
  readonly messageRetentionSeconds: number;
  /** Long polling by default on the queue itself, so every consumer gets it. */
  readonly receiveWaitTimeSeconds: number;
  /** Redrive to this queue after `maxReceiveCount` failed receives. */
  readonly deadLetter?: { readonly queue: QueueName; readonly maxReceiveCount: number };
  /**
   * A FIFO queue (its physical name ends in `.fifo`): messages of one MessageGroupId are handed
   * out in order, one batch at a time. Senders give a MessageDeduplicationId (no content-based
   * deduplication). A FIFO queue's dead-letter queue must be FIFO too.
   */
  readonly fifo?: boolean;
}

export type QueueName = 'commands' | 'commandsDlq' | 'fanoutDlq' | 'inbound' | 'inboundDlq' | 'fanoutPartitions' | 'fanoutPartitionsDlq';

export const QUEUES: Readonly<Record<QueueName, QueueSpec>> = {
  commandsDlq: {
    logicalName: 'commandsDlq',
    description: 'Upstream commands that failed maxReceiveCount times.',
    visibilityTimeoutSeconds: 30,
    messageRetentionSeconds: 14 * 24 * 3600,
    receiveWaitTimeSeconds: 0,
  },
  commands: {
    logicalName: 'commands',
    description: 'open/close hints for the upstream agent; the upstreams table holds the truth.',
    visibilityTimeoutSeconds: 60,
    messageRetentionSeconds: 4 * 24 * 3600,
    receiveWaitTimeSeconds: 20,
    deadLetter: { queue: 'commandsDlq', maxReceiveCount: 5 },
  },
  fanoutDlq: {
    logicalName: 'fanoutDlq',
    description: 'On-failure destination of the items-stream mapping: batches fan-out gave up on.',
    visibilityTimeoutSeconds: 30,
    messageRetentionSeconds: 14 * 24 * 3600,
    receiveWaitTimeSeconds: 0,
  },
  inboundDlq: {
    logicalName: 'inboundDlq',
    description: 'Application actions the application failed to consume maxReceiveCount times.',
    visibilityTimeoutSeconds: 30,
    messageRetentionSeconds: 14 * 24 * 3600,
    receiveWaitTimeSeconds: 0,
  },
  inbound: {
    logicalName: 'inbound',
    description: 'Application actions from clients ({action,data,id,connectionId,userId,claims,receivedAt}), consumed by the application.',
    // The application's consumer (a Lambda SQS trigger needs at least its own timeout; 6x is AWS's advice).
    visibilityTimeoutSeconds: 180,
    // Nobody waits for an answer to an action older than a day; the DLQ keeps failures 14 days.
    messageRetentionSeconds: 24 * 3600,
    receiveWaitTimeSeconds: 20,
    deadLetter: { queue: 'inboundDlq', maxReceiveCount: 5 },
  },
  fanoutPartitionsDlq: {
    logicalName: 'fanoutPartitionsDlq',
    // Informational: the group moved on past the message, so its subscribers saw a gap and
    // resumed from history; the message names the topic, seq and partition.
    description: 'Partition messages of large topics the partition worker failed maxReceiveCount times.',
    visibilityTimeoutSeconds: 30,
    messageRetentionSeconds: 14 * 24 * 3600,
    receiveWaitTimeSeconds: 0,
    fifo: true,
  },
  fanoutPartitions: {
    logicalName: 'fanoutPartitions',
    description:
      'Large topics (fanout/partition-handoff.ts): one message per record and partition, MessageGroupId topic#partition, so each partition worker gets its records in order.',
    // At least the partition worker's timeout (AWS refuses the mapping otherwise; infra/config.ts
    // checks it). Also how long a failed message waits before its retry: short, since its group
    // (that partition of the topic) is held until then.
    visibilityTimeoutSeconds: 60,
    // Past the items stream's 24 h nothing can be replayed anyway; an undelivered record this old
    // is better resynced than delivered.
    messageRetentionSeconds: 24 * 3600,
    receiveWaitTimeSeconds: 20,
    deadLetter: { queue: 'fanoutPartitionsDlq', maxReceiveCount: 5 },
    fifo: true,
  },
};

/** Creation order: a dead-letter queue must exist before the queue that redrives to it. */
export const QUEUE_NAMES: QueueName[] = ['commandsDlq', 'fanoutDlq', 'inboundDlq', 'fanoutPartitionsDlq', 'commands', 'inbound', 'fanoutPartitions'];

/** `rtg-dev-commands`; a FIFO queue's name must end in `.fifo`. */
export function physicalQueueName(prefix: string, queue: QueueName): string {
  return `${prefix}-${queue}${QUEUES[queue].fifo ? '.fifo' : ''}`;
}
