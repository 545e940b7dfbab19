import { DeleteMessageBatchCommand, ReceiveMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import type { Logger } from '../lib/log';
import { parseCommand, type Command } from '../lib/upstream/commands';
import { backoffDelay, sleep } from '../lib/retry';
import type { Metrics } from './metrics';

/**
 * Long-polls the command queue. A command that was handled is deleted; one whose handling threw
 * (malformed, DynamoDB unreachable, secret unreadable…) is left in the queue: it becomes visible
 * again after the queue's visibility timeout and, after maxReceiveCount tries, SQS moves it to
 * the dead-letter queue (lib/schema.ts `commands.deadLetter`), where an operator can see it.
 * Losing a command is harmless anyway — the reconcile loop reads the table.
 */

export interface CommandPollerOptions {
  readonly sqs: SQSClient;
  readonly queueUrl: string;
  readonly waitSeconds: number;
  readonly batchSize: number;
  readonly handle: (cmd: Command) => Promise<void>;
  readonly metrics: Metrics;
  readonly log: Logger;
}

export class CommandPoller {
  private abort = new AbortController();
  private loop?: Promise<void>;

  constructor(private readonly opts: CommandPollerOptions) {}

  start(): void {
    this.abort = new AbortController();
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    let failures = 0;
    while (!signal.aborted) {
      let messages: Message[];
      try {
        const r = await this.opts.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: this.opts.queueUrl,
            MaxNumberOfMessages: this.opts.batchSize,
            WaitTimeSeconds: this.opts.waitSeconds,
          }),
          { abortSignal: signal },
        );
        messages = r.Messages ?? [];
        failures = 0;
      } catch (err) {
        if (signal.aborted) break;
        failures++;
        this.opts.log.warn('command receive failed', { err, failures });
        await sleep(backoffDelay(failures, { baseMs: 500, maxMs: 30_000, jitter: 'none' }), signal);
        continue;
      }
      const done: Message[] = [];
      // In order: a close right after an open for the same socket is applied after it (either
      // way the table decides, but in-order handling avoids needless connect/disconnect churn).
      for (const m of messages) {
        try {
          const cmd = parseCommand(m.Body);
          await this.opts.handle(cmd);
          done.push(m);
          this.opts.metrics.inc('commandsHandled');
        } catch (err) {
          this.opts.metrics.inc('commandsFailed');
          this.opts.log.warn('command failed; left for redelivery', { messageId: m.MessageId, err });
        }
      }
      if (done.length) {
        try {
          const r = await this.opts.sqs.send(
            new DeleteMessageBatchCommand({
              QueueUrl: this.opts.queueUrl,
              Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
            }),
          );
          for (const f of r.Failed ?? []) this.opts.log.warn('command delete failed; it will be redelivered', { code: f.Code });
        } catch (err) {
          // Redelivery of a handled command is harmless: commands are idempotent hints.
          this.opts.log.warn('command delete failed; it will be redelivered', { err });
        }
      }
    }
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }
}
