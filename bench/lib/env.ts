import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { createClients, type AwsClients } from '../../lib/aws/clients';
import { ENV, loadConfig } from '../../lib/config';
import { createLogger } from '../../lib/log';
import type { Deps } from '../../lib/runtime';
import type { TableName } from '../../lib/schema';
import { createTables } from '../../local/bootstrap';

export const BENCH_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };
export const BENCH_REGION = 'us-east-1';

/** Quiet logs: a warn line per delivery would cost more CPU than the delivery. */
export const benchLog = createLogger({ level: 'error' });

export function benchPrefix(label: string): string {
  return `bench-${label}-${Date.now().toString(36)}-${randomBytes(2).toString('hex')}`;
}

/**
 * Deps for running a handler in the benchmark process, the way the local stack builds them:
 * tables in DynamoDB Local under a fresh prefix, the given management endpoint.
 */
export async function benchDeps(opts: {
  dynamodbEndpoint: string;
  managementEndpoint: string;
  label: string;
  env?: Record<string, string>;
}): Promise<{ deps: Deps; clients: AwsClients; tables: Record<TableName, string> }> {
  const clients = createClients({ region: BENCH_REGION, credentials: BENCH_CREDENTIALS, endpoints: { dynamodb: opts.dynamodbEndpoint } });
  const prefix = benchPrefix(opts.label);
  const { names } = await createTables(clients.dynamodb, prefix);
  const config = loadConfig({
    [ENV.stack]: 'local',
    [ENV.region]: BENCH_REGION,
    [ENV.tablePrefix]: prefix,
    [ENV.commandQueueUrl]: 'http://127.0.0.1:9/unused',
    [ENV.managementEndpoint]: opts.managementEndpoint,
    [ENV.authMode]: 'none',
    [ENV.localSecretsDir]: os.tmpdir(),
    [ENV.localSecretsKey]: randomBytes(32).toString('hex'),
    ...(opts.env ?? {}),
  });
  return { deps: { config, clients, log: benchLog, clock: Date.now }, clients, tables: names };
}
