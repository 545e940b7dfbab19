import { createHash } from 'node:crypto';
import type { Logger } from '../log';
import { parseStreamRecord, type StreamRecordLike } from './stream-record';
import { partitionRanges } from './partitions';

/**
 * Large topics in parallel, the stream side: which records of a batch the stream's own fan-out
 * delivers, and which go to partition workers (docs/performance.md, "Large topics in parallel").
 *
 * - A topic with at least `threshold` subscribers (its collection's included: they get its records
 *   too) is large. Counting stops at the threshold: at most `threshold` rows read per topic and
 *   batch, one Query page for the default 5,000. A small topic's count has read all its
 *   subscribers: its first record is delivered from that read (`reuseCounted`), not a second one.
 * - Each record of a large topic becomes one message per partition on a FIFO queue, MessageGroupId
 *   `topic#partition`: SQS hands a group's messages to one worker batch at a time, in order, so
 *   every partition gets the topic's records in order and each subscriber (always in the same
 *   partition, partitions.ts) gets them in order.
 * - A record counts as handed off once all its partition messages are queued: SendMessageBatch
 *   answered, failed entries retried. A topic's records go one after the other, so no message
 *   overtakes an earlier one of its group, even after a retried entry.
 * - A record that could not be queued fails like an undeliverable one: it and its topic's later
 *   records are not handed off, and the caller reports the earliest such record in
 *   batchItemFailures. The retried batch queues some messages again; the deduplication id
 *   (topic, seq, partition) drops them within SQS's 5-minute window, and a subscriber drops a seq
 *   it already has after that (at-least-once, DESIGN §3).
 * - Records that are malformed or skipped stay on the direct path, which logs and counts them.
 */

export interface PartitionMessage {
  readonly groupId: string;
  readonly deduplicationId: string;
  readonly body: string;
}

/** What a partition worker receives: the stream record as it came, and which share of the subscribers is its own. */
export interface PartitionMessageBody {
  readonly partition: number;
  readonly partitions: number;
  readonly record: StreamRecordLike;
}

export interface HandoffDeps {
  /** Every live subscriber of a topic (its collection's included), page by page. */
  readonly subscribers: (topic: string) => AsyncIterable<string[]>;
  /** Queues one record's messages durably (entries retried); throws when some could not be queued. */
  readonly enqueue: (messages: readonly PartitionMessage[]) => Promise<void>;
  readonly threshold: number;
  readonly partitions: number;
  readonly log: Logger;
  readonly clock: () => number;
}

export interface HandoffResult {
  /** Records the stream's fan-out delivers itself, in batch order. */
  readonly direct: StreamRecordLike[];
  /** Batch index of the earliest record that could not be queued (its topic's later ones were held back). */
  readonly failedIndex?: number;
  /** Records queued to partition workers. */
  readonly handedOff: number;
  readonly largeTopics: string[];
  /** Small topics' subscriber pages, read by the count: for `reuseCounted`. */
  readonly counted: Map<string, string[][]>;
}

/**
 * A topic's subscriber pages when it has fewer than `threshold`; undefined (large) as soon as the
 * count reaches it, without reading further.
 */
export async function belowThreshold(pages: AsyncIterable<string[]>, threshold: number): Promise<string[][] | undefined> {
  const read: string[][] = [];
  let n = 0;
  for await (const page of pages) {
    n += page.length;
    if (n >= threshold) return undefined;
    read.push(page);
  }
  return read;
}

/**
 * The direct path's subscriber reader: a small topic's first read in the batch is the one its
 * count already made (below the threshold the count read them all, after the records were
 * written, with the same consistent reads), so counting costs a small topic no extra Query.
 */
export function reuseCounted(counted: Map<string, string[][]>, read: (topic: string) => AsyncIterable<string[]>): (topic: string) => AsyncIterable<string[]> {
  return (topic) => {
    const pages = counted.get(topic);
    if (!pages) return read(topic);
    counted.delete(topic);
    return (async function* () {
      yield* pages;
    })();
  };
}

/**
 * SQS takes 1–128 characters of ASCII letters, digits and punctuation for a group or
 * deduplication id; a topic may be 256 characters of any Unicode. Topics that fit are used as
 * they are (readable in the console), others by their SHA-256.
 */
