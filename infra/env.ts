import { AGENT_ENV as AGENT_SETTINGS } from '../ec2-agent/config';
import { ENV, tableEnvKey } from '../lib/config';
import { TABLE_NAMES, type TableName } from '../lib/schema';
import type { Input } from '@pulumi/pulumi';
import type { StackConfig } from './config';

/**
 * The environment of every Lambda: exactly the variables `loadConfig` (lib/config/index.ts)
 * reads, named through `ENV`/`tableEnvKey` so a renamed variable breaks the type check, not
 * production. Generic over the value type: the program passes Pulumi outputs, the tests plain
 * strings (and feed the result back through loadConfig).
 *
 * AWS_REGION is not set: it is a reserved variable the Lambda runtime provides.
 */
export interface EnvValues<T> {
  readonly tables: Readonly<Record<TableName, T>>;
  readonly commandQueueUrl: T;
  readonly managementEndpoint: T;
  /** The inbound queue of application actions (Lambdas only; the agent sends none). */
  readonly inboundQueueUrl?: T;
  /** The FIFO queue of large topics' partitions (Lambdas only): partitioning is on when given. */
  readonly fanoutPartitionQueueUrl?: T;
  /** Already wrapped as a secret by the caller. */
  readonly jwtHs256Secret?: T;
}

// `Input<string>`: the JWT issuer and audience may be Outputs of the identity provider's resources.
export function handlerEnvironment<T>(c: StackConfig, v: EnvValues<T>): Record<string, T | Input<string>> {
  const env: Record<string, T | Input<string>> = {
    [ENV.stack]: c.stack,
    [ENV.commandQueueUrl]: v.commandQueueUrl,
    [ENV.managementEndpoint]: v.managementEndpoint,
    [ENV.authMode]: c.authMode,
    [ENV.secretsBackend]: 'secretsmanager',
    [ENV.secretPrefix]: c.secretPrefix,
  };
  for (const t of TABLE_NAMES) env[tableEnvKey(t)] = v.tables[t];
  // Both or neither: loadConfig refuses actions without the queue they are put on.
  if (v.inboundQueueUrl !== undefined) {
    env[ENV.inboundQueueUrl] = v.inboundQueueUrl;
    if (c.appActions.length) env[ENV.appActions] = c.appActions.join(',');
  }
  if (v.fanoutPartitionQueueUrl !== undefined) {
    env[ENV.fanoutPartitionQueueUrl] = v.fanoutPartitionQueueUrl;
    env[ENV.fanoutPartitionThreshold] = String(c.fanout.partitionThreshold);
    env[ENV.fanoutPartitions] = String(c.fanout.partitions);
  }
  if (c.itemKeys.length) env[ENV.itemKeys] = c.itemKeys.join(',');
  if (c.upstreamAllowHosts.length) env[ENV.upstreamAllowHosts] = c.upstreamAllowHosts.join(',');
  if (c.connectionTtlSeconds !== undefined) env[ENV.connectionTtlSeconds] = String(c.connectionTtlSeconds);
  if (c.historyTtlSeconds !== undefined) env[ENV.historyTtlSeconds] = String(c.historyTtlSeconds);
  if (c.fanoutConcurrency !== undefined) env[ENV.fanoutConcurrency] = String(c.fanoutConcurrency);
  if (c.socketRatePerSecond !== undefined) env[ENV.socketRatePerSecond] = String(c.socketRatePerSecond);
  if (c.socketRateBurst !== undefined) env[ENV.socketRateBurst] = String(c.socketRateBurst);
  if (c.presenceTopics.length) env[ENV.presenceTopics] = c.presenceTopics.join(',');
  if (c.presenceEventMaxMembers !== undefined) env[ENV.presenceEventMaxMembers] = String(c.presenceEventMaxMembers);
  if (c.presenceListLimit !== undefined) env[ENV.presenceListLimit] = String(c.presenceListLimit);
  if (c.collectionMaxMembers !== undefined) env[ENV.collectionMaxMembers] = String(c.collectionMaxMembers);
  if (c.authMode === 'jwt') {
    if (v.jwtHs256Secret !== undefined) env[ENV.jwtHs256Secret] = v.jwtHs256Secret;
    if (c.jwt.rs256PublicKey) env[ENV.jwtRs256PublicKey] = c.jwt.rs256PublicKey;
    if (c.jwt.jwksUrl) env[ENV.jwtJwksUrl] = c.jwt.jwksUrl;
    if (c.jwt.issuer) env[ENV.jwtIssuer] = c.jwt.issuer;
    if (c.jwt.audience) env[ENV.jwtAudience] = c.jwt.audience;
  }
  // Claim names matter wherever claims arrive: subscriber tokens (authMode jwt) and the HTTP API's
  // JWT authoriser (httpAuth jwt), which works with authMode none too.
  if (c.authMode === 'jwt' || c.httpAuth === 'jwt') {
    if (c.jwt.topicsClaim) env[ENV.jwtTopicsClaim] = c.jwt.topicsClaim;
    if (c.jwt.publishClaim) env[ENV.jwtPublishClaim] = c.jwt.publishClaim;
    if (c.jwt.sendToUserClaim) env[ENV.jwtSendToUserClaim] = c.jwt.sendToUserClaim;
    if (c.jwt.sendToConnectionClaim) env[ENV.jwtSendToConnectionClaim] = c.jwt.sendToConnectionClaim;
  }
  return env;
}

/** Variables only the agent reads (in addition to the handler environment). */
export const AGENT_ENV = {
  region: ENV.region,
  /** CloudWatch namespace the agent may publish to (its role's PutMetricData is limited to it). */
  metricsNamespace: 'METRICS_NAMESPACE',
  sinkUrl: AGENT_SETTINGS.sinkUrl,
  /** Filled at boot from Secrets Manager (see userdata.ts), never rendered into user data. */
  sinkAuthorization: AGENT_SETTINGS.sinkAuthorization,
} as const;

/**
 * The agent's environment: the handler variables minus any secret (user data is not a secret
 * store), plus its region, metrics namespace and sink URL.
 */
export function agentEnvironment<T>(
  c: StackConfig,
  v: Omit<EnvValues<T>, 'jwtHs256Secret'> & { readonly region: T; readonly metricsNamespace: string },
): Record<string, T | Input<string>> {
  const env = handlerEnvironment(c, { tables: v.tables, commandQueueUrl: v.commandQueueUrl, managementEndpoint: v.managementEndpoint });
  env[AGENT_ENV.region] = v.region;
  env[AGENT_ENV.metricsNamespace] = v.metricsNamespace;
  if (c.sink.url) env[AGENT_ENV.sinkUrl] = c.sink.url;
  return env;
}
