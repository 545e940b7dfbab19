import type { INDEX, QueueName, TableName } from './schema';

type IndexName = (typeof INDEX)[keyof typeof INDEX];

/**
 * The one list of Lambda functions: which file each is built from, what triggers it and what
 * it may touch. The Pulumi program derives bundles, routes, integrations, the stream mapping
 * and each function's least-privilege policy from it; the local stack derives its emulator
 * routes, HTTP routes and stream poller from it. Adding a handler means adding it here.
 */

export type WebSocketRouteKey = '$connect' | '$disconnect' | '$default' | 'subscribe' | 'unsubscribe' | 'ping' | 'publish' | 'presence';

export type Trigger =
  | { readonly kind: 'websocket'; readonly route: WebSocketRouteKey }
  | {
      readonly kind: 'http';
      readonly routes: readonly string[];
      /** OAuth scopes a JWT authoriser demands before the function is invoked (the handler checks too). */
      readonly jwtScopes?: readonly string[];
      /** Which HTTP invoke policy (IAM auth) grants these routes; default the function's name. */
      readonly invokeGroup?: string;
    }
  | { readonly kind: 'stream'; readonly table: TableName }
  /** An SQS event source mapping (ReportBatchItemFailures); a FIFO queue hands each message group out in order. */
  | { readonly kind: 'queue'; readonly queue: QueueName };

/** DynamoDB actions a principal may be granted on a table (IAM names, without `dynamodb:`). */
export type DynamoTableAction =
  | 'GetItem'
  | 'BatchGetItem'
  | 'Query'
  | 'Scan'
  | 'PutItem'
  | 'UpdateItem'
  | 'DeleteItem'
  | 'BatchWriteItem'
  | 'ConditionCheckItem';

/**
 * Exactly what a principal does to one table: each DynamoDB action its code calls on the table,
 * `Query:INDEX` for each GSI it queries, `stream` for reading the table's stream (the fan-out's
 * event source mapping). IAM authorises a TransactWriteItems per item (PutItem, UpdateItem,
 * DeleteItem, ConditionCheckItem), so a transaction is declared by its items' actions; a
 * BatchWriteItem (even of deletes only) needs `BatchWriteItem` itself.
 */
export type TableAccess = DynamoTableAction | `Query:${IndexName}` | 'stream';

/** SQS actions (IAM names); a batch call is authorised as its single action. */
export type QueueAction = 'SendMessage' | 'ReceiveMessage' | 'DeleteMessage' | 'ChangeMessageVisibility' | 'GetQueueAttributes';

/** Secrets Manager actions on the upstream secret prefix. */
export type SecretAction = 'CreateSecret' | 'PutSecretValue' | 'GetSecretValue' | 'DescribeSecret';

/**
 * `@connections` verbs: PostToConnection is POST, GetConnection GET, DeleteConnection DELETE;
 * each is `execute-api:ManageConnections` on `{api}/{stage}/{VERB}/@connections/*`.
 */
export type ConnectionsVerb = 'POST' | 'GET' | 'DELETE';

/** What one principal (a function's role, the agent's instance role) may call. Adding a call = one entry here. */
export interface PrincipalAccess {
  readonly tables: Readonly<Partial<Record<TableName, readonly TableAccess[]>>>;
  readonly manageConnections: readonly ConnectionsVerb[];
  readonly queues: Readonly<Partial<Record<QueueName, readonly QueueAction[]>>>;
  /** Secrets Manager actions on secrets under the upstream secret prefix. */
  readonly secrets?: readonly SecretAction[];
}

export interface FunctionSpec extends PrincipalAccess {
  /** Also the file name: `functions/${name}.ts`. */
  readonly name: string;
  readonly description: string;
  readonly trigger: Trigger;
}

