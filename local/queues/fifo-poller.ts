import { DeleteMessageBatchCommand, ReceiveMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import { invokeLambda, type AnyHandler } from '../lambda/invoke';
import type { Logger } from '../../lib/log';
import { backoffDelay, sleep } from '../../lib/retry';

/**
 * Feeds a FIFO queue to a handler the way Lambda's SQS event source mapping does, with the
 * FIFO guarantees the local SQS emulator does not enforce itself (local/sqs.ts):
 * - one lane per MessageGroupId: a group's messages go to the handler in queue order, one batch
 *   at a time, while other groups run side by side;
 * - ReportBatchItemFailures: the messages the handler names stay, the others are deleted; the
 *   group is held (its later messages wait) and handed out again from its first failed message
 *   after a backoff, as SQS does after the visibility timeout;
 * - after `maxReceiveCount` receives a message goes to the dead-letter queue (`deadLetter`, the
 *   queue's redrive policy; SQS does that itself, not the function's role) and its group moves on;
 * - a thrown error fails the whole batch.
 * Polling uses the function's own clients (ReceiveMessage, DeleteMessage: its grants on AWS).
 */

export interface FifoPollerOptions {
  readonly sqs: SQSClient;
  readonly queueUrl: string;
  readonly queueArn?: string;
  readonly handler: AnyHandler;
  readonly functionName: string;
  /** Messages per invocation, 1–10 (a FIFO mapping's limit). */
  readonly batchSize?: number;
  readonly maxReceiveCount: number;
  readonly deadLetter?: (message: Message) => Promise<void>;
  /**
   * Pause after a receive that found the queue empty; it doubles while the queue stays empty, up
   * to `maxIdlePollMs` (default 250), so an idle stack does not spend CPU polling (every receive
   * is a signed call through the local IAM gateway), and drops back on the first message.
   */
  readonly idlePollMs?: number;
  readonly maxIdlePollMs?: number;
  /** Base of the exponential backoff before a failed group is handed out again. */
  readonly retryBaseMs?: number;
  readonly timeoutMs?: number;
  readonly log?: Logger;
  readonly region?: string;
}

export interface FifoPollerStats {
  invocations: number;
  messages: number;
  retries: number;
  deadLettered: number;
}

interface Held {
  message: Message;
  receives: number;
}

export class FifoQueuePoller {
  readonly stats: FifoPollerStats = { invocations: 0, messages: 0, retries: 0, deadLettered: 0 };
  private readonly groups = new Map<string, Held[]>();
  private readonly lanes = new Map<string, Promise<void>>();
  /** Message ids held by a lane: a message the emulator hands out again (visibility timeout) is not taken twice. */
  private readonly held = new Map<string, Held>();
  private readonly stopping = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(private readonly opts: FifoPollerOptions) {
    const b = opts.batchSize ?? 10;
    if (!Number.isInteger(b) || b < 1 || b > 10) throw new RangeError(`batchSize is ${b}; a FIFO queue's mapping takes 1 to 10`);
  }

  start(): void {
    this.loop ??= this.poll();
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    await this.loop;
    await Promise.all(this.lanes.values());
  }

  private get stopped(): boolean {
    return this.stopping.signal.aborted;
  }

  private async poll(): Promise<void> {
    const base = this.opts.idlePollMs ?? 20;
    let idle = base;
    while (!this.stopped) {
      let messages: Message[] = [];
      try {
        const r = await this.opts.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: this.opts.queueUrl,
            MaxNumberOfMessages: 10,
            // Short polls: the emulator's long poll waits its full time even with messages there.
            WaitTimeSeconds: 0,
            AttributeNames: ['All'],
            MessageSystemAttributeNames: ['All'],
          }),
          { abortSignal: this.stopping.signal },
        );
        messages = r.Messages ?? [];
      } catch (err) {
        if (this.stopped) return;
        this.opts.log?.warn('fifo poller: receive failed', { queueUrl: this.opts.queueUrl, err });
      }
      for (const m of messages) this.take(m);
      if (messages.length > 0) {
        idle = base;
      } else {
        await sleep(idle, this.stopping.signal);
        idle = Math.min(idle * 2, Math.max(base, this.opts.maxIdlePollMs ?? 250));
      }
    }
  }

  private take(m: Message): void {
    if (!m.MessageId) return;
    const known = this.held.get(m.MessageId);
    if (known) {
      // Handed out again: only the latest receipt handle deletes it.
      known.message = m;
      return;
    }
    const h: Held = { message: m, receives: 0 };
    this.held.set(m.MessageId, h);
    const group = m.Attributes?.MessageGroupId ?? '';
    let pending = this.groups.get(group);
    if (!pending) this.groups.set(group, (pending = []));
    pending.push(h);
    if (!this.lanes.has(group)) {
      const lane = this.drain(group).finally(() => this.lanes.delete(group));
      this.lanes.set(group, lane);
    }
  }

  /** Runs a group's messages until none is left (or the poller stops). */
  private async drain(group: string): Promise<void> {
    const pending = this.groups.get(group)!;
    let failures = 0;
    while (pending.length > 0 && !this.stopped) {
      const batch = pending.slice(0, this.opts.batchSize ?? 10);
      for (const h of batch) h.receives++;
      const failed = await this.invoke(batch);
      const done = batch.filter((h) => !failed.has(h.message.MessageId!));
      const dead = batch.filter((h) => failed.has(h.message.MessageId!) && h.receives >= this.opts.maxReceiveCount);
      for (const h of dead) {
        this.stats.deadLettered++;
        this.opts.log?.error('fifo poller: message failed maxReceiveCount times; sent to the dead-letter queue', {
          functionName: this.opts.functionName,
          messageId: h.message.MessageId,
          group,
        });
        await this.opts.deadLetter?.(h.message);
      }
      await this.remove(pending, [...done, ...dead]);
      if (failed.size > dead.length) {
        this.stats.retries++;
        await sleep(backoffDelay(failures++, { baseMs: this.opts.retryBaseMs ?? 100, maxMs: 2000, jitter: 'equal' }), this.stopping.signal);
      } else {
        failures = 0;
      }
    }
    if (pending.length === 0) this.groups.delete(group);
  }

  /** The ids of the batch's messages that failed: those the handler reported, or all if it threw. */
  private async invoke(batch: Held[]): Promise<Set<string>> {
    this.stats.invocations++;
    this.stats.messages += batch.length;
    const event = { Records: batch.map((h) => this.toRecord(h)) };
    try {
      const out = (await invokeLambda(this.opts.handler, event, {
        functionName: this.opts.functionName,
        timeoutMs: this.opts.timeoutMs ?? 60_000,
        region: this.opts.region,
      })) as { batchItemFailures?: { itemIdentifier?: string }[] } | undefined;
      const ids = new Set(batch.map((h) => h.message.MessageId!));
      const failed = new Set((out?.batchItemFailures ?? []).map((f) => String(f.itemIdentifier)));
      // As in AWS: an identifier that names no message of the batch fails the whole batch.
      if ([...failed].some((id) => !ids.has(id))) return ids;
      // FIFO: a failed message holds every later message of its group.
      const first = batch.findIndex((h) => failed.has(h.message.MessageId!));
      return new Set(first < 0 ? [] : batch.slice(first).map((h) => h.message.MessageId!));
    } catch (err) {
      this.opts.log?.warn('fifo poller: invocation failed', { functionName: this.opts.functionName, err });
      return new Set(batch.map((h) => h.message.MessageId!));
    }
  }

  private async remove(pending: Held[], gone: Held[]): Promise<void> {
    if (gone.length === 0) return;
    const ids = new Set(gone.map((h) => h.message.MessageId!));
    for (let i = 0; i < gone.length; i += 10) {
      const chunk = gone.slice(i, i + 10);
      try {
        await this.opts.sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: this.opts.queueUrl,
            Entries: chunk.map((h, j) => ({ Id: String(j), ReceiptHandle: h.message.ReceiptHandle })),
          }),
        );
      } catch (err) {
        // As on AWS: an undeleted message comes back after its visibility timeout (at-least-once).
        this.opts.log?.warn('fifo poller: delete failed', { functionName: this.opts.functionName, err });
      }
    }
    for (let i = pending.length - 1; i >= 0; i--) if (ids.has(pending[i]!.message.MessageId!)) pending.splice(i, 1);
    for (const id of ids) this.held.delete(id);
  }

  /** An SQS event record as Lambda delivers it. */
  private toRecord(h: Held) {
    const m = h.message;
    return {
      messageId: m.MessageId,
      receiptHandle: m.ReceiptHandle,
      body: m.Body ?? '',
      attributes: { ...(m.Attributes ?? {}), ApproximateReceiveCount: String(h.receives) },
      messageAttributes: {},
      md5OfBody: m.MD5OfBody,
      eventSource: 'aws:sqs',
      eventSourceARN: this.opts.queueArn ?? '',
      awsRegion: this.opts.region ?? 'us-east-1',
    };
  }
}
