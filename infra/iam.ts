import { AGENT, type ConnectionsVerb, type FunctionSpec, type PrincipalAccess, type QueueAction, type TableAccess } from '../lib/functions';
import type { QueueName, TableName } from '../lib/schema';
import { logStreamsArn, manageConnectionsArn } from './naming';

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
 * The stream read of an event source mapping, on the one stream ARN: the actions Lambda's
 * documentation lists for a DynamoDB stream mapping's execution role. `dynamodb:ListStreams`
 * (also in that list) is not here: the Service Authorization Reference gives it no resource
 * type, so AWS only ever matches it against Resource "*" (on the stream ARN it can never match);
 * it is granted in its own statement by `streamListStatement`.
 */
export const STREAM_READ_ACTIONS: readonly string[] = ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator'];

const uniqSorted = (xs: Iterable<string>) => [...new Set(xs)].sort();

function sidOf(...parts: string[]): string {
  return parts
    .join(' ')
    .replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ? c.toUpperCase() : ''))
    .replace(/^./, (c) => c.toUpperCase());
}

/**
 * Statements for one table and exactly the calls a principal declares on it (lib/functions.ts):
 * table actions on the table ARN, `Query:INDEX` on that index's ARN only, `stream` on the stream.
 */
export function dynamoStatements(table: TableName, access: readonly TableAccess[], arns: TableArns): Statement[] {
  const tableActions = uniqSorted(access.filter((a) => a !== 'stream' && !a.includes(':')).map((a) => `dynamodb:${a}`));
  const indexes = uniqSorted(access.filter((a) => a.startsWith('Query:')).map((a) => a.slice('Query:'.length)));
  const out: Statement[] = [];
  if (tableActions.length) out.push({ Sid: sidOf(table, 'table'), Effect: 'Allow', Action: tableActions, Resource: [arns.arn] });
  if (indexes.length) {
    const indexArns = indexes.map((ix) => {
      const arn = arns.indexArns.find((x) => x.endsWith(`/index/${ix}`));
      if (!arn) throw new Error(`table ${table} has no index ${ix} (lib/schema.ts), but Query:${ix} was requested`);
      return arn;
    });
    out.push({ Sid: sidOf(table, 'indexes'), Effect: 'Allow', Action: ['dynamodb:Query'], Resource: indexArns });
  }
  if (access.includes('stream')) {
    if (!arns.streamArn) throw new Error(`table ${table} has no stream, but stream access was requested`);
    out.push({ Sid: sidOf(table, 'stream'), Effect: 'Allow', Action: [...STREAM_READ_ACTIONS], Resource: [arns.streamArn] });
  }
  return out;
}

/** ListStreams for a stream reader, granted the one way AWS evaluates it (see STREAM_READ_ACTIONS). */
function streamListStatement(access: PrincipalAccess): Statement[] {
  const readsStream = Object.values(access.tables).some((a) => a?.includes('stream'));
  return readsStream ? [{ Sid: 'ListStreams', Effect: 'Allow', Action: ['dynamodb:ListStreams'], Resource: ['*'] }] : [];
}

/** Table, queue, `@connections` and secret statements of one principal's declared access. */
function accessStatements(access: PrincipalAccess, arns: AccessArns): Statement[] {
  const st: Statement[] = [];
  for (const [table, calls] of Object.entries(access.tables) as [TableName, readonly TableAccess[]][]) {
    if (calls.length) st.push(...dynamoStatements(table, calls, arns.tables[table]));
  }
  st.push(...streamListStatement(access));
  for (const [queue, calls] of Object.entries(access.queues) as [QueueName, readonly QueueAction[]][]) {
    if (!calls.length) continue;
    const arn = arns.queues[queue];
    if (!arn) throw new Error(`queue ${queue} access was requested, but no ARN was given for it`);
    st.push({ Sid: sidOf(queue, 'queue'), Effect: 'Allow', Action: uniqSorted(calls.map((c) => `sqs:${c}`)), Resource: [arn] });
  }
  if (access.manageConnections.length) {
    if (!arns.connections) throw new Error('@connections access was requested, but no WebSocket API stage ARN was given');
    st.push({
      Sid: 'ManageConnections',
      Effect: 'Allow',
      Action: ['execute-api:ManageConnections'],
      Resource: uniqSorted(access.manageConnections).map((verb) => manageConnectionsArn(arns.connections!.executionArn, arns.connections!.stage, verb as ConnectionsVerb)),
    });
  }
  if (access.secrets?.length) {
    st.push({ Sid: 'UpstreamSecrets', Effect: 'Allow', Action: uniqSorted(access.secrets.map((a) => `secretsmanager:${a}`)), Resource: [arns.secretPrefix] });
  }
  return st;
}

