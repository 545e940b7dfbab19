import { GetCommand, QueryCommand, TransactWriteCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { WriteGuard } from '../stores/items';
import { INDEX } from '../schema';
import { heartbeatKey } from './heartbeats';
import { COUNTER_NAMES, isConditionFailed, toRow, type UpstreamCounters, type UpstreamRow, type UpstreamStatus } from './row';

/**
 * Socket ownership, fenced by the owning agent's epoch. An agent proves it is alive with ONE
 * heartbeat row (lib/upstream/heartbeats.ts), not per socket; a socket row names its owner and,
 * in `leaseExpiresAt`, the owner's epoch (a fencing token: unique per agent life, above any
 * clock value so the "unowned" index query below never returns an owned row). Every write is a
 * conditional write, so DynamoDB serialises competing agents:
 *
 * - claim:      desired = open AND status <> failed AND no owner (or a pre-heartbeat lease time
 *               that has passed: rows from before this model are taken over by their old rule)
 * - take over:  the same, but instead of "no owner": owner epoch = E, in ONE transaction with a
 *               check that E's heartbeat row is expired or gone
 * - counters / health / message writes (ownerGuard): owner = me AND epoch = mine
 * - release:    owner = me AND epoch = mine → REMOVE owner, leaseExpiresAt = 0 (0, not absent:
 *               the byDesiredLease GSI only indexes rows that have its range attribute)
 * - fail:       owner = me AND epoch = mine → REMOVE owner and leaseExpiresAt: out of the index
 *
 * So steady-state ownership costs one heartbeat write per agent per period, whatever the number
 * of sockets. "Never two owners" also needs the holder to stop using its sockets before its
 * heartbeat could expire (the agent's LeaseManager does that).
 */

/** An owner and its epoch: what every write of an owner is conditioned on. */
export interface Fence {
  readonly owner: string;
  readonly epoch: number;
}

export type WriteOutcome = 'ok' | 'unwanted' | 'refused';

export class LeaseTable {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    readonly tableName: string,
  ) {}

  /** A write guard (ItemStore) that holds while `fence` still owns the socket. */
  ownerGuard(socketId: string, fence: Fence): WriteGuard {
    return {
      tableName: this.tableName,
      key: { socketId },
      condition: '#owner = :me AND leaseExpiresAt = :epoch',
      names: { '#owner': 'owner' },
      values: { ':me': fence.owner, ':epoch': fence.epoch },
    };
  }

  /**
   * Claims the socket for `fence`: an unowned one, or (with `from`) one owned by the epoch
   * `from`, whose heartbeat must be expired at `now`. The claimed row, or undefined when it is
   * not ours to take.
   */
  async claim(socketId: string, fence: Fence, now: number, from?: number): Promise<UpstreamRow | undefined> {
    const update = {
      TableName: this.tableName,
      Key: { socketId },
      UpdateExpression: 'SET #owner = :me, leaseExpiresAt = :epoch, #status = :connecting, isActive = :false, claimedAt = :now, updatedAt = :now',
      // "Unowned" also admits a row still owned under per-socket leases (before heartbeats)
      // whose lease time has passed: an epoch is above any clock value, so it never matches.
      ConditionExpression: `desired = :open AND #status <> :failed AND ${from === undefined ? '(attribute_not_exists(#owner) OR leaseExpiresAt < :now)' : 'leaseExpiresAt = :from'}`,
      ExpressionAttributeNames: { '#owner': 'owner', '#status': 'status' },
      ExpressionAttributeValues: {
        ':me': fence.owner,
        ':epoch': fence.epoch,
        ':now': now,
        ':open': 'open',
        ':failed': 'failed',
        ':connecting': 'connecting',
        ':false': false,
        ...(from === undefined ? {} : { ':from': from }),
      },
    };
    try {
      if (from === undefined) {
        const r = await this.doc.send(new UpdateCommand({ ...update, ReturnValues: 'ALL_NEW' }));
        return toRow(r.Attributes!);
      }
      // A transaction returns no attributes; the claimed row is read back afterwards (a rare
      // path: only after an agent died).
      await this.doc.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              ConditionCheck: {
                TableName: this.tableName,
                Key: { socketId: heartbeatKey(from) },
                ConditionExpression: 'attribute_not_exists(leaseExpiresAt) OR leaseExpiresAt < :now',
                ExpressionAttributeValues: { ':now': now },
              },
            },
            { Update: update },
          ],
        }),
      );
      return toRow({ ...(await this.readRow(socketId)) });
    } catch (err) {
      if (isConditionFailed(err) || isTransactionConditionFailed(err)) return undefined;
      throw err;
    }
  }

  private async readRow(socketId: string): Promise<Record<string, unknown>> {
    const r = await this.doc.send(new GetCommand({ TableName: this.tableName, Key: { socketId }, ConsistentRead: true }));
    return r.Item ?? { socketId };
  }

  /**
   * Adds the counter deltas gathered since the last flush. `ok`; `unwanted` when the row is
   * still ours but no longer desired open (a DELETE whose hint was lost); `refused` when it is
   * not ours. The refused write returns the row as it was (ReturnValuesOnConditionCheckFailure),
   * so telling the two apart costs no extra read.
   */
  async addCounters(socketId: string, fence: Fence, deltas: Partial<UpstreamCounters>, opts: { abortSignal?: AbortSignal } = {}): Promise<WriteOutcome> {
    const add = counterAdds(deltas);
    if (!add.clause) return 'ok';
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { socketId },
          UpdateExpression: add.clause.trim(),
          ConditionExpression: '#owner = :me AND leaseExpiresAt = :epoch AND desired = :open',
          ExpressionAttributeNames: { '#owner': 'owner', ...add.names },
          ExpressionAttributeValues: { ':me': fence.owner, ':epoch': fence.epoch, ':open': 'open', ...add.values },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
        { abortSignal: opts.abortSignal },
      );
      return 'ok';
    } catch (err) {
      if (!isConditionFailed(err)) throw err;
      // The exception's Item is not unmarshalled by the document client: raw AttributeValues.
      const old = (err as { Item?: Record<string, { S?: string; N?: string }> }).Item;
      const ours = old?.owner?.S === fence.owner && Number(old?.leaseExpiresAt?.N) === fence.epoch;
      return ours && old?.desired?.S !== 'open' ? 'unwanted' : 'refused';
    }
  }

  /** Gives the socket up; `status` says why (pending: for another agent; closed: desired closed). */
  release(socketId: string, fence: Fence, now: number, status: UpstreamStatus, deltas: Partial<UpstreamCounters> = {}): Promise<boolean> {
    return this.updateAsOwner(socketId, fence, 'SET leaseExpiresAt = :zero, #status = :status, isActive = :false, updatedAt = :now REMOVE #owner', deltas, {
      ':zero': 0,
      ':status': status,
      ':false': false,
      ':now': now,
    });
  }

  /** countErr went above the limit: status failed, out of the reconcile index. */
  fail(socketId: string, fence: Fence, now: number, reason: string, deltas: Partial<UpstreamCounters> = {}): Promise<boolean> {
    return this.updateAsOwner(
      socketId,
      fence,
      'SET #status = :failed, isActive = :false, lastError = :reason, updatedAt = :now REMOVE #owner, leaseExpiresAt',
      deltas,
      { ':failed': 'failed', ':false': false, ':reason': reason, ':now': now },
    );
  }

  /** An update (plus the counter deltas) that applies only while `fence` owns the socket; false if not. */
  private async updateAsOwner(
    socketId: string,
    fence: Fence,
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
          ConditionExpression: '#owner = :me AND leaseExpiresAt = :epoch',
          ExpressionAttributeNames: { '#owner': 'owner', '#status': 'status', ...add.names },
          ExpressionAttributeValues: { ':me': fence.owner, ':epoch': fence.epoch, ...values, ...add.values },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailed(err)) return false;
      throw err;
    }
  }

  /**
   * Socket ids that are desired open and unowned (leaseExpiresAt 0; an owned row's epoch is above
   * any clock value), read page by page from the byDesiredLease index, at most `limit`. The
   * index is eventually consistent; that is harmless because `claim` re-checks everything.
   */
  claimable(now: number, limit: number): Promise<string[]> {
    return this.queryIndex('leaseExpiresAt < :v', now, limit);
  }

  /** Socket ids desired open and owned by `epoch` (an expired agent's, to take over), at most `limit`. */
  ownedBy(epoch: number, limit: number): Promise<string[]> {
    return this.queryIndex('leaseExpiresAt = :v', epoch, limit);
  }

  private async queryIndex(range: string, v: number, limit: number): Promise<string[]> {
    const out: string[] = [];
    let start: Record<string, unknown> | undefined;
    while (out.length < limit) {
      const r = await this.doc.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: INDEX.upstreamsByDesiredLease,
          KeyConditionExpression: `desired = :open AND ${range}`,
          ExpressionAttributeValues: { ':open': 'open', ':v': v },
          Limit: Math.min(1000, limit - out.length),
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

/** A transaction cancelled because one of its conditions failed (not a conflict or a throttle). */
function isTransactionConditionFailed(err: unknown): boolean {
  const e = err as { name?: string; CancellationReasons?: { Code?: string }[] };
  return e?.name === 'TransactionCanceledException' && !!e.CancellationReasons?.some((r) => r.Code === 'ConditionalCheckFailed');
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
