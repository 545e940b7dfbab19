import { QueryCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { WriteGuard } from '../stores/items';
import { INDEX } from '../schema';
import { COUNTER_NAMES, isConditionFailed, toRow, type UpstreamCounters, type UpstreamRow, type UpstreamStatus } from './row';

/**
 * Socket ownership by lease, all in conditional writes on the upstreams table, so DynamoDB
 * serialises competing agents and at most one of them holds a socket at any time:
 *
 * - claim:   desired = open AND status <> failed AND (no owner OR lease expired OR owner = me)
 * - renew:   owner = me AND desired = open  (a DELETE makes the next renewal fail, which is how
 *            an owner that missed the close command still closes within one renew period)
 * - release: owner = me → REMOVE owner, leaseExpiresAt = 0 (0, not absent: the byDesiredLease
 *            GSI only indexes rows that have its range attribute, and reconcile must see them)
 * - fail:    owner = me → REMOVE owner and leaseExpiresAt: the row leaves the index, so no agent
 *            redials a failed socket until a new POST puts leaseExpiresAt back.
 *
 * The lease is only half of "never two owners": the holder must also stop using the socket as
 * soon as a renewal fails or its lease runs out unrenewed (the agent's LeaseManager does that).
 */

export type RenewOutcome = 'renewed' | 'unwanted' | 'refused';

export class LeaseTable {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    readonly tableName: string,
  ) {}

  /** A write guard (ItemStore) that holds while `owner` is still the socket's owner. */
  ownerGuard(socketId: string, owner: string): WriteGuard {
    return { tableName: this.tableName, key: { socketId }, condition: '#owner = :me', names: { '#owner': 'owner' }, values: { ':me': owner } };
  }

  /** The claimed row, or undefined when another agent holds it or it should not be open. */
  async claim(socketId: string, owner: string, now: number, leaseMs: number): Promise<UpstreamRow | undefined> {
    try {
      const r = await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { socketId },
          UpdateExpression: 'SET #owner = :me, leaseExpiresAt = :exp, #status = :connecting, isActive = :false, claimedAt = :now, updatedAt = :now',
          ConditionExpression:
            'desired = :open AND #status <> :failed AND (attribute_not_exists(#owner) OR leaseExpiresAt < :now OR #owner = :me)',
          ExpressionAttributeNames: { '#owner': 'owner', '#status': 'status' },
          ExpressionAttributeValues: {
            ':me': owner,
            ':exp': now + leaseMs,
            ':now': now,
            ':open': 'open',
            ':failed': 'failed',
            ':connecting': 'connecting',
            ':false': false,
          },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return toRow(r.Attributes!);
    } catch (err) {
      if (isConditionFailed(err)) return undefined;
      throw err;
    }
  }

  /**
   * Extends the lease and adds the counter deltas gathered since the last renewal (one write
   * per socket per renew period instead of one per message). `renewed`; `unwanted` when the row
   * is still ours but no longer desired open (a DELETE); `refused` when it is not ours (another
   * owner, or no row). The refused write returns the row as it was
   * (ReturnValuesOnConditionCheckFailure), so telling the two apart costs no extra read.
   */
  async renew(
    socketId: string,
    owner: string,
    now: number,
    leaseMs: number,
    deltas: Partial<UpstreamCounters> = {},
    opts: { abortSignal?: AbortSignal } = {},
  ): Promise<RenewOutcome> {
    const add = counterAdds(deltas);
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { socketId },
          UpdateExpression: `SET leaseExpiresAt = :exp${add.clause}`,
          ConditionExpression: '#owner = :me AND desired = :open',
          ExpressionAttributeNames: { '#owner': 'owner', ...add.names },
          ExpressionAttributeValues: { ':me': owner, ':exp': now + leaseMs, ':open': 'open', ...add.values },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
        { abortSignal: opts.abortSignal },
      );
      return 'renewed';
    } catch (err) {
      if (!isConditionFailed(err)) throw err;
      // The exception's Item is not unmarshalled by the document client: raw AttributeValues.
      const old = (err as { Item?: Record<string, { S?: string }> }).Item;
      return old?.owner?.S === owner && old?.desired?.S !== 'open' ? 'unwanted' : 'refused';
    }
  }

  /** Gives the socket up; `status` says why (pending: for another agent; closed: desired closed). */
  release(socketId: string, owner: string, now: number, status: UpstreamStatus, deltas: Partial<UpstreamCounters> = {}): Promise<boolean> {
    return this.updateAsOwner(socketId, owner, 'SET leaseExpiresAt = :zero, #status = :status, isActive = :false, updatedAt = :now REMOVE #owner', deltas, {
      ':zero': 0,
      ':status': status,
      ':false': false,
      ':now': now,
    });
  }

  /** countErr went above the limit: status failed, out of the reconcile index. */
  fail(socketId: string, owner: string, now: number, reason: string, deltas: Partial<UpstreamCounters> = {}): Promise<boolean> {
    return this.updateAsOwner(
      socketId,
      owner,
      'SET #status = :failed, isActive = :false, lastError = :reason, updatedAt = :now REMOVE #owner, leaseExpiresAt',
      deltas,
      { ':failed': 'failed', ':false': false, ':reason': reason, ':now': now },
    );
  }

  /** An update (plus the counter deltas) that applies only while `owner` holds the lease; false if not. */
  private async updateAsOwner(
    socketId: string,
    owner: string,
    update: string,
    deltas: Partial<UpstreamCounters>,
    values: Record<string, unknown>,
  ): Promise<boolean> {
    const add = counterAdds(deltas);
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { socketId },
          UpdateExpression: update + add.clause,
          ConditionExpression: '#owner = :me',
          ExpressionAttributeNames: { '#owner': 'owner', '#status': 'status', ...add.names },
          ExpressionAttributeValues: { ':me': owner, ...values, ...add.values },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailed(err)) return false;
      throw err;
    }
  }

  /**
   * Socket ids that are desired open and whose lease has expired (or that were never owned),
   * read page by page from the byDesiredLease index, at most `limit`. The index is eventually
   * consistent; that is harmless because `claim` re-checks everything in its condition.
   */
  async claimable(now: number, limit: number): Promise<string[]> {
    const out: string[] = [];
    let start: Record<string, unknown> | undefined;
    while (out.length < limit) {
      const r = await this.doc.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: INDEX.upstreamsByDesiredLease,
          KeyConditionExpression: 'desired = :open AND leaseExpiresAt < :now',
          ExpressionAttributeValues: { ':open': 'open', ':now': now },
          Limit: Math.min(100, limit - out.length),
          ExclusiveStartKey: start,
        }),
      );
      for (const it of r.Items ?? []) out.push(String(it.socketId));
      start = r.LastEvaluatedKey;
      if (!start) break;
    }
    return out;
  }
}

/** The ` ADD #c :c, …` clause (with its names and values) for the non-zero counter deltas. */
function counterAdds(deltas: Partial<UpstreamCounters>) {
  const adds = COUNTER_NAMES.filter((c) => (deltas[c] ?? 0) !== 0);
  return {
    clause: adds.length ? ' ADD ' + adds.map((c) => `#${c} :${c}`).join(', ') : '',
    names: Object.fromEntries(adds.map((c) => [`#${c}`, c])),
    values: Object.fromEntries(adds.map((c) => [`:${c}`, deltas[c]])),
  };
}