interface AccessArns {
  readonly tables: Readonly<Record<TableName, TableArns>>;
  readonly queues: Readonly<Partial<Record<QueueName, string>>>;
  readonly connections?: { readonly executionArn: string; readonly stage: string };
  readonly secretPrefix: string;
}

export interface FunctionPolicyArns {
  readonly tables: Readonly<Record<TableName, TableArns>>;
  readonly queues: Readonly<Record<QueueName, string>>;
  /** The WebSocket API's execution ARN and stage: `{api}/{stage}/{VERB}/@connections/*` per declared verb. */
  readonly connections: { readonly executionArn: string; readonly stage: string };
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
  st.push(...accessStatements(spec, arns));
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
    ...accessStatements(AGENT, { tables: arns.tables, queues: { commands: arns.commandQueue }, secretPrefix: arns.secretPrefix }),
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
  // userdata.ts reads it once at boot (get-secret-value).
  if (arns.sinkSecret) st.push({ Sid: 'SinkCredentials', Effect: 'Allow', Action: ['secretsmanager:GetSecretValue'], Resource: [arns.sinkSecret] });
  return { Version: '2012-10-17', Statement: st };
}

/**
 * The agent's rights on its own autoscaling group, a separate policy because the group's ARN
 * (with its generated id) exists only after the group, which depends on the launch template,
 * which depends on the instance role's main policy.
 */
export function agentGroupPolicy(groupArn: string): PolicyDocument {
  return {
    Version: '2012-10-17',
    Statement: [
      { Sid: 'CompleteOwnHook', Effect: 'Allow', Action: ['autoscaling:CompleteLifecycleAction'], Resource: [groupArn] },
      // The boot script's failure path (userdata.ts) reports its own instance Unhealthy so the
      // group replaces it. SetInstanceHealth is authorised on the autoScalingGroup resource.
      { Sid: 'ReportOwnBootFailure', Effect: 'Allow', Action: ['autoscaling:SetInstanceHealth'], Resource: [groupArn] },
    ],
  };
}

/**
 * Actions AWS only authorises on Resource "*", with the condition key that must scope them
 * (null: the action has no condition key to scope it with, and reveals only names).
 */
export const STAR_RESOURCE_ACTIONS: Readonly<Record<string, string | null>> = {
  'cloudwatch:PutMetricData': 'cloudwatch:namespace',
  'dynamodb:ListStreams': null,
};

/**
 * Resource ARNs that may contain a wildcard, because the last segment is chosen at run time:
 * log streams of one group, connections of one stage (per verb), one HTTP route on any stage of one API,
 * secrets under one prefix (plus the random suffix Secrets Manager appends). Anything else with `*` or `?` is a finding.
 */
const SCOPED_WILDCARDS: readonly RegExp[] = [
  /^arn:[\w-]+:logs:[\w-]+:\d{12}:log-group:[^*?]+:\*$/,
  /^arn:[\w-]+:execute-api:[\w-]+:\d{12}:[a-z0-9]+\/[\w-]+\/(POST|GET|DELETE)\/@connections\/\*$/,
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
          if (requiredKey === null) continue;
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
