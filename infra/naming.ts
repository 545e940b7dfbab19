/**
 * Names and ARNs, as pure functions: child resource names derive from their component's name
 * (two components never collide), physical names from the stack prefix, and every scoped ARN
 * the IAM policies use is built here so the policy tests can reason about their shape.
 */

/** Pulumi name of a component's child: `tables-connections`, `fn-fanout-role`. */
export function childName(parent: string, ...parts: string[]): string {
  return [parent, ...parts].join('-');
}

/** Lambda function names are at most 64 characters of [A-Za-z0-9-_]. */
export function functionName(prefix: string, fn: string): string {
  const name = `${prefix}-${fn}`;
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(name)) throw new Error(`function name "${name}" is not a valid Lambda name (64 chars of A-Z a-z 0-9 - _)`);
  return name;
}

/** The log group Lambda writes to by default; created by us first so it gets a retention. */
export function lambdaLogGroupName(fnName: string): string {
  return `/aws/lambda/${fnName}`;
}

export function accessLogGroupName(prefix: string, api: 'websocket' | 'http'): string {
  return `/aws/apigateway/${prefix}-${api}`;
}

/** Custom metrics namespace the agent publishes to (and the only one it may publish to); the handlers' EMF metrics go there too. */
export { metricsNamespace } from '../lib/metrics';

/** A GSI's own ARN. Named per index: `${table}/index/*` would grant indexes added later. */
export function indexArn(tableArn: string, index: string): string {
  return `${tableArn}/index/${index}`;
}

/** Log streams of one log group (their names are chosen by Lambda at run time). */
export function logStreamsArn(logGroupArn: string): string {
  // The provider strips the ":*" CloudWatch appends to a log group ARN; add it back for streams.
  return `${logGroupArn.replace(/:\*$/, '')}:*`;
}

/**
 * One `@connections` verb on one stage of one WebSocket API: PostToConnection is evaluated as
 * `{api}/{stage}/POST/@connections/{id}`, GetConnection as `.../GET/...`, DeleteConnection as
 * `.../DELETE/...` (all as the action execute-api:ManageConnections), so each verb a function
 * uses is granted by name.
 */
export function manageConnectionsArn(executionArn: string, stage: string, verb: 'POST' | 'GET' | 'DELETE'): string {
  return `${executionArn}/${stage}/${verb}/@connections/*`;
}

/** Invoke permission source ARN of one route: `{api}/{stage}/{routeKey}` (WebSocket). */
export function websocketRouteSourceArn(executionArn: string, stage: string, routeKey: string): string {
  return `${executionArn}/${stage}/${routeKey}`;
}

/** Invoke permission source ARN of one HTTP route: `{api}/{stage}/{METHOD}{path}`. */
export function httpRouteSourceArn(executionArn: string, stage: string, routeKey: string): string {
  const [method, path] = splitRouteKey(routeKey);
  return `${executionArn}/${stage}/${method}${path}`;
}

/** `POST /publish` → ['POST', '/publish']. */
export function splitRouteKey(routeKey: string): [string, string] {
  const m = /^(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) (\/[A-Za-z0-9/_{}+.-]*)$/.exec(routeKey);
  if (!m) throw new Error(`route key "${routeKey}" is not "METHOD /path"`);
  return [m[1]!, m[2]!];
}

/**
 * Secrets under one name prefix. Secrets Manager appends "-" and 6 random characters to every
 * secret ARN, so even a single known secret needs a trailing wildcard; the prefix keeps it scoped.
 */
export function secretPrefixArn(partition: string, region: string, account: string, prefix: string): string {
  return `arn:${partition}:secretsmanager:${region}:${account}:secret:${prefix}*`;
}

/**
 * An AWS managed policy. Built from the partition (`aws.getPartition`), never a literal
 * `arn:aws:`: the same program then deploys to aws-cn and aws-us-gov, whose ARNs differ.
 */
export function awsManagedPolicyArn(partition: string, policyPath: string): string {
  if (!/^[A-Za-z0-9+=,.@_/-]+$/.test(policyPath) || policyPath.startsWith('/')) throw new Error(`managed policy path "${policyPath}" is not a policy name`);
  return `arn:${partition}:iam::aws:policy/${policyPath}`;
}

/** S3 object ARN from a bucket ARN and key. */
export function objectArn(bucketArn: string, objectKey: string): string {
  return `${bucketArn}/${objectKey}`;
}

