import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import type { StackConfig } from '../config';
import { childName } from '../naming';

export interface FanoutMappingArgs {
  readonly function: aws.lambda.Function;
  readonly streamArn: pulumi.Input<string>;
  readonly deadLetterQueueArn: pulumi.Input<string>;
  readonly settings: StackConfig['fanout'];
}

/**
 * The items stream → fanout Lambda event source mapping. Partial batch responses
 * (ReportBatchItemFailures) retry only from the first failed record; bisect-on-error isolates a
 * poison record; retries and record age are bounded so one bad batch cannot hold the shard
 * (and every topic behind it) for the stream's 24 h retention; what is given up on goes to the
 * fan-out DLQ as a pointer to the shard range (DynamoDB Streams on-failure records carry
 * metadata, not the records).
 */
export class FanoutMapping extends pulumi.ComponentResource {
  readonly mapping: aws.lambda.EventSourceMapping;

  constructor(name: string, args: FanoutMappingArgs, opts?: pulumi.ComponentResourceOptions) {
    super('realtime-gateway:infra:FanoutMapping', name, {}, opts);
    const s = args.settings;
    this.mapping = new aws.lambda.EventSourceMapping(
      childName(name, 'mapping'),
      {
        functionName: args.function.arn,
        eventSourceArn: args.streamArn,
        // LATEST: a new deployment starts fanning out current changes, not a day of backlog.
        startingPosition: 'LATEST',
        batchSize: s.batchSize,
        maximumBatchingWindowInSeconds: s.batchWindowSeconds,
        parallelizationFactor: s.parallelizationFactor,
        functionResponseTypes: ['ReportBatchItemFailures'],
        bisectBatchOnFunctionError: true,
        maximumRetryAttempts: s.maxRetryAttempts,
        maximumRecordAgeInSeconds: s.maxRecordAgeSeconds,
        destinationConfig: { onFailure: { destinationArn: args.deadLetterQueueArn } },
      },
      { parent: this },
    );
    this.registerOutputs({ uuid: this.mapping.uuid });
  }
}
