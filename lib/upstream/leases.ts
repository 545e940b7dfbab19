import { BatchGetCommand, type BatchGetCommandOutput, GetCommand, QueryCommand, TransactWriteCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { WriteGuard } from '../stores/items';
import { INDEX } from '../schema';
import { heartbeatKey } from './heartbeats';
import { isTransactionConditionFailed, TX_MAX_ITEMS, updateEach, type TxItem, type TxUpdate } from './transact';
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
    const update = claimUpdate(this.tableName, socketId, fence, now, from);
    try {
      if (from === undefined) {
        const r = await this.doc.send(new UpdateCommand({ ...update, ReturnValues: 'ALL_NEW' }));
        return toRow(r.Attributes!);
      }
      // A transaction returns no attributes; the claimed row is read back afterwards (a rare
      // path: only after an agent died).
      await this.doc.send(new TransactWriteCommand({ TransactItems: [heartbeatExpiredCheck(this.tableName, from, now), { Update: update }] }));
      return toRow({ ...(await this.readRow(socketId)) });
    } catch (err) {
      if (isConditionFailed(err) || isTransactionConditionFailed(err)) return undefined;
      throw err;
    }
  }

  /**
   * Claims many sockets in a few round trips (what makes reconcile and failover claim thousands
   * per second): up to CLAIM_BATCH claims per transaction, each with the same condition as
   * `claim` (with `from`: plus ONE check that the epoch's heartbeat is expired). A transaction is
   * all or nothing, so a refused claim (taken meanwhile, closed, failed) cancels the others; its
   * cancellation reasons say which, and the transaction is sent again without them. Claims that
   * keep meeting conflicts with another agent's transaction fall back to `claim` one by one.
   * The ids claimed, in no set order. A transaction returns no attributes (and the index only
   * holds keys): what a claimed socket needs for its dial is read with `readRows`, separately, so
   * ownership moves for a whole wave of sockets before any of them is read.
   */
  async claimMany(socketIds: readonly string[], fence: Fence, now: number, from?: number): Promise<string[]> {
    const head = from === undefined ? undefined : heartbeatExpiredCheck(this.tableName, from, now);
    const r = await updateEach(this.doc, socketIds, (id) => claimUpdate(this.tableName, id, fence, now, from), head);
    const claimed = [...r.done];
    // The epoch's heartbeat is live again (or was never expired): none of these is ours to take.
    if (!r.headFailed) {
      for (const id of r.contended) if (await this.claim(id, fence, now, from)) claimed.push(id);
    }
    return claimed;
  }

  /**
   * Hands sockets of the expired epoch `from` back to the unowned pool (status pending), without
   * claiming them: the slots of redundant sockets whose other slot the caller holds (an agent
   * never holds both). Same conditions as a takeover (owned by `from`, whose heartbeat must be
   * expired), so a live agent's socket is never touched and a concurrent takeover wins or loses
   * cleanly. An agent with room for them claims them from the `claimable` pool. The ids handed back.
   */
  async handBack(socketIds: readonly string[], from: number, now: number): Promise<string[]> {
    const update = (id: string): TxUpdate => ({
      TableName: this.tableName,
      Key: { socketId: id },
      UpdateExpression: 'SET leaseExpiresAt = :zero, #status = :pending, isActive = :false, updatedAt = :now REMOVE #owner',
      ConditionExpression: 'desired = :open AND leaseExpiresAt = :from',
      ExpressionAttributeNames: { '#owner': 'owner', '#status': 'status' },
      ExpressionAttributeValues: { ':zero': 0, ':pending': 'pending', ':false': false, ':now': now, ':open': 'open', ':from': from },
    });
    return (await updateEach(this.doc, socketIds, update, heartbeatExpiredCheck(this.tableName, from, now))).done;
  }

  /**
   * The rows (consistent reads), 100 keys per BatchGetItem, retrying what DynamoDB left
   * unprocessed; a key with no row is left out. The claims' read-back, and the ownership audit's
   * check of what the eventually consistent index did not show.
   */
  async readRows(ids: readonly string[]): Promise<UpstreamRow[]> {
    const out: UpstreamRow[] = [];
    for (let i = 0; i < ids.length; i += 100) {
      let keys: Record<string, unknown>[] | undefined = ids.slice(i, i + 100).map((socketId) => ({ socketId }));
      for (let attempt = 0; keys?.length; attempt++) {
        if (attempt) await new Promise((r) => setTimeout(r, Math.min(1000, 20 * 2 ** attempt)));
        const r: BatchGetCommandOutput = await this.doc.send(new BatchGetCommand({ RequestItems: { [this.tableName]: { Keys: keys, ConsistentRead: true } } }));
        for (const it of r.Responses?.[this.tableName] ?? []) out.push(toRow(it));
        keys = r.UnprocessedKeys?.[this.tableName]?.Keys;
      }
    }
    return out;
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
   * any clock value), read page by page from the byDesiredLease index, until `limit` of them pass
   * `counts` (default: all) — ids that do not pass are returned too but do not use up the limit,
   * so slots an agent may not take (their other slot is its own) cannot crowd out those it may.
   * The index is eventually consistent; that is harmless because `claim` re-checks everything.
   */
  claimable(now: number, limit: number, counts?: (socketId: string) => boolean): Promise<string[]> {
    return this.queryIndex('leaseExpiresAt < :v', now, limit, counts);
  }

  /** Socket ids desired open and owned by `epoch` (an expired agent's, to take over); `limit` and `counts` as `claimable`. */
  ownedBy(epoch: number, limit: number, counts?: (socketId: string) => boolean): Promise<string[]> {
    return this.queryIndex('leaseExpiresAt = :v', epoch, limit, counts);
  }

  private async queryIndex(range: string, v: number, limit: number, counts: (socketId: string) => boolean = () => true): Promise<string[]> {
    const out: string[] = [];
    let counted = 0;
    let start: Record<string, unknown> | undefined;
    while (counted < limit) {
      const r = await this.doc.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: INDEX.upstreamsByDesiredLease,
          KeyConditionExpression: `desired = :open AND ${range}`,
          ExpressionAttributeValues: { ':open': 'open', ':v': v },
          Limit: Math.min(1000, limit - counted),
          ExclusiveStartKey: start,
        }),
      );
      for (const it of r.Items ?? []) {
        const id = String(it.socketId);
        out.push(id);
        if (counts(id)) counted++;
      }
      start = r.LastEvaluatedKey;
      if (!start) break;
    }
    return out;
  }
}

