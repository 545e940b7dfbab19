import { randomBytes } from 'node:crypto';

/**
 * What AWS authorises for one data-plane request: the IAM action(s) and the resource ARN(s) it
 * evaluates, parsed from the JSON protocol's `X-Amz-Target` and body. Pure functions, so the
 * mapping is tested without a server. One API call can need several grants: a
 * TransactWriteItems is authorised per item (PutItem/UpdateItem/DeleteItem/ConditionCheckItem on
 * each item's table; there is no TransactWriteItems action), a BatchWriteItem on every table it
 * names, a DeleteMessageBatch as DeleteMessage.
 */

export interface AuthzCheck {
  readonly action: string;
  readonly resource: string;
  /**
   * `resource` is this prefix followed by an id the service generates (a connection id): a
   * decision the principal's policy cannot tell such ids apart in is made once for the prefix
   * (id-independence.ts).
   */
  readonly idPrefix?: string;
}

export interface LocalArns {
  readonly partition: string;
  readonly region: string;
  readonly account: string;
}

export function tableArn(a: LocalArns, table: string): string {
  // Newer DynamoDB APIs accept a table ARN wherever a table name goes.
  return table.startsWith('arn:') ? table : `arn:${a.partition}:dynamodb:${a.region}:${a.account}:table/${table}`;
}

export function queueArn(a: LocalArns, queueUrlOrName: string): string {
  const name = queueUrlOrName.split('/').filter(Boolean).pop() ?? queueUrlOrName;
  return `arn:${a.partition}:sqs:${a.region}:${a.account}:${name}`;
}

/**
 * The ARN Secrets Manager gives a secret: its name plus "-" and 6 random characters, which is
 * why policies grant secrets by prefix. Stable per name for the life of the process.
 */
const suffixes = new Map<string, string>();
export function localSecretArn(a: LocalArns, name: string): string {
  let s = suffixes.get(name);
  if (!s) {
    s = randomBytes(6).toString('base64').replace(/[^A-Za-z0-9]/g, 'x').slice(0, 6);
    suffixes.set(name, s);
  }
  return `arn:${a.partition}:secretsmanager:${a.region}:${a.account}:secret:${name}-${s}`;
}

/** A secret id may be its name or its ARN (`…:secret:NAME-AbCdEf`). */
export function secretNameOf(id: string): string {
  const m = /^arn:[^:]+:secretsmanager:[^:]+:\d+:secret:(.+)-[A-Za-z0-9]{6}$/.exec(id);
  return m ? m[1]! : id;
}

type Body = Record<string, unknown>;
const str = (v: unknown): string | undefined => (typeof v === 'string' && v ? v : undefined);

/** Thrown for a request whose target or body cannot be read: answered as a validation error. */
export class UnreadableRequestError extends Error {}

const TRANSACT_ITEM_ACTIONS: Readonly<Record<string, string>> = {
  Put: 'dynamodb:PutItem',
  Update: 'dynamodb:UpdateItem',
  Delete: 'dynamodb:DeleteItem',
  ConditionCheck: 'dynamodb:ConditionCheckItem',
  Get: 'dynamodb:GetItem',
};

/** `DynamoDB_20120810.GetItem` and friends. */
export function dynamodbChecks(a: LocalArns, operation: string, body: Body): AuthzCheck[] {
  const action = `dynamodb:${operation}`;
  const table = str(body.TableName);
  switch (operation) {
    case 'Query':
    case 'Scan': {
      if (!table) throw new UnreadableRequestError(`${operation} without TableName`);
      const index = str(body.IndexName);
      return [{ action, resource: index ? `${tableArn(a, table)}/index/${index}` : tableArn(a, table) }];
    }
    case 'BatchGetItem':
    case 'BatchWriteItem': {
      const items = body.RequestItems;
      if (!items || typeof items !== 'object') throw new UnreadableRequestError(`${operation} without RequestItems`);
      return Object.keys(items).map((t) => ({ action, resource: tableArn(a, t) }));
    }
    case 'TransactWriteItems':
    case 'TransactGetItems': {
      if (!Array.isArray(body.TransactItems)) throw new UnreadableRequestError(`${operation} without TransactItems`);
      return (body.TransactItems as Body[]).flatMap((item) =>
        Object.entries(item ?? {}).flatMap(([kind, v]) => {
          const act = TRANSACT_ITEM_ACTIONS[kind];
          const t = str((v as Body | undefined)?.TableName);
          if (!act || !t) throw new UnreadableRequestError(`${operation} item ${kind} without TableName`);
          return [{ action: act, resource: tableArn(a, t) }];
        }),
      );
    }
    case 'ListTables':
      return [{ action, resource: '*' }];
    default:
      // GetItem, PutItem, UpdateItem, DeleteItem, DescribeTable, CreateTable, UpdateTimeToLive, …
      if (!table) throw new UnreadableRequestError(`${operation} without TableName`);
      return [{ action, resource: tableArn(a, table) }];
  }
}

