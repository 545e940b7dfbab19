import { FUNCTIONS, type FunctionSpec } from '../../lib/functions';
import { TABLE_NAMES, TABLES, type QueueName, type TableName } from '../../lib/schema';
import { agentPolicy, functionPolicy, type TableArns } from '../../infra/iam';
import { indexArn, secretPrefixArn } from '../../infra/naming';
import { ADMIN_POLICY, type LocalPrincipal } from './authorizer';
import { queueArn, tableArn, type LocalArns } from './requests';

export { localSecretArn } from './requests';

/**
 * The local stack's principals: one per function in lib/functions.ts, the agent, and `admin`
 * (stack bootstrap, and tests that seed or inspect tables). Each signs with its own access key
 * id; the policy of a function or the agent is the document infra/iam.ts builds for the Pulumi
 * program, fed with the local resources' ARNs.
 */

export const LOCAL_ACCOUNT = '000000000000';
/** What every local principal signs with as its secret key (signatures are not verified locally). */
export const LOCAL_SECRET_KEY = 'local';
export const ADMIN_PRINCIPAL = 'admin';
export const AGENT_PRINCIPAL = 'agent';

/** `connect` → `AKIDLOCALCONNECT`: the access key id a principal's clients sign with. */
export function localAccessKeyId(principal: string): string {
  return `AKIDLOCAL${principal.toUpperCase().replace(/[^A-Z0-9]/g, '')}`;
}

export function localCredentials(principal: string): { accessKeyId: string; secretAccessKey: string } {
  return { accessKeyId: localAccessKeyId(principal), secretAccessKey: LOCAL_SECRET_KEY };
}

export interface LocalResources {
  readonly arns: LocalArns;
  readonly tables: Readonly<Record<TableName, string>>;
  /** Stream ARNs as DynamoDB Local reports them (what the streams API is called with). */
  readonly streamArns: Readonly<Partial<Record<TableName, string>>>;
  readonly queueUrls: Readonly<Record<QueueName, string>>;
  readonly websocket: { readonly apiId: string; readonly stage: string };
  /** Upstream secret name prefix (config.upstream.secretPrefix). */
  readonly secretPrefix: string;
  readonly prefix: string;
  readonly metricsNamespace: string;
}

export function executionArn(r: LocalResources): string {
  return `arn:${r.arns.partition}:execute-api:${r.arns.region}:${r.arns.account}:${r.websocket.apiId}`;
}

/** Every function's principal and the agent's, with their policies. */
export function localPrincipals(r: LocalResources, functions: readonly FunctionSpec[] = FUNCTIONS): LocalPrincipal[] {
  const { partition, region, account } = r.arns;
  const tables = Object.fromEntries(
    TABLE_NAMES.map((t) => {
      const arn = tableArn(r.arns, r.tables[t]);
      const v: TableArns = { arn, indexArns: TABLES[t].indexes.map((ix) => indexArn(arn, ix.name)), streamArn: r.streamArns[t] };
      return [t, v];
    }),
  ) as Record<TableName, TableArns>;
  const queues = Object.fromEntries(Object.entries(r.queueUrls).map(([q, url]) => [q, queueArn(r.arns, url)])) as Record<QueueName, string>;
  const secretPrefix = secretPrefixArn(partition, region, account, r.secretPrefix);
  const out: LocalPrincipal[] = functions.map((spec) => {
    const fn = `${r.prefix}-${spec.name}`;
    return {
      accessKeyId: localAccessKeyId(spec.name),
      roleName: `${fn}-role`,
      sessionName: fn,
      policy: functionPolicy(spec, {
        tables,
        queues,
        connections: { executionArn: executionArn(r), stage: r.websocket.stage },
        logGroup: `arn:${partition}:logs:${region}:${account}:log-group:/aws/lambda/${fn}`,
        secretPrefix,
      }),
    };
  });
  out.push({
    accessKeyId: localAccessKeyId(AGENT_PRINCIPAL),
    roleName: `${r.prefix}-agent-role`,
    sessionName: 'i-0local',
    policy: agentPolicy({
      tables,
      commandQueue: queues.commands,
      secretPrefix,
      bundleObject: `arn:${partition}:s3:::${r.prefix}-artifacts/agent/agent.mjs`,
      metricsNamespace: r.metricsNamespace,
    }),
  });
  return out;
}

/** Stack bootstrap and test seeding/inspection: every action (never given to handler code). */
export const ADMIN: LocalPrincipal = { accessKeyId: localAccessKeyId(ADMIN_PRINCIPAL), roleName: 'local-admin', sessionName: 'local', policy: ADMIN_POLICY };
