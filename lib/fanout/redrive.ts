import { GetRecordsCommand, GetShardIteratorCommand, type DynamoDBStreamsClient, type _Record } from '@aws-sdk/client-dynamodb-streams';
import { DeleteMessageCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { Logger } from '../log';
import type { HistoryRecord } from '../stores/items';
import { eventAsStreamRecord, parseStreamRecord, type StreamRecordLike } from './stream-record';

/**
 * Redrive of `fanoutDlq`: what fan-out gave up on is delivered again.
 *
 * A DLQ message describes a batch, not its records: the shard, the stream and the range of
 * stream sequence numbers (AWS's on-failure record has them under `DDBStreamBatchInfo`; the
 * local stream poller writes the same facts flat). The stream records of that range give the
 * topics and item seqs; the events themselves come from the history table (what subscribers
 * resume from too) and go through the fan-out handler to every CURRENT subscriber of those
 * topics, in seq order. Subscribers drop
 * what they already have by seq. A message is deleted only once its redrive fully succeeded.
 */

export interface FailedBatch {
  readonly streamArn: string;
  readonly shardId: string;
  readonly startSequenceNumber: string;
  readonly endSequenceNumber: string;
}

/** A DLQ message that does not describe a stream batch; the message names what is missing. */
export class RedriveInputError extends Error {
  readonly code = 'redrive_input_invalid';
  constructor(message: string) {
    super(message);
    this.name = 'RedriveInputError';
  }
}

/** Reads either form: AWS's `{"DDBStreamBatchInfo":{…}}` or the local poller's flat failure. */
export function parseDlqMessage(body: string): FailedBatch {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(body) as Record<string, unknown>;
  } catch {
    throw new RedriveInputError('DLQ message is not JSON');
  }
  const info = (o?.DDBStreamBatchInfo ?? o) as Record<string, unknown>;
  const pick = (...keys: string[]) => {
    for (const k of keys) if (typeof info?.[k] === 'string' && info[k]) return info[k] as string;
    throw new RedriveInputError(`DLQ message has no ${keys.join(' / ')}`);
  };
  const batch = {
    streamArn: pick('streamArn'),
    shardId: pick('shardId'),
    startSequenceNumber: pick('startSequenceNumber', 'firstSequenceNumber'),
    endSequenceNumber: pick('endSequenceNumber', 'lastSequenceNumber'),
  };
  for (const k of ['startSequenceNumber', 'endSequenceNumber'] as const) {
    if (!/^\d+$/.test(batch[k])) throw new RedriveInputError(`DLQ message ${k} ${JSON.stringify(batch[k])} is not a stream sequence number`);
  }
  return batch;
}

/** The topics of a failed batch and, per topic, the item seq range it held (from the stream). */
export async function topicsOfBatch(streams: DynamoDBStreamsClient, batch: FailedBatch, now = Date.now()): Promise<Map<string, { from: number; to: number }>> {
  const end = BigInt(batch.endSequenceNumber);
  let iterator = (
    await streams.send(
      new GetShardIteratorCommand({ StreamArn: batch.streamArn, ShardId: batch.shardId, ShardIteratorType: 'AT_SEQUENCE_NUMBER', SequenceNumber: batch.startSequenceNumber }),
    )
  ).ShardIterator;
  const out = new Map<string, { from: number; to: number }>();
  // An open shard answers empty pages at its tip; the range is complete once past `end`.
  for (let empty = 0; iterator && empty < 3; ) {
    const page = await streams.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 1000 }));
    iterator = page.NextShardIterator;
    const records: _Record[] = page.Records ?? [];
    if (records.length === 0) empty++;
    for (const r of records) {
      if (BigInt(r.dynamodb?.SequenceNumber ?? '0') > end) return out;
      const p = parseStreamRecord(r as StreamRecordLike, now);
      if (p.kind !== 'event') continue;
      const cur = out.get(p.event.topic);
      out.set(p.event.topic, { from: Math.min(cur?.from ?? p.event.seq, p.event.seq), to: Math.max(cur?.to ?? p.event.seq, p.event.seq) });
    }
  }
  return out;
}

/** A history row as the stream record fan-out reads (the item's NEW_IMAGE at that seq). */
export function historyAsStreamRecord(h: HistoryRecord): StreamRecordLike {
  return eventAsStreamRecord(h, `redrive:${h.topic}:${h.seq}`);
}

export interface RedriveDeps {
  readonly sqs: SQSClient;
  readonly streams: DynamoDBStreamsClient;
  readonly dlqUrl: string;
  readonly history: (topic: string, afterSeq: number, uptoSeq: number) => Promise<HistoryRecord[]>;
  /** The fan-out handler (functions/fanout.ts): current subscribers, order, retries, resync. */
  readonly fanout: (event: { Records: StreamRecordLike[] }) => Promise<{ batchItemFailures: { itemIdentifier: string }[] }>;
  readonly log: Logger;
}

export interface RedriveReport {
  messages: number;
  redriven: number;
  /** Messages left in the queue: malformed, or their redrive failed again. */
  kept: number;
  events: number;
  /** Seqs the history table no longer holds (expired): subscribers get a reset snapshot on resume. */
  missingFromHistory: number;
}

/** Drains the DLQ once: every message is redriven and deleted, or kept and reported. */
export async function redrive(deps: RedriveDeps): Promise<RedriveReport> {
  const report: RedriveReport = { messages: 0, redriven: 0, kept: 0, events: 0, missingFromHistory: 0 };
  const seen = new Set<string>();
  for (;;) {
    const r = await deps.sqs.send(new ReceiveMessageCommand({ QueueUrl: deps.dlqUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 300 }));
    const messages = (r.Messages ?? []).filter((m) => !seen.has(m.MessageId ?? ''));
    if (messages.length === 0) return report;
    for (const m of messages) {
      seen.add(m.MessageId ?? '');
      report.messages++;
      try {
        const batch = parseDlqMessage(m.Body ?? '');
        const topics = await topicsOfBatch(deps.streams, batch);
        let failed = false;
        for (const [topic, { from, to }] of topics) {
          const rows = await deps.history(topic, from - 1, to);
          report.missingFromHistory += to - from + 1 - rows.length;
          report.events += rows.length;
          if (rows.length === 0) continue;
          const out = await deps.fanout({ Records: rows.map(historyAsStreamRecord) });
          if (out.batchItemFailures.length) failed = true;
        }
        if (failed) throw new Error('fan-out failed again for part of the batch');
        await deps.sqs.send(new DeleteMessageCommand({ QueueUrl: deps.dlqUrl, ReceiptHandle: m.ReceiptHandle }));
        report.redriven++;
        deps.log.info('redrive: batch redelivered', { shardId: batch.shardId, topics: [...topics.keys()] });
      } catch (err) {
        report.kept++;
        deps.log.error('redrive: message kept in the DLQ', { messageId: m.MessageId, error: (err as Error).message });
      }
    }
  }
}
