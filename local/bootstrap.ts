import {
  CreateTableCommand,
  DescribeTableCommand,
  UpdateTimeToLiveCommand,
  ResourceInUseException,
  type CreateTableCommandInput,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { CreateQueueCommand, GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import {
  keyAttributes,
  physicalQueueName,
  physicalTableName,
  QUEUE_NAMES,
  QUEUES,
  TABLE_NAMES,
  TABLES,
  type QueueName,
  type TableName,
  type TableSpec,
} from '../lib/schema';

/**
 * Creates every table and queue of `lib/schema.ts` in the local emulators. The same module
 * feeds the Pulumi program, so what runs here is what runs in AWS.
 */

export function toCreateTableInput(spec: TableSpec, tableName: string): CreateTableCommandInput {
  const keySchema = (h: { name: string }, r?: { name: string }) => [
    { AttributeName: h.name, KeyType: 'HASH' as const },
    ...(r ? [{ AttributeName: r.name, KeyType: 'RANGE' as const }] : []),
  ];
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: keyAttributes(spec).map((a) => ({ AttributeName: a.name, AttributeType: a.type })),
    KeySchema: keySchema(spec.hashKey, spec.rangeKey),
    ...(spec.indexes.length
      ? {
          GlobalSecondaryIndexes: spec.indexes.map((i) => ({
            IndexName: i.name,
            KeySchema: keySchema(i.hashKey, i.rangeKey),
            Projection: {
              ProjectionType: i.projection,
              ...(i.nonKeyAttributes ? { NonKeyAttributes: [...i.nonKeyAttributes] } : {}),
            },
          })),
        }
      : {}),
    ...(spec.stream ? { StreamSpecification: { StreamEnabled: true, StreamViewType: spec.stream } } : {}),
  };
}

export interface BootstrappedTables {
  readonly names: Record<TableName, string>;
  /** Stream ARN of every table that has a stream. */
  readonly streamArns: Partial<Record<TableName, string>>;
}

export async function createTables(ddb: DynamoDBClient, prefix: string): Promise<BootstrappedTables> {
  const names = {} as Record<TableName, string>;
  const streamArns: Partial<Record<TableName, string>> = {};
  await Promise.all(
    TABLE_NAMES.map(async (t) => {
      const spec = TABLES[t];
      const name = physicalTableName(prefix, t);
      names[t] = name;
      try {
        await ddb.send(new CreateTableCommand(toCreateTableInput(spec, name)));
      } catch (err) {
        // Data kept on disk between runs: the table is already there.
        if (!(err instanceof ResourceInUseException)) throw err;
      }
      if (spec.ttlAttribute) {
        try {
          await ddb.send(
            new UpdateTimeToLiveCommand({
              TableName: name,
              TimeToLiveSpecification: { Enabled: true, AttributeName: spec.ttlAttribute },
            }),
          );
        } catch (err) {
          // Re-enabling TTL on a persisted table is refused as "already enabled".
          if (!/already enabled/i.test(String((err as Error).message))) throw err;
        }
      }
      const d = await ddb.send(new DescribeTableCommand({ TableName: name }));
      if (spec.stream) streamArns[t] = d.Table?.LatestStreamArn;
    }),
  );
  return { names, streamArns };
}

export async function createQueues(sqs: SQSClient, prefix: string): Promise<Record<QueueName, string>> {
  const urls = {} as Record<QueueName, string>;
  const arns = {} as Record<QueueName, string>;
  // Sequential on purpose: a dead-letter queue must exist before its source queue names it.
  for (const q of QUEUE_NAMES) {
    const spec = QUEUES[q];
    const attributes: Record<string, string> = {
      VisibilityTimeout: String(spec.visibilityTimeoutSeconds),
      MessageRetentionPeriod: String(spec.messageRetentionSeconds),
      ReceiveMessageWaitTimeSeconds: String(spec.receiveWaitTimeSeconds),
      ...(spec.fifo ? { FifoQueue: 'true', ContentBasedDeduplication: 'false' } : {}),
    };
    if (spec.deadLetter) {
      attributes.RedrivePolicy = JSON.stringify({
        deadLetterTargetArn: arns[spec.deadLetter.queue],
        maxReceiveCount: spec.deadLetter.maxReceiveCount,
      });
    }
    const r = await sqs.send(new CreateQueueCommand({ QueueName: physicalQueueName(prefix, q), Attributes: attributes }));
    urls[q] = r.QueueUrl!;
    const a = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: r.QueueUrl, AttributeNames: ['QueueArn'] }));
    arns[q] = a.Attributes!.QueueArn!;
  }
  return urls;
}
