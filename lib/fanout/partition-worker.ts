import type { Logger } from '../log';
import { fanout, type FanoutDeps } from './fanout';
import type { FanoutStats } from './fanout-outcomes';
import type { PartitionMessageBody } from './partition-handoff';
import { partitionRange, type PartitionRange } from './partitions';
import { eventAsStreamRecord, type StreamRecordLike } from './stream-record';

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
 *
 * A message marked `truncated` (its data did not fit a queue message, partition-handoff.ts) is
 * delivered as the placeholder the stream's fan-out sends for an event over the message limit. A
 * group's messages go in consecutive runs of full and truncated records, one fan-out per run, so
 * its order holds; a failed run stops the group there.
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
  const e = b.event;
  if (!e || typeof e !== 'object') return 'event is missing';
  // The rest of the event (topic pattern, seq range) is checked by fan-out's parse, as for a stream record.
  if (typeof e.topic !== 'string' || typeof e.seq !== 'number' || typeof e.ts !== 'number') return 'event needs a string topic and numeric seq and ts';
  if (b.truncated !== undefined && b.truncated !== true) return 'truncated must be true when present';
  return b as PartitionMessageBody;
}

interface GroupMessage {
  readonly messageId: string;
  readonly record: StreamRecordLike;
  readonly truncated: boolean;
}

export async function deliverPartitions(records: readonly SqsRecordLike[], deps: PartitionWorkerDeps): Promise<PartitionWorkerResult> {
  // Group → its messages in queue order, each as the stream record fan-out reads (SequenceNumber = messageId, to map failures back).
  const groups = new Map<string, { range: PartitionRange; messages: GroupMessage[] }>();
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
    g.messages.push({ messageId: m.messageId, record: eventAsStreamRecord(b.event, m.messageId), truncated: b.truncated === true });
  }

  // Groups run side by side and share the invocation's in-flight ceiling (the keep-alive pool).
  const concurrency = Math.max(1, Math.floor(deps.concurrency / Math.max(1, groups.size)));
  const results = await Promise.all([...groups].map(async ([group, g]) => ({ group, ...(await deliverGroup(g.messages, g.range, concurrency, deps)) })));
  return {
    batchItemFailures: results.flatMap((r) => r.failures),
    groups: results.map(({ group, stats }) => ({ group, stats })),
    malformed,
  };
}

/** A group's messages, run after run; on a failure, that message and every later one of the group are reported. */
async function deliverGroup(
  messages: readonly GroupMessage[],
  range: PartitionRange,
  concurrency: number,
  deps: PartitionWorkerDeps,
): Promise<{ stats: FanoutStats; failures: { itemIdentifier: string }[] }> {
  let stats: FanoutStats | undefined;
  for (const run of runs(messages)) {
    const r = await fanout(
      run.map((m) => m.record),
      {
        ...deps,
        concurrency,
        subscribers: (topic) => deps.subscribers(topic, range),
        // No frame fits a limit of 0, so fan-out sends each record of the run as its truncated
        // placeholder: exactly the frame the stream's fan-out sends for an event over the limit.
        ...(run[0]!.truncated ? { maxMessageBytes: 0 } : {}),
      },
    );
    stats = stats ? addStats(stats, r.stats) : r.stats;
    const first = r.batchItemFailures[0]?.itemIdentifier;
    const from = first === undefined ? -1 : messages.findIndex((m) => m.messageId === first);
    if (from >= 0) return { stats, failures: messages.slice(from).map((m) => ({ itemIdentifier: m.messageId })) };
  }
  return { stats: stats!, failures: [] };
}

/** Consecutive messages with the same `truncated`, in order. */
function runs(messages: readonly GroupMessage[]): GroupMessage[][] {
  const out: GroupMessage[][] = [];
  for (const m of messages) {
    const last = out.at(-1);
    if (last && last[0]!.truncated === m.truncated) last.push(m);
    else out.push([m]);
  }
  return out;
}

function addStats(a: FanoutStats, b: FanoutStats): FanoutStats {
  const sum = { ...a };
  for (const k of Object.keys(sum) as (keyof FanoutStats)[]) sum[k] += b[k];
  return sum;
}
