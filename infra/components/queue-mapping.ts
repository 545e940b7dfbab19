import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { childName } from '../naming';

export interface QueueMappingArgs {
  readonly function: aws.lambda.Function;
  readonly queueArn: pulumi.Input<string>;
  /** Messages per invocation: 1–10 on a FIFO queue. */
  readonly batchSize: number;
}

/**
 * An SQS queue → Lambda event source mapping with partial batch responses
 * (ReportBatchItemFailures): only the messages the function names come back; on a FIFO queue
 * their group is held until they succeed or go to the queue's dead-letter queue (its redrive
 * policy, lib/schema.ts), so a message group is delivered in order.
 */
export class QueueMapping extends pulumi.ComponentResource {
  readonly mapping: aws.lambda.EventSourceMapping;

  constructor(name: string, args: QueueMappingArgs, opts?: pulumi.ComponentResourceOptions) {
    super('realtime-gateway:infra:QueueMapping', name, {}, opts);
    if (!Number.isInteger(args.batchSize) || args.batchSize < 1 || args.batchSize > 10) {
      throw new Error(`QueueMapping ${name}: batchSize is ${args.batchSize}; a FIFO queue's mapping takes 1 to 10`);
    }
    this.mapping = new aws.lambda.EventSourceMapping(
      childName(name, 'mapping'),
      {
        functionName: args.function.arn,
        eventSourceArn: args.queueArn,
        batchSize: args.batchSize,
        functionResponseTypes: ['ReportBatchItemFailures'],
      },
      { parent: this },
    );
    this.registerOutputs({ uuid: this.mapping.uuid });
  }
}