export const FUNCTIONS: readonly FunctionSpec[] = [
  {
    name: 'connect',
    description: 'WebSocket $connect: authenticate, record the connection, subscribe item-key query parameters.',
    trigger: { kind: 'websocket', route: '$connect' },
    tables: { connections: ['PutItem'], subscriptions: ['PutItem'] },
    manageConnections: [],
    queues: {},
  },
  {
    name: 'disconnect',
    description: 'WebSocket $disconnect: remove the connection and its subscriptions.',
    trigger: { kind: 'websocket', route: '$disconnect' },
    // removeConnections: the row's topics + the byConnection index, then one batched delete.
    // Presence: lastSeen of the user (users UpdateItem); a leave reads the topic's members (Query)
    // and posts to them (POST).
    tables: { connections: ['GetItem', 'BatchWriteItem'], subscriptions: ['Query:byConnection', 'BatchWriteItem', 'Query'], users: ['UpdateItem'] },
    manageConnections: ['POST'],
    queues: {},
  },
  {
    name: 'subscribe',
    description: 'subscribe route: authorise the topic, add the subscription, send snapshot or missed events.',
    trigger: { kind: 'websocket', route: 'subscribe' },
    tables: {
      connections: ['GetItem', 'UpdateItem'],
      // GetItem: a replay checks per page that no newer subscribe took it over (replay.ts).
      // Query: presence, a join reads the topic's members and posts to them.
      subscriptions: ['PutItem', 'GetItem', 'Query'],
      history: ['Query'],
      items: [
        'GetItem',
        // Collections (`battery:*`, stores/collections.ts): member topics from the index, their state by consistent BatchGetItem.
        'Query:byCollection',
        'BatchGetItem',
      ],
    },
    manageConnections: ['POST'],
    queues: {},
  },
  {
    name: 'unsubscribe',
    description: 'unsubscribe route: remove the subscription.',
    trigger: { kind: 'websocket', route: 'unsubscribe' },
    // GetItem: SubscriptionStore.exists tells "not subscribed" from a removed subscription.
    // removeTopic/ensureTopic are UpdateItem on the connection row.
    // Presence: a leave reads the user (connections GetItem) and the topic's members (subscriptions Query).
    tables: { connections: ['UpdateItem', 'GetItem'], subscriptions: ['GetItem', 'DeleteItem', 'Query'] },
    manageConnections: ['POST'],
    queues: {},
  },
  {
    name: 'ping',
    description: 'ping route: answer pong, refresh lastSeen and the TTL.',
    trigger: { kind: 'websocket', route: 'ping' },
    // ConnectionStore.touch reads the row (its connectedAt caps the TTL), then updates it.
    tables: { connections: ['GetItem', 'UpdateItem'] },
    manageConnections: ['POST'],
    queues: {},
  },
  {
    name: 'default',
    description: '$default route: application actions go to the inbound queue; unknown actions and malformed frames get a coded error.',
    trigger: { kind: 'websocket', route: '$default' },
    // Application actions: the connection row (identity, claims, token bucket: GetItem, then a
    // conditional UpdateItem of the bucket) and SendMessage to the inbound queue.
    tables: { connections: ['GetItem', 'UpdateItem'] },
    manageConnections: ['POST'],
    queues: { inbound: ['SendMessage'] },
  },
  {
    name: 'socket-publish',
    description: 'publish route: publish from the socket (the POST /publish transaction), rate-limited per connection.',
    trigger: { kind: 'websocket', route: 'publish' },
    // The connection row (rights, token bucket), then publishToTopic as POST /publish does it:
    // UpdateItem on items, PutItem on history, conditional PutItem on idempotency, GetItem on a repeat.
    tables: {
      connections: ['GetItem', 'UpdateItem'],
      items: ['GetItem', 'UpdateItem'],
      history: ['PutItem'],
      idempotency: ['GetItem', 'PutItem'],
    },
    manageConnections: ['POST'],
    queues: {},
  },
  {
    name: 'publish',
    description: 'POST /publish: write a topic update (seq + history) or send to every connection of a user.',
    trigger: { kind: 'http', routes: ['POST /publish'] },
    // ItemStore.put: one transaction (UpdateItem on items, PutItem on history, and with an
    // idempotency key a conditional PutItem on idempotency, read back with GetItem on a repeat).
    // send-to-user: the byUser index, then removeConnections for the gone ones.
    tables: {
      items: ['GetItem', 'UpdateItem'],
      history: ['PutItem'],
      idempotency: ['GetItem', 'PutItem'],
      connections: ['Query:byUser', 'BatchGetItem', 'GetItem', 'BatchWriteItem'],
      subscriptions: ['Query:byConnection', 'BatchWriteItem', 'Query'],
      // Presence after pruning a gone connection: lastSeen, and a leave (subscriptions Query above).
      users: ['UpdateItem'],
    },
    manageConnections: ['POST'],
    queues: {},
  },
  {
    name: 'fanout',
    description: 'items stream: deliver each change to the topic subscribers, in order, and prune stale connections.',
    trigger: { kind: 'stream', table: 'items' },
    // connections GetItem: stale-connection cleanup reads the row (its topics) before deleting it.
    // subscriptions Query: a record's topic, and its collection's subscribers (`battery:*`): no new grant.
    tables: {
      items: ['stream'],
      subscriptions: ['Query', 'Query:byConnection', 'BatchWriteItem'],
      connections: ['GetItem', 'BatchWriteItem'],
      // Presence after pruning a 410: the user's lastSeen (a leave uses the Query and POST above).
      users: ['UpdateItem'],
    },
    // DELETE: a subscriber whose deliveries keep failing is closed to force its resync
    // (fanout-outcomes.ts).
    manageConnections: ['POST', 'DELETE'],
    // fanoutPartitions: a large topic's records go to its partition workers (SendMessageBatch is
    // authorised as SendMessage; fanout/partition-handoff.ts).
    queues: { fanoutDlq: ['SendMessage'], fanoutPartitions: ['SendMessage'] },
  },
  {
    name: 'fanout-partition',
    description: 'Large topics: deliver one partition of a topic\'s subscribers, record after record, as fanout does (prune, resync, retry).',
    trigger: { kind: 'queue', queue: 'fanoutPartitions' },
    // What fanout does for its subscribers: the partition's range of the topic (and of its
    // collection) by Query, and the 410/resync cleanup (connection row GetItem, byConnection
    // Query, BatchWriteItem on both tables, the user's lastSeen).
    tables: {
      subscriptions: ['Query', 'Query:byConnection', 'BatchWriteItem'],
      connections: ['GetItem', 'BatchWriteItem'],
      users: ['UpdateItem'],
    },
    manageConnections: ['POST', 'DELETE'],
    // The SQS event source mapping polls as the function's role: the three actions Lambda's
    // documentation lists for it (AWSLambdaSQSQueueExecutionRole).
    queues: { fanoutPartitions: ['ReceiveMessage', 'DeleteMessage', 'GetQueueAttributes'] },
  },
  // ---- presence (issue 14) ----
  {
    name: 'socket-presence',
    description: 'presence route: the users (and connection counts) subscribed to a topic the connection may read.',
    trigger: { kind: 'websocket', route: 'presence' },
    // The asking connection's row (its rights), the topic's rows, their connection rows (liveness).
    tables: { connections: ['GetItem', 'BatchGetItem'], subscriptions: ['Query'] },
    manageConnections: ['POST'],
    queues: {},
  },
  {
    name: 'presence',
    description: 'GET /presence: a topic\'s users and counts, or whether a user is online and when it was last seen.',
    // In the publish invoke policy: the rights are publish's (docs/subscriber-protocol.md#presence).
    trigger: { kind: 'http', routes: ['GET /presence'], invokeGroup: 'publish' },
    // topic: its rows, then their connection rows; user: the byUser index, the rows, its lastSeen.
    tables: { subscriptions: ['Query'], connections: ['BatchGetItem', 'Query:byUser'], users: ['GetItem'] },
    manageConnections: [],
    queues: {},
  },
  // ---- end presence ----
  {
    name: 'control',
    description: 'Upstream control API: POST/GET/DELETE /websocket, GET /websockets.',
    // Must equal CONTROL_SCOPE in lib/upstream/control-auth.ts (a test holds them together).
    trigger: { kind: 'http', routes: ['POST /websocket', 'GET /websocket', 'DELETE /websocket', 'GET /websockets'], jwtScopes: ['upstream:admin'] },
    // Scan: only the paginated GET /websockets lists a whole table.
    tables: { upstreams: ['GetItem', 'UpdateItem', 'Scan'] },
    manageConnections: [],
    queues: { commands: ['SendMessage'] },
    // lib/upstream/secrets-aws.ts put(): CreateSecret, and PutSecretValue when it exists.
    secrets: ['CreateSecret', 'PutSecretValue'],
  },
];

/**
 * The upstream agent's instance role (ec2-agent/): poll and acknowledge commands, own upstream
 * rows (claim/renew/release leases, health counters, the reconcile query on byDesiredLease),
 * persist upstream messages through ItemStore (items + history, guarded by the lease row in
 * the same transaction), read credentials by reference. infra/iam.ts adds its bundle object,
 * its metrics namespace and the sink secret.
 */
export const AGENT: PrincipalAccess = {
  tables: {
    upstreams: ['GetItem', 'BatchGetItem', 'UpdateItem', 'ConditionCheckItem', 'Query:byDesiredLease'],
    items: ['GetItem', 'UpdateItem'],
    history: ['PutItem'],
    // Dedupe rows of redundant sockets' messages, in the message's transaction (ec2-agent/dedupe.ts).
    idempotency: ['PutItem'],
  },
  manageConnections: [],
  queues: { commands: ['ReceiveMessage', 'DeleteMessage'] },
  secrets: ['GetSecretValue'],
};

export function functionSpec(name: string): FunctionSpec {
  const f = FUNCTIONS.find((x) => x.name === name);
  if (!f) throw new Error(`no function named "${name}" in lib/functions.ts`);
  return f;
}
