import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { physicalQueueName, QUEUE_NAMES, QUEUES, type QueueName } from '../../lib/schema';
import { childName } from '../naming';
import { outputRecord } from '../outputs';

export interface QueuesArgs {
  readonly prefix: string;
  readonly tags?: Record<string, string>;
}

/** Every queue of lib/schema.ts: commands, inbound actions, large topics' partitions, and their dead-letter queues. */
export class Queues extends pulumi.ComponentResource {
  readonly queues: Readonly<Record<QueueName, aws.sqs.Queue>>;
  readonly urls: pulumi.Output<Record<QueueName, string>>;
  readonly arns: pulumi.Output<Record<QueueName, string>>;

  constructor(name: string, args: QueuesArgs, opts?: pulumi.ComponentResourceOptions) {
    super('realtime-gateway:infra:Queues', name, {}, opts);
    const queues = {} as Record<QueueName, aws.sqs.Queue>;
    // QUEUE_NAMES is creation order: a DLQ exists before the queue that redrives to it.
    for (const q of QUEUE_NAMES) {
      const spec = QUEUES[q];
      const dlq = spec.deadLetter ? queues[spec.deadLetter.queue] : undefined;
      if (spec.deadLetter && !dlq) throw new Error(`queue ${q} redrives to ${spec.deadLetter.queue}, which is not created before it`);
      queues[q] = new aws.sqs.Queue(
        childName(name, q),
        {
          name: physicalQueueName(args.prefix, q),
          visibilityTimeoutSeconds: spec.visibilityTimeoutSeconds,
          messageRetentionSeconds: spec.messageRetentionSeconds,
          receiveWaitTimeSeconds: spec.receiveWaitTimeSeconds,
          ...(spec.fifo ? { fifoQueue: true, contentBasedDeduplication: false } : {}),
          // SSE with SQS-owned keys: encrypted at rest, no KMS key cost or key policy to manage.
          sqsManagedSseEnabled: true,
          redrivePolicy: dlq
            ? dlq.arn.apply((deadLetterTargetArn) => JSON.stringify({ deadLetterTargetArn, maxReceiveCount: spec.deadLetter!.maxReceiveCount }))
            : undefined,
          tags: args.tags,
        },
        { parent: this },
      );
    }
    this.queues = queues;
    this.urls = outputRecord(QUEUE_NAMES, (q) => queues[q].url);
    this.arns = outputRecord(QUEUE_NAMES, (q) => queues[q].arn);
    this.registerOutputs({ urls: this.urls });
  }
}
