import type { FunctionSpec, TableAccess } from '../lib/functions';
import type { QueueName, TableName } from '../lib/schema';
import { logStreamsArn } from './naming';

/**
 * Least-privilege policy documents, built from lib/functions.ts by pure functions over resolved
 * ARNs (the components call them inside `pulumi.all(...).apply`). `policyProblems` is the
 * checker both the program (before it creates a policy) and the tests use.
 */

export interface Statement {
  readonly Sid?: string;
  readonly Effect: 'Allow';
  readonly Action: string[];
  readonly Resource: string[];
  readonly Condition?: Record<string, Record<string, string | string[]>>;
}

export interface PolicyDocument {
  readonly Version: '2012-10-17';
  readonly Statement: Statement[];
}

export interface TableArns {
  readonly arn: string;
  /** One ARN per GSI, in schema order. */
  readonly indexArns: readonly string[];
  readonly streamArn?: string;
}

/**
 * DynamoDB actions per access level.
 *
 * - read: GetItem/BatchGetItem/Query on the table, Query on each named index.
 * - scan: Scan on the table, for the one function that lists a whole table (the control API's
 *   paginated `GET /websockets`, lib/upstream/store.ts).
 * - write: PutItem/UpdateItem/BatchWriteItem, plus ConditionCheckItem: ItemStore writes items and
 *   history in one TransactWriteItems, which IAM authorises through these per-item actions
 *   (there is no TransactWriteItems action).
 * - delete: DeleteItem, BatchWriteItem (stale-connection cleanup in chunks of 25).
 * - stream: DescribeStream/GetRecords/GetShardIterator/ListStreams on the stream ARN — the set
 *   AWS's own policy example for a Lambda reading a DynamoDB stream grants, scoped to the one
 *   stream (docs: "IAM policy to allow an AWS Lambda function to access DynamoDB stream
 *   records"); the event source mapping validates the role against it.
 */
