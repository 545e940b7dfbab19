import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { physicalTableName, TABLE_NAMES, TABLES, keyAttributes, type TableName, type TableSpec } from '../../lib/schema';
import type { TableArns } from '../iam';
import { childName, indexArn } from '../naming';
import { outputRecord } from '../outputs';

export interface TablesArgs {
  readonly prefix: string;
  /** Point-in-time recovery and deletion protection. */
  readonly dataProtection: boolean;
  readonly tags?: Record<string, string>;
}

/** Table arguments from the shared schema: nothing here names a key, an index or a TTL. */
export function tableArgs(spec: TableSpec, prefix: string, dataProtection: boolean): aws.dynamodb.TableArgs {
  return {
    name: physicalTableName(prefix, spec.logicalName),
    billingMode: 'PAY_PER_REQUEST',
    hashKey: spec.hashKey.name,
    rangeKey: spec.rangeKey?.name,
    attributes: keyAttributes(spec).map((a) => ({ name: a.name, type: a.type })),
    globalSecondaryIndexes: spec.indexes.map((i) => ({
      name: i.name,
      keySchemas: [
        { attributeName: i.hashKey.name, keyType: 'HASH' },
        ...(i.rangeKey ? [{ attributeName: i.rangeKey.name, keyType: 'RANGE' }] : []),
      ],
      projectionType: i.projection,
      nonKeyAttributes: i.projection === 'INCLUDE' ? [...(i.nonKeyAttributes ?? [])] : undefined,
    })),
    // TTL deletes expired rows up to ~48 h late: a backstop only, readers check expiresAt.
    ttl: spec.ttlAttribute ? { attributeName: spec.ttlAttribute, enabled: true } : undefined,
    streamEnabled: spec.stream !== undefined,
    streamViewType: spec.stream,
    // Encryption at rest is always on in DynamoDB; `enabled: true` selects the AWS managed KMS
    // key (aws/dynamodb) so key use shows up in CloudTrail, at no key cost.
    serverSideEncryption: { enabled: true },
    pointInTimeRecovery: { enabled: dataProtection },
    deletionProtectionEnabled: dataProtection,
  };
}

/** Every table of lib/schema.ts. */
export class Tables extends pulumi.ComponentResource {
  readonly tables: Readonly<Record<TableName, aws.dynamodb.Table>>;
  readonly names: pulumi.Output<Record<TableName, string>>;
  readonly arns: pulumi.Output<Record<TableName, TableArns>>;

  constructor(name: string, args: TablesArgs, opts?: pulumi.ComponentResourceOptions) {
    super('realtime-gateway:infra:Tables', name, {}, opts);
    const tables = {} as Record<TableName, aws.dynamodb.Table>;
    for (const t of TABLE_NAMES) {
      tables[t] = new aws.dynamodb.Table(
        childName(name, t),
        { ...tableArgs(TABLES[t], args.prefix, args.dataProtection), tags: args.tags },
        // Retain on prod: deleting the stack must not delete the data with it.
        { parent: this, retainOnDelete: args.dataProtection },
      );
    }
    this.tables = tables;
    this.names = outputRecord(TABLE_NAMES, (t) => tables[t].name);
    this.arns = pulumi
      .all(TABLE_NAMES.map((t) => pulumi.all([tables[t].arn, tables[t].streamArn])))
      .apply((pairs) =>
        Object.fromEntries(
          pairs.map(([arn, streamArn], i) => {
            const spec = TABLES[TABLE_NAMES[i]!];
            const v: TableArns = { arn, indexArns: spec.indexes.map((ix) => indexArn(arn, ix.name)), streamArn: spec.stream ? streamArn : undefined };
            return [spec.logicalName, v];
          }),
        ) as Record<TableName, TableArns>,
      );
    this.registerOutputs({ names: this.names });
  }
}
