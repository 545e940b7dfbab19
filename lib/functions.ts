import type { QueueName, TableName } from './schema';

/**
 * The one list of Lambda functions: which file each is built from, what triggers it and what
 * it may touch. The Pulumi program derives bundles, routes, integrations, the stream mapping
 * and each function's least-privilege policy from it; the local stack derives its emulator
 * routes, HTTP routes and stream poller from it. Adding a handler means adding it here.
 */

export type WebSocketRouteKey = '$connect' | '$disconnect' | '$default' | 'subscribe' | 'unsubscribe' | 'ping';

export type Trigger =
  | { readonly kind: 'websocket'; readonly route: WebSocketRouteKey }
  | {
      readonly kind: 'http';
      readonly routes: readonly string[];
      /** OAuth scopes a JWT authoriser demands before the function is invoked (the handler checks too). */
      readonly jwtScopes?: readonly string[];
    }
  | { readonly kind: 'stream'; readonly table: TableName };

/**
 * `scan` is separate from `read` so only the function that lists a whole table (the control
 * API's `GET /websockets`) is allowed to Scan.
 */
export type TableAccess = 'read' | 'scan' | 'write' | 'delete' | 'stream';

export interface FunctionSpec {
  /** Also the file name: `functions/${name}.ts`. */
  readonly name: string;
  readonly description: string;
  readonly trigger: Trigger;
  readonly tables: Readonly<Partial<Record<TableName, readonly TableAccess[]>>>;
  /** Needs `execute-api:ManageConnections` (PostToConnection/GetConnection/DeleteConnection). */
  readonly manageConnections: boolean;
  /**
   * Also closes connections (DeleteConnection): IAM names that `DELETE/@connections/*`, apart
   * from the `POST/@connections/*` of ManageConnections.
   */
  readonly deleteConnections?: boolean;
  readonly queues: Readonly<Partial<Record<QueueName, readonly ('send' | 'receive')[]>>>;
  /** Secrets Manager access under the upstream secret prefix. */
  readonly secrets?: 'write' | 'read';
}

export const FUNCTIONS: readonly FunctionSpec[] = [
  {
    name: 'connect',
    description: 'WebSocket $connect: authenticate, record the connection, subscribe item-key query parameters.',
    trigger: { kind: 'websocket', route: '$connect' },
    tables: { connections: ['write'], subscriptions: ['write'] },
    manageConnections: false,
    queues: {},
  },
  {
    name: 'disconnect',
    description: 'WebSocket $disconnect: remove the connection and its subscriptions.',
    trigger: { kind: 'websocket', route: '$disconnect' },
    tables: { connections: ['read', 'delete'], subscriptions: ['read', 'delete'] },
    manageConnections: false,
    queues: {},
  },
  {
    name: 'subscribe',
    description: 'subscribe route: authorise the topic, add the subscription, send snapshot or missed events.',
    trigger: { kind: 'websocket', route: 'subscribe' },
    tables: { connections: ['read', 'write'], subscriptions: ['write'], items: ['read'], history: ['read'] },
    manageConnections: true,
    queues: {},
  },
  {
    name: 'unsubscribe',
    description: 'unsubscribe route: remove the subscription.',
    trigger: { kind: 'websocket', route: 'unsubscribe' },
    tables: { connections: ['read', 'write'], subscriptions: ['delete'] },
    manageConnections: true,
    queues: {},
  },
  {
    name: 'ping',
    description: 'ping route: answer pong, refresh lastSeen and the TTL.',
    trigger: { kind: 'websocket', route: 'ping' },
    tables: { connections: ['read', 'write'] },
    manageConnections: true,
    queues: {},
  },
  {
    name: 'default',
    description: '$default route: unknown actions and malformed frames get a coded error.',
    trigger: { kind: 'websocket', route: '$default' },
    tables: {},
    manageConnections: true,
    queues: {},
  },
  {
    name: 'publish',
    description: 'POST /publish: write a topic update (seq + history) or send to every connection of a user.',
    trigger: { kind: 'http', routes: ['POST /publish'] },
    tables: { items: ['read', 'write'], history: ['write'], connections: ['read', 'delete'], subscriptions: ['read', 'delete'] },
    manageConnections: true,
    queues: {},
  },
  {
    name: 'fanout',
    description: 'items stream: deliver each change to the topic subscribers, in order, and prune stale connections.',
    trigger: { kind: 'stream', table: 'items' },
    // connections read: stale-connection cleanup reads the row (its topics) before deleting it.
    tables: { items: ['stream'], subscriptions: ['read', 'delete'], connections: ['read', 'delete'] },
    manageConnections: true,
    // A subscriber whose deliveries keep failing is closed to force its resync (fanout-outcomes.ts).
    deleteConnections: true,
    queues: { fanoutDlq: ['send'] },
  },
  {
    name: 'control',
    description: 'Upstream control API: POST/GET/DELETE /websocket, GET /websockets.',
    // Must equal CONTROL_SCOPE in lib/upstream/control-auth.ts (a test holds them together).
    trigger: { kind: 'http', routes: ['POST /websocket', 'GET /websocket', 'DELETE /websocket', 'GET /websockets'], jwtScopes: ['upstream:admin'] },
    tables: { upstreams: ['read', 'scan', 'write'] },
    manageConnections: false,
    queues: { commands: ['send'] },
    secrets: 'write',
  },
];

export function functionSpec(name: string): FunctionSpec {
  const f = FUNCTIONS.find((x) => x.name === name);
  if (!f) throw new Error(`no function named "${name}" in lib/functions.ts`);
  return f;
}
