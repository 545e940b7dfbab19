import { GetCommand, ScanCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { isHeartbeatKey } from './heartbeats';
import { InputError } from '../errors';
import { notOwnerError } from './control-auth';
import type { ConnectionParams } from './socket-id';
import { COUNTER_NAMES, isConditionFailed, toRow, type UpstreamRow } from './row';

/**
 * The control side of the upstreams table: desired state, reads and listing. The agent's side
 * (leases, health) is in leases.ts and health-records.ts; every agent write there is conditioned
 * on `owner = :me`, so a write from an agent that lost its lease can never land.
 */

export interface ListPage {
  readonly items: UpstreamRow[];
  /** Opaque; pass it back as `cursor` for the next page. Absent on the last page. */
  readonly cursor?: string;
}

export class UpstreamStore {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    readonly tableName: string,
  ) {}

  async get(socketId: string): Promise<UpstreamRow | undefined> {
    const r = await this.doc.send(new GetCommand({ TableName: this.tableName, Key: { socketId }, ConsistentRead: true }));
    return r.Item ? toRow(r.Item) : undefined;
  }

  /**
   * desired=open, idempotently: a second POST with the same parameters updates the same row and
   * leaves a running socket alone. A `failed` or `closed` socket is revived (status pending,
   * countErr 0, back in the byDesiredLease index) so the agents pick it up again.
   *
   * With a `principal`, the row records it as `createdBy` on creation and the write is
   * conditioned on it (a row created by someone else → 403 `not_owner`, nothing changed). The
   * condition, not a read before it, is what decides, so two principals racing to create the
   * same socket cannot both win.
   */
  async requestOpen(
    socketId: string,
    p: ConnectionParams & { topic: string; secretRef: string; redundancy?: 1 | 2; dedupePath?: string },
    now: number,
    principal?: string,
  ): Promise<UpstreamRow> {
    const zeroCounters = Object.fromEntries(COUNTER_NAMES.map((c) => [`#${c}`, c]));
    const owned = principal !== undefined;
    const r = await this.updateIf(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { socketId },
          UpdateExpression:
            'SET internalID = :i, interWorkingInterface = :u, platformID = :p, topic = :t, secretRef = :s, desired = :open, updatedAt = :now, ' +
            'createdAt = if_not_exists(createdAt, :now), #status = if_not_exists(#status, :pending), countErr = if_not_exists(countErr, :zero), ' +
            'isActive = if_not_exists(isActive, :false), leaseExpiresAt = if_not_exists(leaseExpiresAt, :zero), ' +
            (owned ? 'createdBy = if_not_exists(createdBy, :by), ' : '') +
            COUNTER_NAMES.map((c) => `#${c} = if_not_exists(#${c}, :zero)`).join(', ') +
            `, redundancy = :r${p.dedupePath === undefined ? ' REMOVE dedupePath' : ', dedupePath = :dp'}`,
          ...(owned ? { ConditionExpression: 'attribute_not_exists(createdBy) OR createdBy = :by' } : {}),
          ExpressionAttributeNames: { '#status': 'status', ...zeroCounters },
          ExpressionAttributeValues: {
            ...(owned ? { ':by': principal } : {}),
            ':i': p.internalID,
            ':u': p.interWorkingInterface,
            ':p': p.platformID,
            ':t': p.topic,
            ':s': p.secretRef,
            ':open': 'open',
            ':now': now,
            ':pending': 'pending',
            ':zero': 0,
            ':false': false,
            ':r': p.redundancy ?? 1,
            ...(p.dedupePath === undefined ? {} : { ':dp': p.dedupePath }),
          },
          ReturnValues: 'ALL_NEW',
        }),
      );
    if (!r.ok) throw notOwnerError(socketId); // only a principal's write has a condition
    const row = toRow(r.item);
    if ((row.status === 'failed' || row.status === 'closed') && !row.owner) {
        const rv = await this.updateIf(
          new UpdateCommand({
            TableName: this.tableName,
            Key: { socketId },
            UpdateExpression: 'SET #status = :pending, countErr = :zero, isActive = :false, leaseExpiresAt = :zero, updatedAt = :now REMOVE lastError',
            ConditionExpression: 'desired = :open AND #status IN (:failed, :closed) AND attribute_not_exists(#owner)',
            ExpressionAttributeNames: { '#status': 'status', '#owner': 'owner' },
            ExpressionAttributeValues: { ':pending': 'pending', ':zero': 0, ':false': false, ':now': now, ':open': 'open', ':failed': 'failed', ':closed': 'closed' },
            ReturnValues: 'ALL_NEW',
          }),
        );
        // Refused: someone moved it on meanwhile (an agent claimed it, or a DELETE came in): fine.
        return rv.ok ? toRow(rv.item) : ((await this.get(socketId)) ?? row);
    }
    return row;
  }

  /**
   * desired=closed. Throws 404 `not_found` for an unknown socket. A socket no agent holds is
   * marked closed at once; a held one is closed by its agent (the close command, passed
   * to the owner as a hint on its heartbeat row; or its next counter write, conditioned on
   * desired=open; or its ownership audit, ec2-agent/audit.ts). With a `principal`, a socket another
   * principal created is refused with 403 `not_owner`.
   */
  async requestClose(socketId: string, now: number, principal?: string): Promise<UpstreamRow> {
    const owned = principal !== undefined;
    const r = await this.updateIf(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { socketId },
          UpdateExpression: 'SET desired = :closed, updatedAt = :now',
          ConditionExpression: 'attribute_exists(socketId)' + (owned ? ' AND (attribute_not_exists(createdBy) OR createdBy = :by)' : ''),
          ExpressionAttributeValues: { ':closed': 'closed', ':now': now, ...(owned ? { ':by': principal } : {}) },
          ReturnValues: 'ALL_NEW',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
    // Refused: no such row, or (the refusal returns the row) another principal's.
    if (!r.ok) throw r.old ? notOwnerError(socketId) : new InputError('not_found', `no upstream socket ${socketId}`, 404);
    let row = toRow(r.item);
    if (!row.owner && row.status !== 'closed') {
        const closed = await this.updateIf(
          new UpdateCommand({
            TableName: this.tableName,
            Key: { socketId },
            // leaseExpiresAt = 0 keeps the row indexed (a failed row had lost the attribute).
            UpdateExpression: 'SET #status = :closedS, isActive = :false, leaseExpiresAt = :zero, updatedAt = :now',
            ConditionExpression: 'desired = :closed AND attribute_not_exists(#owner)',
            ExpressionAttributeNames: { '#status': 'status', '#owner': 'owner' },
            ExpressionAttributeValues: { ':closedS': 'closed', ':false': false, ':zero': 0, ':now': now, ':closed': 'closed' },
            ReturnValues: 'ALL_NEW',
          }),
        );
        // Refused: an agent claimed it meanwhile; it closes it itself.
        if (closed.ok) row = toRow(closed.item);
    }
    return row;
  }

  /**
   * A conditional update whose refusal is an answer, not an exception: `ok` with the new item,
   * or not, with the row as it was when the command asked for it (ReturnValuesOnConditionCheckFailure).
   */
  private async updateIf(cmd: UpdateCommand): Promise<{ ok: true; item: Record<string, unknown> } | { ok: false; old?: Record<string, unknown> }> {
    try {
      const r = await this.doc.send(cmd);
      return { ok: true, item: r.Attributes ?? {} };
    } catch (err) {
      if (!isConditionFailed(err)) throw err;
      const raw = (err as { Item?: Record<string, unknown> }).Item;
      return { ok: false, old: raw && Object.keys(raw).length ? raw : undefined };
    }
  }

  /**
   * One page of every upstream. A Scan is acceptable here: this is an operator listing, not a
   * fan-out path, and it is paginated (DynamoDB returns at most 1 MB per call anyway).
   */
  async list(opts: { limit: number; cursor?: string }): Promise<ListPage> {
    let start: Record<string, unknown> | undefined;
    if (opts.cursor) {
      try {
        const k = JSON.parse(Buffer.from(opts.cursor, 'base64url').toString('utf8')) as { socketId?: unknown };
        if (typeof k.socketId !== 'string') throw new Error('bad');
        start = { socketId: k.socketId };
      } catch {
        throw new InputError('invalid_cursor', 'query parameter cursor is not a cursor this API returned');
      }
    }
    const r = await this.doc.send(new ScanCommand({ TableName: this.tableName, Limit: opts.limit, ExclusiveStartKey: start }));
    const cursor = r.LastEvaluatedKey
      ? Buffer.from(JSON.stringify({ socketId: r.LastEvaluatedKey.socketId }), 'utf8').toString('base64url')
      : undefined;
    // Agent heartbeat rows share the table (lib/upstream/heartbeats.ts); they are not sockets, and
    // neither are second slot rows (`X#2`, lib/upstream/socket-id.ts): X stands for both.
    return { items: (r.Items ?? []).filter((it) => !isHeartbeatKey(String(it.socketId)) && !String(it.socketId).endsWith('#2')).map(toRow), cursor };
  }
}

