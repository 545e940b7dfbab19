import { createHash } from 'node:crypto';
import type { Logger } from '../log';
import type { EventFields } from '../subscriber/frames';
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
 * - A message carries the record's event as plain JSON (topic, seq, data, ts: what the stream's
 *   fan-out would deliver), never the stream record: its DynamoDB JSON inflates data several times
 *   (`7` → `{"N":"7"}`), and a 400 KB item would not fit a queue message. An event whose JSON still
 *   does not fit (`MAX_PARTITION_MESSAGE_BYTES`; its frame is then over API Gateway's 128 KB too)
 *   goes without its data, `truncated`, and the worker sends it as the placeholder the stream's
 *   fan-out sends for an event over the message limit: the seq stays, the topic does not stall.
 */

/**
 * Largest partition message body, in UTF-8 bytes as SQS counts it: 256 KiB, the queue's
 * MaximumMessageSize (infra/components/queues.ts sets none, and the provider's default is 262,144;
 * AWS has allowed queues up to 1 MiB since 2025, but a queue keeps its own setting). The body is
 * measured whole, envelope included, and no message attributes are sent (they would count too),
 * so no further headroom is needed. Also the budget of one SendMessageBatch (partition-queue.ts):
 * SQS limits the sum of a batch's bodies, 256 KiB before 2025 and 1 MiB since.
 */
export const MAX_PARTITION_MESSAGE_BYTES = 262_144;

export interface PartitionMessage {
  readonly groupId: string;
  readonly deduplicationId: string;
  readonly body: string;
}

/** What a partition worker receives: the record's event, and which share of the subscribers is its own. */
export interface PartitionMessageBody {
  readonly partition: number;
  readonly partitions: number;
  readonly event: EventFields;
  /** The event's data did not fit a queue message (`data` is null): deliver the truncated placeholder. */
  readonly truncated?: true;
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

/**
 * SQS refuses a body with a character XML 1.0 does not allow. JSON.stringify escapes the control
 * characters and lone surrogates among them, but not U+FFFE and U+FFFF: escaped here (they can
 * only occur inside JSON strings), so data holding them cannot make its record unqueueable.
 */
function sqsSafeJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\ufffe\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
}

/** One message per partition, all carrying the same event: in full, or truncated when its body would exceed the limit. */
export function partitionMessages(event: EventFields, partitions: number): PartitionMessage[] {
  const key = topicKey(event.topic);
  const ranges = partitionRanges(partitions);
  // Serialised once per record (data may be hundreds of KB); only the partition differs per message.
  const bodies = (json: string, truncated: boolean) =>
    ranges.map((r) => `{"partition":${r.partition},"partitions":${partitions},"event":${json}${truncated ? ',"truncated":true' : ''}}`);
  let bodyOf = bodies(sqsSafeJson({ topic: event.topic, seq: event.seq, data: event.data ?? null, ts: event.ts }), false);
  // The last partition's body is the longest (most digits); every partition gets the same choice.
  if (Buffer.byteLength(bodyOf[ranges.length - 1]!, 'utf8') > MAX_PARTITION_MESSAGE_BYTES) {
    bodyOf = bodies(sqsSafeJson({ topic: event.topic, seq: event.seq, data: null, ts: event.ts }), true);
  }
  return ranges.map((r, i) => ({ groupId: `${key}#${r.partition}`, deduplicationId: `${key}#${event.seq}#${r.partition}`, body: bodyOf[i]! }));
}

export async function handOffLargeTopics(records: readonly StreamRecordLike[], deps: HandoffDeps): Promise<HandoffResult> {
  const now = deps.clock();
  // Topic → its records (batch index, seq), in batch order.
  const byTopic = new Map<string, { index: number; event: EventFields }[]>();
  records.forEach((rec, index) => {
    const p = parseStreamRecord(rec, now);
    if (p.kind !== 'event') return;
    let list = byTopic.get(p.event.topic);
    if (!list) byTopic.set(p.event.topic, (list = []));
    list.push({ index, event: p.event });
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
      for (const { index, event } of list) {
        const seq = event.seq;
        try {
          await deps.enqueue(partitionMessages(event, deps.partitions));
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
