import type { Logger } from '../log';
import { fanout, type FanoutDeps } from './fanout';
import type { FanoutStats } from './fanout-outcomes';
import type { PartitionMessageBody } from './partition-handoff';
import { partitionRange, type PartitionRange } from './partitions';
import type { StreamRecordLike } from './stream-record';

/**
 * Large topics in parallel, the worker side: one SQS batch of partition messages
 * (partition-handoff.ts), each message group (`topic#partition`) delivered by the very same
 * fan-out as the stream's (fanout.ts: per-subscriber lanes, retries, 410 → prune, one failing
 * subscriber → forced resync, most failing → the record fails), to the partition's subscribers
 * only.
 *
 * Failures follow SQS FIFO's rule for partial batches: a group's failed message and every later
 * message of that group are reported in batchItemFailures, so none of them is deleted and the
 * group is handed out again from the failed one (after the visibility timeout; after
 * `maxReceiveCount` receives to the partition DLQ). A message that can never be delivered
 * (malformed) is logged and dropped rather than holding its group.
 */

export interface SqsRecordLike {
  readonly messageId: string;
  readonly body: string;
  readonly attributes?: { readonly MessageGroupId?: string };
}

export interface PartitionWorkerDeps extends Omit<FanoutDeps, 'subscribers'> {
  /** Live subscriber ids of a topic within one partition's key range (its collection's included), page by page. */
  readonly subscribers: (topic: string, range: PartitionRange) => AsyncIterable<string[]>;
  readonly log: Logger;
}

export interface PartitionWorkerResult {
  readonly batchItemFailures: { itemIdentifier: string }[];
  /** One entry per message group of the batch. */
  readonly groups: { readonly group: string; readonly stats: FanoutStats }[];
  readonly malformed: number;
}

/** The message's body, or why it cannot be delivered. */
export function parsePartitionMessage(body: string): PartitionMessageBody | string {
  let b: Partial<PartitionMessageBody>;
  try {
    b = JSON.parse(body) as Partial<PartitionMessageBody>;
  } catch {
    return 'body is not JSON';
  }
  if (!b || typeof b !== 'object') return 'body is not an object';
  try {
    partitionRange(b.partition as number, b.partitions as number);
  } catch (err) {
    return (err as Error).message;
  }
  if (!b.record || typeof b.record !== 'object' || !b.record.dynamodb) return 'record is missing';
  return b as PartitionMessageBody;
}

export async function deliverPartitions(records: readonly SqsRecordLike[], deps: PartitionWorkerDeps): Promise<PartitionWorkerResult> {
  // Group → its messages in queue order, with the record each carries (SequenceNumber = messageId, to map failures back).
  const groups = new Map<string, { range: PartitionRange; messages: { messageId: string; record: StreamRecordLike }[] }>();
  let malformed = 0;
  for (const m of records) {
    const b = parsePartitionMessage(m.body);
    if (typeof b === 'string') {
      malformed++;
      deps.log.error('fanout-partition: malformed partition message dropped', { messageId: m.messageId, reason: b });
      continue;
    }
    const range = partitionRange(b.partition, b.partitions);
    // The group id SQS gives; without it (a hand-made event) the partition alone separates groups.
    const group = m.attributes?.MessageGroupId ?? `#${b.partition}/${b.partitions}`;
    let g = groups.get(group);
    if (!g) groups.set(group, (g = { range, messages: [] }));
    g.messages.push({ messageId: m.messageId, record: { ...b.record, dynamodb: { ...b.record.dynamodb, SequenceNumber: m.messageId } } });
  }

  // Groups run side by side and share the invocation's in-flight ceiling (the keep-alive pool).
  const concurrency = Math.max(1, Math.floor(deps.concurrency / Math.max(1, groups.size)));
  const results = await Promise.all(
    [...groups].map(async ([group, g]) => {
      const r = await fanout(
        g.messages.map((m) => m.record),
        { ...deps, concurrency, subscribers: (topic) => deps.subscribers(topic, g.range) },
      );
      const first = r.batchItemFailures[0]?.itemIdentifier;
      const from = first === undefined ? -1 : g.messages.findIndex((m) => m.messageId === first);
      return { group, stats: r.stats, failures: from < 0 ? [] : g.messages.slice(from).map((m) => ({ itemIdentifier: m.messageId })) };
    }),
  );
  return {
    batchItemFailures: results.flatMap((r) => r.failures),
    groups: results.map(({ group, stats }) => ({ group, stats })),
    malformed,
  };
}