export const DYNAMODB_ACTIONS: Readonly<Record<TableAccess, { table: readonly string[]; index: readonly string[]; stream: readonly string[] }>> = {
  read: { table: ['dynamodb:BatchGetItem', 'dynamodb:GetItem', 'dynamodb:Query'], index: ['dynamodb:Query'], stream: [] },
  scan: { table: ['dynamodb:Scan'], index: [], stream: [] },
  write: {
    table: ['dynamodb:BatchWriteItem', 'dynamodb:ConditionCheckItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
    index: [],
    stream: [],
  },
  delete: { table: ['dynamodb:BatchWriteItem', 'dynamodb:DeleteItem'], index: [], stream: [] },
  stream: { table: [], index: [], stream: ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator', 'dynamodb:ListStreams'] },
};

export const SQS_ACTIONS: Readonly<Record<'send' | 'receive', readonly string[]>> = {
  send: ['sqs:GetQueueAttributes', 'sqs:SendMessage'],
  receive: ['sqs:ChangeMessageVisibility', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes', 'sqs:ReceiveMessage'],
};

/** `write` is what the control API does (lib/upstream/secrets-aws.ts: CreateSecret, then PutSecretValue). */
export const SECRETS_ACTIONS: Readonly<Record<'read' | 'write', readonly string[]>> = {
  read: ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue'],
  write: ['secretsmanager:CreateSecret', 'secretsmanager:DescribeSecret', 'secretsmanager:PutSecretValue'],
};

const uniqSorted = (xs: Iterable<string>) => [...new Set(xs)].sort();

function sidOf(...parts: string[]): string {
  return parts
    .join(' ')
    .replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ? c.toUpperCase() : ''))
    .replace(/^./, (c) => c.toUpperCase());
}

/** Statements for one table and the access levels a function declares on it. */
export function dynamoStatements(table: TableName, access: readonly TableAccess[], arns: TableArns): Statement[] {
  const tableActions = uniqSorted(access.flatMap((a) => DYNAMODB_ACTIONS[a].table));
  const indexActions = uniqSorted(access.flatMap((a) => DYNAMODB_ACTIONS[a].index));
  const streamActions = uniqSorted(access.flatMap((a) => DYNAMODB_ACTIONS[a].stream));
  const out: Statement[] = [];
  if (tableActions.length) out.push({ Sid: sidOf(table, 'table'), Effect: 'Allow', Action: tableActions, Resource: [arns.arn] });
  if (indexActions.length && arns.indexArns.length) {
    out.push({ Sid: sidOf(table, 'indexes'), Effect: 'Allow', Action: indexActions, Resource: [...arns.indexArns] });
  }
  if (streamActions.length) {
    if (!arns.streamArn) throw new Error(`table ${table} has no stream, but stream access was requested`);
    out.push({ Sid: sidOf(table, 'stream'), Effect: 'Allow', Action: streamActions, Resource: [arns.streamArn] });
  }
  return out;
}

export interface FunctionPolicyArns {
  readonly tables: Readonly<Record<TableName, TableArns>>;
  readonly queues: Readonly<Record<QueueName, string>>;
  /** `{api}/{stage}/POST/@connections/*` */
  readonly manageConnections: string;
  /** The function's own log group ARN. */
  readonly logGroup: string;
  /** `arn:…:secret:{prefix}*` */
  readonly secretPrefix: string;
}

/** The complete inline policy of one function's role, derived from its FunctionSpec. */
export function functionPolicy(spec: FunctionSpec, arns: FunctionPolicyArns): PolicyDocument {
  const st: Statement[] = [
    // No CreateLogGroup: the program creates the group (with retention) before the function.
    { Sid: 'OwnLogs', Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: [logStreamsArn(arns.logGroup)] },
  ];
  for (const [table, access] of Object.entries(spec.tables) as [TableName, readonly TableAccess[]][]) {
    if (access.length) st.push(...dynamoStatements(table, access, arns.tables[table]));
  }
  for (const [queue, ops] of Object.entries(spec.queues) as [QueueName, readonly ('send' | 'receive')[]][]) {
    if (ops.length) st.push({ Sid: sidOf(queue, 'queue'), Effect: 'Allow', Action: uniqSorted(ops.flatMap((o) => SQS_ACTIONS[o])), Resource: [arns.queues[queue]] });
  }
  if (spec.manageConnections) {
    // DeleteConnection is authorised on the DELETE form of the same resource.
    const resources = spec.deleteConnections
      ? [arns.manageConnections, arns.manageConnections.replace(/\/POST\/@connections\/\*$/, '/DELETE/@connections/*')]
      : [arns.manageConnections];
    st.push({ Sid: 'ManageConnections', Effect: 'Allow', Action: ['execute-api:ManageConnections'], Resource: resources });
  }
  if (spec.secrets) {
    st.push({ Sid: 'UpstreamSecrets', Effect: 'Allow', Action: [...SECRETS_ACTIONS[spec.secrets]], Resource: [arns.secretPrefix] });
  }
  return { Version: '2012-10-17', Statement: st };
}

export interface AgentPolicyArns {
  readonly tables: Readonly<Record<TableName, TableArns>>;
  readonly commandQueue: string;
  readonly secretPrefix: string;
  /** Sink credentials secret, when a sink is configured. */
  readonly sinkSecret?: string;
  readonly bundleObject: string;
  readonly metricsNamespace: string;
}

/**
 * The agent instance role: poll the command queue, own upstream rows (claim/renew/release
 * leases, health counters, reconcile query on the index), persist upstream messages through
 * ItemStore (items + history), read credentials by reference, fetch its own bundle.
 */
export function agentPolicy(arns: AgentPolicyArns): PolicyDocument {
  const st: Statement[] = [
    { Sid: 'CommandQueue', Effect: 'Allow', Action: [...SQS_ACTIONS.receive], Resource: [arns.commandQueue] },
    ...dynamoStatements('upstreams', ['read', 'write'], arns.tables.upstreams),
    ...dynamoStatements('items', ['read', 'write'], arns.tables.items),
    ...dynamoStatements('history', ['write'], arns.tables.history),
    { Sid: 'UpstreamSecrets', Effect: 'Allow', Action: [...SECRETS_ACTIONS.read], Resource: [arns.secretPrefix] },
    { Sid: 'AgentBundle', Effect: 'Allow', Action: ['s3:GetObject'], Resource: [arns.bundleObject] },
    {
      // PutMetricData has no resource type: AWS only accepts Resource "*". The namespace
      // condition is the documented way to scope it.
      Sid: 'Metrics',
      Effect: 'Allow',
      Action: ['cloudwatch:PutMetricData'],
      Resource: ['*'],
      Condition: { StringEquals: { 'cloudwatch:namespace': arns.metricsNamespace } },
    },
  ];
  if (arns.sinkSecret) st.push({ Sid: 'SinkCredentials', Effect: 'Allow', Action: [...SECRETS_ACTIONS.read], Resource: [arns.sinkSecret] });
  return { Version: '2012-10-17', Statement: st };
}

/** Actions AWS only authorises on Resource "*", with the condition key that must scope them. */
export const STAR_RESOURCE_ACTIONS: Readonly<Record<string, string>> = {
  'cloudwatch:PutMetricData': 'cloudwatch:namespace',
};

/**
 * Resource ARNs that may contain a wildcard, because the last segment is chosen at run time:
 * log streams of one group, connections of one stage, one HTTP route on any stage of one API,
 * secrets under one prefix (plus the random suffix Secrets Manager appends). Anything else with `*` or `?` is a finding.
 */
const SCOPED_WILDCARDS: readonly RegExp[] = [
  /^arn:[\w-]+:logs:[\w-]+:\d{12}:log-group:[^*?]+:\*$/,
  /^arn:[\w-]+:execute-api:[\w-]+:\d{12}:[a-z0-9]+\/[\w-]+\/(POST|DELETE)\/@connections\/\*$/,
  /^arn:[\w-]+:execute-api:[\w-]+:\d{12}:[a-z0-9]+\/\*\/(GET|POST|PUT|PATCH|DELETE)\/[^*?]*$/,
  /^arn:[\w-]+:secretsmanager:[\w-]+:\d{12}:secret:[^*?]+\/[^*?]*\*$/,
];

/** Every reason this document is broader than it should be; empty when it is scoped. */
export function policyProblems(doc: unknown): string[] {
  const problems: string[] = [];
  const d = doc as { Version?: unknown; Statement?: unknown };
  if (d?.Version !== '2012-10-17') problems.push('Version is not 2012-10-17');
  const statements = Array.isArray(d?.Statement) ? d.Statement : d?.Statement ? [d.Statement] : [];
  if (statements.length === 0) problems.push('no statements');
  statements.forEach((s: Record<string, unknown>, i: number) => {
    const at = `Statement[${i}]${s.Sid ? ` (${s.Sid})` : ''}`;
    if (s.Effect === 'Deny') return; // a Deny only narrows (e.g. the bucket's TLS-only rule)
    if (s.Effect !== 'Allow') problems.push(`${at} has Effect ${JSON.stringify(s.Effect)}`);
    if ('NotAction' in s || 'NotResource' in s || 'NotPrincipal' in s) problems.push(`${at} uses NotAction/NotResource/NotPrincipal`);
    const actions = ([] as unknown[]).concat(s.Action ?? []);
    const resources = ([] as unknown[]).concat(s.Resource ?? []);
    if (actions.length === 0) problems.push(`${at} has no Action`);
    if (resources.length === 0 && s.Effect === 'Allow') problems.push(`${at} has no Resource`);
    for (const a of actions) {
      if (typeof a !== 'string' || !/^[a-z0-9-]+:[A-Za-z0-9]+$/.test(a)) problems.push(`${at} action ${JSON.stringify(a)} is not one exact action (no wildcards)`);
    }
    for (const r of resources) {
      if (typeof r !== 'string') {
        problems.push(`${at} resource ${JSON.stringify(r)} is not a string`);
      } else if (r === '*') {
        const cond = s.Condition as Record<string, Record<string, unknown>> | undefined;
        for (const a of actions as string[]) {
          const requiredKey = STAR_RESOURCE_ACTIONS[a];
          if (!requiredKey) problems.push(`${at} grants ${a} on Resource "*"`);
          else if (!cond || !Object.values(cond).some((c) => c && requiredKey in c)) {
            problems.push(`${at} grants ${a} on Resource "*" without a ${requiredKey} condition`);
          }
        }
      } else if (/[*?]/.test(r)) {
        if (/\/index\/\*/.test(r)) problems.push(`${at} resource ${r} grants every index; name each index ARN`);
        else if (!SCOPED_WILDCARDS.some((p) => p.test(r))) problems.push(`${at} resource ${r} has a wildcard outside the scoped forms`);
      } else if (!r.startsWith('arn:')) {
        problems.push(`${at} resource ${JSON.stringify(r)} is not an ARN`);
      }
    }
  });
  return problems;
}

/** Throws when a document the program is about to create is not scoped (validate before creating). */
export function assertScoped(name: string, doc: PolicyDocument): string {
  const problems = policyProblems(doc);
  if (problems.length) throw new Error(`IAM policy ${name} is not least-privilege:\n  ${problems.join('\n  ')}`);
  return JSON.stringify(doc);
}

/** Trust policy for a service role (lambda.amazonaws.com, ec2.amazonaws.com). */
export function assumeRolePolicy(service: string): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Principal: { Service: service }, Action: 'sts:AssumeRole' }],
  });
}
