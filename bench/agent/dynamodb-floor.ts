import { BatchWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { createLimiter } from '../../lib/delivery/limiter';
import { LeaseTable } from '../../lib/upstream/leases';
import { CLAIM_BATCH } from '../../lib/upstream/leases';
import { CLAIM_BATCHES_IN_FLIGHT } from '../../ec2-agent/reconcile';
import { round } from '../lib/stats';
import type { AgentBench } from './setup';

/**
 * What DynamoDB Local alone sustains for the agent's claim path, measured in the same run as the
 * agent's figures and from the benchmark process (no agent, no sockets, no secrets): N rows
 * shaped like desired-open sockets are written directly, then
 * - claimed the agent's way (`LeaseTable.claimMany`: transactions of CLAIM_BATCH conditional
 *   updates, CLAIM_BATCHES_IN_FLIGHT at once; the agent reads the rows back for its dials only
 *   after a wave's claims, see ec2-agent/reconcile.ts);
 * - updated one conditional UpdateItem each, 32 in flight (the shape of the per-socket status
 *   write the agent makes when a handshake completes).
 * The agent's claim rate cannot beat the first figure; the second is what its status writes cost.
 */
export async function dynamoDbFloor(b: AgentBench, n: number) {
  const table = b.config.tables.upstreams;
  const ids = Array.from({ length: n }, (_, i) => `floor-${String(i).padStart(6, '0')}`);
  const now = Date.now();
  for (let i = 0; i < ids.length; i += 25) {
    const puts = ids.slice(i, i + 25).map((socketId) => ({ PutRequest: { Item: { socketId, desired: 'open', status: 'pending', leaseExpiresAt: 0, topic: `floor:${socketId}`, interWorkingInterface: 'ws://127.0.0.1:9/x', secretRef: 'x', platformID: 'floor', internalID: socketId } } }));
    let items: typeof puts | undefined = puts;
    while (items?.length) items = (await b.clients.doc.send(new BatchWriteCommand({ RequestItems: { [table]: items } }))).UnprocessedItems?.[table] as typeof puts | undefined;
  }
  const leases = new LeaseTable(b.clients.doc, table);
  const fence = { owner: 'floor-agent', epoch: now * 1000 };
  const limit = createLimiter(CLAIM_BATCHES_IN_FLIGHT);
  const t0 = performance.now();
  let claimed = 0;
  const batches: string[][] = [];
  for (let i = 0; i < ids.length; i += CLAIM_BATCH) batches.push(ids.slice(i, i + CLAIM_BATCH));
  await Promise.all(
    batches.map((batch) =>
      limit(async () => {
        claimed += (await leases.claimMany(batch, fence, now)).length;
      }),
    ),
  );
  const claimSeconds = (performance.now() - t0) / 1000;

  const one = createLimiter(32);
  const t1 = performance.now();
  await Promise.all(
    ids.map((socketId) =>
      one(() =>
        b.clients.doc.send(
          new UpdateCommand({
            TableName: table,
            Key: { socketId },
            UpdateExpression: 'SET #status = :open, connectedAt = :now',
            ConditionExpression: '#owner = :me AND leaseExpiresAt = :epoch',
            ExpressionAttributeNames: { '#status': 'status', '#owner': 'owner' },
            ExpressionAttributeValues: { ':open': 'open', ':now': now, ':me': fence.owner, ':epoch': fence.epoch },
          }),
        ),
      ),
    ),
  );
  const updateSeconds = (performance.now() - t1) / 1000;
  return {
    rows: n,
    claimed,
    txClaimsPerSecond: Math.round(claimed / claimSeconds),
    txClaimSeconds: round(claimSeconds, 2),
    conditionalUpdatesPerSecond: Math.round(n / updateSeconds),
  };
}