/** `DynamoDBStreams_20120810.GetRecords` and friends: authorised on the stream ARN. */
export function streamsChecks(operation: string, body: Body): AuthzCheck[] {
  const action = `dynamodb:${operation}`;
  if (operation === 'ListStreams') return [{ action, resource: '*' }];
  // A shard iterator is opaque on AWS; DynamoDB Local's starts with its stream ARN.
  const arn = str(body.StreamArn) ?? str(body.ShardIterator)?.split('|')[0];
  if (!arn?.startsWith('arn:')) throw new UnreadableRequestError(`${operation} names no stream`);
  return [{ action, resource: arn }];
}

/** Batch calls are authorised as their single-message action. */
const SQS_BATCH: Readonly<Record<string, string>> = {
  SendMessageBatch: 'SendMessage',
  DeleteMessageBatch: 'DeleteMessage',
  ChangeMessageVisibilityBatch: 'ChangeMessageVisibility',
};

/** `AmazonSQS.SendMessage` and friends: authorised on the queue ARN. */
export function sqsChecks(a: LocalArns, operation: string, body: Body): AuthzCheck[] {
  const action = `sqs:${SQS_BATCH[operation] ?? operation}`;
  if (operation === 'ListQueues') return [{ action, resource: '*' }];
  const queue = str(body.QueueUrl) ?? str(body.QueueName);
  if (!queue) throw new UnreadableRequestError(`${operation} names no queue`);
  return [{ action, resource: queueArn(a, queue) }];
}

/** `secretsmanager.GetSecretValue` and friends: authorised on the secret's ARN (with its random suffix). */
export function secretsChecks(a: LocalArns, operation: string, body: Body): AuthzCheck[] {
  const id = str(body.SecretId) ?? str(body.Name);
  if (!id) throw new UnreadableRequestError(`${operation} names no secret`);
  return [{ action: `secretsmanager:${operation}`, resource: localSecretArn(a, secretNameOf(id)) }];
}

export type DataPlaneService = 'dynamodb' | 'dynamodbstreams' | 'sqs' | 'secretsmanager';

const TARGET_PREFIXES: Readonly<Record<string, DataPlaneService>> = {
  DynamoDB_20120810: 'dynamodb',
  DynamoDBStreams_20120810: 'dynamodbstreams',
  AmazonSQS: 'sqs',
  secretsmanager: 'secretsmanager',
};

/** Splits `X-Amz-Target` into the service it addresses and the operation. */
export function parseTarget(target: string | undefined): { service: DataPlaneService; operation: string } {
  const m = /^(DynamoDB_20120810|DynamoDBStreams_20120810|AmazonSQS|secretsmanager)\.([A-Za-z]+)$/.exec(target ?? '');
  if (!m) throw new UnreadableRequestError(`unsupported X-Amz-Target ${JSON.stringify(target ?? null)}`);
  const service = TARGET_PREFIXES[m[1]!]!;
  return { service, operation: m[2]! };
}

export function checksFor(a: LocalArns, service: DataPlaneService, operation: string, body: Body): AuthzCheck[] {
  if (service === 'dynamodb') return dynamodbChecks(a, operation, body);
  if (service === 'dynamodbstreams') return streamsChecks(operation, body);
  if (service === 'secretsmanager') return secretsChecks(a, operation, body);
  return sqsChecks(a, operation, body);
}

/** `Credential=AKID/20260101/us-east-1/dynamodb/aws4_request` → the access key id, or undefined. */
export function accessKeyOf(authorization: string | undefined): string | undefined {
  return /Credential=([^/,\s]+)\//.exec(authorization ?? '')?.[1];
}