/** Claims per transaction (DynamoDB's limit is 100 items; a takeover's heartbeat check is one). */
export const CLAIM_BATCH = TX_MAX_ITEMS;

/**
 * The claim of one socket for `fence`: desired open, not failed, and unowned (or, with `from`,
 * owned by that epoch). "Unowned" also admits a row still owned under per-socket leases (before
 * heartbeats) whose lease time has passed: an epoch is above any clock value, so it never matches.
 */
function claimUpdate(tableName: string, socketId: string, fence: Fence, now: number, from?: number): TxUpdate {
  return {
    TableName: tableName,
    Key: { socketId },
    UpdateExpression: 'SET #owner = :me, leaseExpiresAt = :epoch, #status = :connecting, isActive = :false, claimedAt = :now, updatedAt = :now',
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
}

/** A transaction item that holds while the heartbeat of `epoch` is expired at `now` (or gone). */
function heartbeatExpiredCheck(tableName: string, epoch: number, now: number): TxItem {
  return {
    ConditionCheck: {
      TableName: tableName,
      Key: { socketId: heartbeatKey(epoch) },
      ConditionExpression: 'attribute_not_exists(leaseExpiresAt) OR leaseExpiresAt < :now',
      ExpressionAttributeValues: { ':now': now },
    },
  };
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