function topicKey(topic: string): string {
  // ≤ 100 characters, so `key#seq#partition` (seq ≤ 16 digits, partition ≤ 2) stays within 128.
  return /^[\x21-\x7e]{1,100}$/.test(topic) ? topic : createHash('sha256').update(topic).digest('hex');
}

export function partitionMessages(rec: StreamRecordLike, topic: string, seq: number, partitions: number): PartitionMessage[] {
  const key = topicKey(topic);
  const image = rec.dynamodb!;
  const approx = image.ApproximateCreationDateTime;
  // The record as the stream gave it (a Date from the SDK becomes epoch seconds, as Lambda sends it).
  const record: StreamRecordLike = {
    eventName: rec.eventName,
    dynamodb: {
      NewImage: image.NewImage,
      SequenceNumber: image.SequenceNumber,
      ...(approx !== undefined ? { ApproximateCreationDateTime: approx instanceof Date ? approx.getTime() / 1000 : approx } : {}),
    },
  };
  return partitionRanges(partitions).map((r) => {
    const body: PartitionMessageBody = { partition: r.partition, partitions, record };
    return { groupId: `${key}#${r.partition}`, deduplicationId: `${key}#${seq}#${r.partition}`, body: JSON.stringify(body) };
  });
}

export async function handOffLargeTopics(records: readonly StreamRecordLike[], deps: HandoffDeps): Promise<HandoffResult> {
  const now = deps.clock();
  // Topic → its records (batch index, seq), in batch order.
  const byTopic = new Map<string, { index: number; seq: number }[]>();
  records.forEach((rec, index) => {
    const p = parseStreamRecord(rec, now);
    if (p.kind !== 'event') return;
    let list = byTopic.get(p.event.topic);
    if (!list) byTopic.set(p.event.topic, (list = []));
    list.push({ index, seq: p.event.seq });
  });

  const queued = new Set<number>();
  // Records not queued: the one that failed and its topic's later ones (they would overtake it).
  const heldBack = new Set<number>();
  const failed: number[] = [];
  const largeTopics: string[] = [];
  const counted = new Map<string, string[][]>();
  await Promise.all(
    [...byTopic].map(async ([topic, list]) => {
      try {
        const pages = await belowThreshold(deps.subscribers(topic), deps.threshold);
        if (pages) {
          counted.set(topic, pages);
          return;
        }
      } catch (err) {
        // Not knowing the size is not a reason to hold the topic: the direct path reads the
        // subscribers again and fails the record itself if they still cannot be read.
        deps.log.warn("fanout: could not count a topic's subscribers; delivering it directly", { topic, err });
        return;
      }
      largeTopics.push(topic);
      for (const { index, seq } of list) {
        try {
          await deps.enqueue(partitionMessages(records[index]!, topic, seq, deps.partitions));
          queued.add(index);
        } catch (err) {
          deps.log.error("fanout: a large topic's record could not be queued to its partitions; the record will be retried", { topic, seq, err });
          failed.push(index);
          for (const r of list) if (r.index >= index) heldBack.add(r.index);
          return;
        }
      }
    }),
  );
  return {
    direct: records.filter((_, i) => !queued.has(i) && !heldBack.has(i)),
    ...(failed.length ? { failedIndex: Math.min(...failed) } : {}),
    handedOff: queued.size,
    largeTopics,
    counted,
  };
}

/**
 * The batch's reported failure: the earlier, in batch order, of the direct path's (a
 * SequenceNumber) and the handoff's (a batch index). Lambda re-delivers the batch from it.
 */
export function earliestFailure(
  records: readonly StreamRecordLike[],
  direct: readonly { itemIdentifier: string }[],
  failedIndex: number | undefined,
): { itemIdentifier: string }[] {
  const indexes = direct.map((f) => records.findIndex((r) => r.dynamodb?.SequenceNumber === f.itemIdentifier)).filter((i) => i >= 0);
  if (failedIndex !== undefined) indexes.push(failedIndex);
  if (indexes.length === 0) return [];
  return [{ itemIdentifier: String(records[Math.min(...indexes)]!.dynamodb?.SequenceNumber ?? '') }];
}
