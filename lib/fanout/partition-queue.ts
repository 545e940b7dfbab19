import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { retryUnprocessed, type Backoff } from '../retry';
import { MAX_PARTITION_MESSAGE_BYTES, type PartitionMessage } from './partition-handoff';

/**
 * The FIFO queue of partition messages (partition-handoff.ts): SendMessageBatch in calls of at
 * most 10 entries and at most `MAX_PARTITION_MESSAGE_BYTES` of bodies (SQS refuses the whole call
 * past either), entries SQS refused sent again after a backoff. Resolves once every message is
 * queued, throws otherwise (the record is then retried from the stream).
 */

/** SQS takes at most 10 entries per SendMessageBatch. */
const BATCH = 10;

/** Consecutive messages in calls SQS accepts: ≤ 10 entries, bodies summing to ≤ the limit (each body is within it). */
export function batchesOf(messages: readonly PartitionMessage[]): PartitionMessage[][] {
  const out: PartitionMessage[][] = [];
  let bytes = 0;
  for (const m of messages) {
    const size = Buffer.byteLength(m.body, 'utf8');
    const last = out.at(-1);
    if (last && last.length < BATCH && bytes + size <= MAX_PARTITION_MESSAGE_BYTES) {
      last.push(m);
      bytes += size;
    } else {
      out.push([m]);
      bytes = size;
    }
  }
  return out;
}

export interface PartitionQueueOptions {
  readonly attempts?: number;
  readonly backoff?: Backoff;
}

export function partitionQueue(sqs: SQSClient, queueUrl: string, opts: PartitionQueueOptions = {}) {
  const attempts = opts.attempts ?? 4;
  const backoff = opts.backoff ?? { baseMs: 50, maxMs: 1000 };
  const sendChunk = async (chunk: readonly PartitionMessage[]) => {
    const left = await retryUnprocessed(
      chunk,
      async (pending) => {
        const r = await sqs.send(
          new SendMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: pending.map((m, i) => ({ Id: String(i), MessageBody: m.body, MessageGroupId: m.groupId, MessageDeduplicationId: m.deduplicationId })),
          }),
        );
        const failedIds = new Set((r.Failed ?? []).map((f) => f.Id));
        // A sender fault (a malformed entry) never succeeds: fail now rather than after every retry.
        const fault = (r.Failed ?? []).find((f) => f.SenderFault);
        if (fault) throw new Error(`SendMessageBatch refused a partition message: ${fault.Code} ${fault.Message ?? ''}`.trim());
        return pending.filter((_, i) => failedIds.has(String(i)));
      },
      { attempts, backoff },
    );
    if (left.length) throw new Error(`${left.length} partition message(s) could not be queued after ${attempts} attempts`);
  };
  return async (messages: readonly PartitionMessage[]): Promise<void> => {
    // Distinct groups (one per partition): the chunks may go side by side.
    await Promise.all(batchesOf(messages).map(sendChunk));
  };
}
