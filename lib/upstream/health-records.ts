import { UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Fence } from './leases';
import { isConditionFailed } from './row';
import { updateEach } from './transact';

/**
 * What the owning agent records about a socket's connection and health (seed 000's cron rule).
 * Every write is conditioned on the owner and its epoch: an agent that lost the socket learns it here
 * (`lost`) and must drop the socket.
 */

const CONNECTED = 'SET #status = :open, isActive = :true, connectedAt = :now, updatedAt = :now REMOVE lastError';

export type RecordResult = { ok: true; countErr: number } | { ok: false };

export class HealthRecords {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    readonly tableName: string,
  ) {}

  private async update(socketId: string, fence: Fence, expr: string, names: Record<string, string>, values: Record<string, unknown>): Promise<RecordResult> {
    try {
      const r = await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { socketId },
          UpdateExpression: expr,
          ConditionExpression: '#owner = :me AND leaseExpiresAt = :epoch',
          ExpressionAttributeNames: { '#owner': 'owner', ...names },
          ExpressionAttributeValues: { ':me': fence.owner, ':epoch': fence.epoch, ...values },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return { ok: true, countErr: Number(r.Attributes?.countErr ?? 0) };
    } catch (err) {
      if (isConditionFailed(err)) return { ok: false };
      throw err;
    }
  }

  /** The handshake succeeded. */
  connected(socketId: string, fence: Fence, now: number): Promise<RecordResult> {
    return this.update(socketId, fence, CONNECTED, { '#status': 'status' }, { ':open': 'open', ':true': true, ':now': now });
  }

  /**
   * `connected` for many sockets in as few calls as possible (transactions of up to 100, see
   * transact.ts): after a failover a thousand handshakes complete within a second or two, and
   * one UpdateItem each would compete with the claims still being made. `refused`: the sockets
   * whose fence no longer holds (lost); the others are recorded.
   */
  async connectedMany(sockets: readonly { socketId: string; fence: Fence }[], now: number): Promise<{ refused: string[] }> {
    const fences = new Map(sockets.map((s) => [s.socketId, s.fence]));
    const r = await updateEach(this.doc, [...fences.keys()], (socketId) => ({
      TableName: this.tableName,
      Key: { socketId },
      UpdateExpression: CONNECTED,
      ConditionExpression: '#owner = :me AND leaseExpiresAt = :epoch',
      ExpressionAttributeNames: { '#owner': 'owner', '#status': 'status' },
      ExpressionAttributeValues: { ':me': fences.get(socketId)!.owner, ':epoch': fences.get(socketId)!.epoch, ':open': 'open', ':true': true, ':now': now },
    }));
    const refused = [...r.refused];
    // Kept meeting other transactions on the same rows: one plain write each.
    for (const id of r.contended) if (!(await this.connected(id, fences.get(id)!, now)).ok) refused.push(id);
    return { refused };
  }

  /** The connection dropped or a dial failed; the agent is redialling. */
  disconnected(socketId: string, fence: Fence, now: number, reason: string): Promise<RecordResult> {
    return this.update(socketId, fence, 'SET #status = :re, isActive = :false, lastError = :reason, updatedAt = :now', { '#status': 'status' }, {
      ':re': 'reconnecting',
      ':false': false,
      ':reason': reason.slice(0, 500),
      ':now': now,
    });
  }

  /** A passing health check: countErr = 0, isActive, lastHealthyAt. */
  healthy(socketId: string, fence: Fence, now: number): Promise<RecordResult> {
    return this.update(
      socketId,
      fence,
      'SET countErr = :zero, isActive = :true, lastHealthyAt = :now, #status = :open, updatedAt = :now',
      { '#status': 'status' },
      { ':zero': 0, ':true': true, ':now': now, ':open': 'open' },
    );
  }

  /** A failing health check: countErr += 1; the returned countErr decides whether to give up. */
  unhealthy(socketId: string, fence: Fence, now: number, reason: string): Promise<RecordResult> {
    return this.update(
      socketId,
      fence,
      'SET isActive = :false, #status = :re, lastError = :reason, updatedAt = :now ADD countErr :one',
      { '#status': 'status' },
      { ':false': false, ':re': 'reconnecting', ':reason': reason.slice(0, 500), ':now': now, ':one': 1 },
    );
  }
}
