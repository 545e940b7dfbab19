import { UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { INDEX } from '../schema';
import { isConditionFailed, queryAll } from '../stores/dynamo';

/**
 * Agent liveness: one heartbeat row per agent life (epoch), in the upstreams table under the
 * key `agent#<epoch>` (a socket id is 40 hex characters, so the two can never collide). The row
 * has `desired = agent` and its expiry in `leaseExpiresAt`, so the byDesiredLease index that
 * finds unowned sockets also finds expired agents, without a Scan or a table of its own.
 *
 * The epoch is the fencing token every socket row of the agent carries: `now × 1000 + random`,
 * made unique by the conditional create, and above any millisecond clock value (until the year
 * 2255 it also stays a safe integer).
 *
 * The row also carries `closeHints`: socket ids another agent received a close command for
 * (the command queue is shared). The owner reads them from its own heartbeat write's answer,
 * so a DELETE reaches it within one heartbeat period without any per-socket renewal.
 */

export const AGENT_DESIRED = 'agent';

export function heartbeatKey(epoch: number): string {
  return `agent#${epoch}`;
}

export function isHeartbeatKey(key: string): boolean {
  return key.startsWith('agent#');
}

export type BeatResult = { ok: true; closeHints: string[] } | { ok: false };

export interface ExpiredAgent {
  readonly epoch: number;
  /** When its heartbeat ran out (epoch ms). */
  readonly expiredAt: number;
}

export class HeartbeatTable {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    readonly tableName: string,
  ) {}

  /** Creates a heartbeat row for a new agent life; its epoch. */
  async register(agentId: string, now: number, leaseMs: number): Promise<number> {
    for (;;) {
      const epoch = now * 1000 + Math.floor(Math.random() * 1000);
      try {
        await this.doc.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: { socketId: heartbeatKey(epoch) },
            UpdateExpression: 'SET desired = :agent, leaseExpiresAt = :exp, #owner = :me, startedAt = :now',
            ConditionExpression: 'attribute_not_exists(socketId)',
            ExpressionAttributeNames: { '#owner': 'owner' },
            ExpressionAttributeValues: { ':agent': AGENT_DESIRED, ':exp': now + leaseMs, ':me': agentId, ':now': now },
          }),
        );
        return epoch;
      } catch (err) {
        if (!isConditionFailed(err)) throw err; // else: that epoch is taken, draw another
      }
    }
  }

  /**
   * Extends the heartbeat to `now + leaseMs` — only while it has not expired (an expired agent's
   * sockets may already be another's) — and drops the close hints already handled. Returns the
   * hints still waiting.
   */
  async beat(epoch: number, now: number, leaseMs: number, handled: readonly string[], opts: { abortSignal?: AbortSignal } = {}): Promise<BeatResult> {
    try {
      const r = await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { socketId: heartbeatKey(epoch) },
          UpdateExpression: `SET leaseExpiresAt = :exp${handled.length ? ' DELETE closeHints :handled' : ''}`,
          ConditionExpression: 'desired = :agent AND leaseExpiresAt >= :now',
          ExpressionAttributeValues: { ':agent': AGENT_DESIRED, ':now': now, ':exp': now + leaseMs, ...(handled.length ? { ':handled': new Set(handled) } : {}) },
          ReturnValues: 'ALL_NEW',
        }),
        { abortSignal: opts.abortSignal },
      );
      const hints = r.Attributes?.closeHints as Set<string> | undefined;
      return { ok: true, closeHints: hints ? [...hints] : [] };
    } catch (err) {
      if (isConditionFailed(err)) return { ok: false };
      throw err;
    }
  }

  /** Asks the agent of `epoch` to re-check `socketId` (a close command it did not receive). */
  async hint(epoch: number, socketId: string): Promise<void> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { socketId: heartbeatKey(epoch) },
          UpdateExpression: 'ADD closeHints :ids',
          ConditionExpression: 'desired = :agent',
          ExpressionAttributeValues: { ':ids': new Set([socketId]), ':agent': AGENT_DESIRED },
        }),
      );
    } catch (err) {
      // No such agent any more: its sockets are being taken over, and a claim re-checks desired.
      if (!isConditionFailed(err)) throw err;
    }
  }

  /** Agents whose heartbeat ran out before `now` (the index is eventually consistent; claims re-check). */
  async expired(now: number): Promise<ExpiredAgent[]> {
    const items = await queryAll(this.doc, {
      TableName: this.tableName,
      IndexName: INDEX.upstreamsByDesiredLease,
      KeyConditionExpression: 'desired = :agent AND leaseExpiresAt < :now',
      ExpressionAttributeValues: { ':agent': AGENT_DESIRED, ':now': now },
    });
    return items.map((it) => ({ epoch: Number(String(it.socketId).slice('agent#'.length)), expiredAt: Number(it.leaseExpiresAt) }));
  }

  /** A clean stop: the heartbeat expires now, so anything not released is taken over at once. */
  async expireNow(epoch: number): Promise<void> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { socketId: heartbeatKey(epoch) },
          UpdateExpression: 'SET leaseExpiresAt = :zero',
          ConditionExpression: 'desired = :agent',
          ExpressionAttributeValues: { ':zero': 0, ':agent': AGENT_DESIRED },
        }),
      );
    } catch (err) {
      if (!isConditionFailed(err)) throw err;
    }
  }

  /**
   * Takes an expired agent life's row out of the index once its sockets have all been taken
   * over. The row stays (no DeleteItem grant needed) as a record; without `leaseExpiresAt` a
   * claim's check treats it as gone.
   */
  async retire(epoch: number, now: number): Promise<void> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { socketId: heartbeatKey(epoch) },
          UpdateExpression: 'SET retiredAt = :now REMOVE desired, leaseExpiresAt, closeHints',
          ConditionExpression: 'leaseExpiresAt < :now',
          ExpressionAttributeValues: { ':now': now },
        }),
      );
    } catch (err) {
      if (!isConditionFailed(err)) throw err;
    }
  }
}
