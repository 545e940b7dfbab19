/**
 * One row of the upstreams table (key `socketId`, lib/schema.ts). Credentials are never in it:
 * `secretRef` names the secret that holds them.
 */

export type Desired = 'open' | 'closed';

/**
 * pending      desired open, no agent holds it yet (or its agent released it)
 * connecting   an agent claimed it and is dialling
 * open         connected (and healthy at the last check)
 * reconnecting the connection dropped or failed a health check; the agent is redialling
 * failed       countErr went above 2 (seed 000's rule); no agent will dial it until a new POST
 * closed       desired closed and no longer connected
 */
export type UpstreamStatus = 'pending' | 'connecting' | 'open' | 'reconnecting' | 'failed' | 'closed';

export interface UpstreamCounters {
  messagesIn: number;
  messagesPersisted: number;
  messagesDropped: number;
  errors: number;
  reconnects: number;
}

export const COUNTER_NAMES: readonly (keyof UpstreamCounters)[] = ['messagesIn', 'messagesPersisted', 'messagesDropped', 'errors', 'reconnects'];

export interface UpstreamRow extends UpstreamCounters {
  socketId: string;
  internalID: string;
  interWorkingInterface: string;
  platformID: string;
  topic: string;
  secretRef: string;
  /** The principal that created the socket (`jwt:<sub>` or `iam:<arn>`); absent when created without an authoriser. */
  createdBy?: string;
  desired: Desired;
  status: UpstreamStatus;
  isActive: boolean;
  countErr: number;
  /** Epoch ms of every time field. */
  lastHealthyAt?: number;
  owner?: string;
  /** 0 when unowned, so the row stays in the byDesiredLease index; absent when failed. */
  leaseExpiresAt?: number;
  connectedAt?: number;
  createdAt: number;
  updatedAt: number;
  lastError?: string;
  /** 2: redundant homing, a second slot row (`<socketId>#2`, lib/upstream/socket-id.ts). */
  redundancy: 1 | 2;
  /** Where messages carry the platform's message id (dedupe); absent: dedupe by content. */
  dedupePath?: string;
}

export function toRow(item: Record<string, unknown>): UpstreamRow {
  const n = (k: string) => (item[k] === undefined ? undefined : Number(item[k]));
  return {
    socketId: String(item.socketId),
    internalID: String(item.internalID ?? ''),
    interWorkingInterface: String(item.interWorkingInterface ?? ''),
    platformID: String(item.platformID ?? ''),
    topic: String(item.topic ?? ''),
    secretRef: String(item.secretRef ?? ''),
    createdBy: item.createdBy === undefined ? undefined : String(item.createdBy),
    desired: item.desired === 'open' ? 'open' : 'closed',
    status: (item.status as UpstreamStatus) ?? 'pending',
    isActive: item.isActive === true,
    countErr: n('countErr') ?? 0,
    lastHealthyAt: n('lastHealthyAt'),
    owner: item.owner === undefined ? undefined : String(item.owner),
    leaseExpiresAt: n('leaseExpiresAt'),
    connectedAt: n('connectedAt'),
    createdAt: n('createdAt') ?? 0,
    updatedAt: n('updatedAt') ?? 0,
    lastError: item.lastError === undefined ? undefined : String(item.lastError),
    messagesIn: n('messagesIn') ?? 0,
    messagesPersisted: n('messagesPersisted') ?? 0,
    messagesDropped: n('messagesDropped') ?? 0,
    errors: n('errors') ?? 0,
    reconnects: n('reconnects') ?? 0,
    redundancy: item.redundancy === 2 ? 2 : 1,
    dedupePath: item.dedupePath === undefined ? undefined : String(item.dedupePath),
  };
}

// Defined with the other DynamoDB idioms; re-exported for the upstream stores that import it from here.
export { isConditionFailed } from '../stores/dynamo';
