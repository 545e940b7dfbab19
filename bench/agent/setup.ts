import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { createClients, type AwsClients } from '../../lib/aws/clients';
import { ENV, loadConfig, type AppConfig } from '../../lib/config';
import { openUpstream, type ControlDeps } from '../../lib/upstream/control';
import { LocalSecretStore } from '../../lib/upstream/secrets-local';
import { SsrfGuard } from '../../lib/upstream/ssrf';
import { UpstreamStore } from '../../lib/upstream/store';
import { createQueues, createTables } from '../../local/bootstrap';
import { startSqs, type RunningSqs } from '../../local/sqs';
import { BENCH_CREDENTIALS, BENCH_REGION, benchLog, benchPrefix } from '../lib/env';

/**
 * What the agent benchmarks share: tables and a command queue under a fresh prefix (DynamoDB
 * Local, an SQS emulator), the env an agent child loads its config from, and the control path
 * that seeds sockets (`openUpstream`: SSRF check with loopback allow-listed as the local stack
 * does, sealed secret, upstreams row desired=open). The command sender is a no-op: agents'
 * reconcile loops claim the rows, the path a lost command takes.
 */

export const BENCH_UPSTREAM_CREDS = { email: 'bench@example.com', pass: 'bench-pass' };

export interface AgentBench {
  readonly sqs: RunningSqs;
  readonly clients: AwsClients;
  readonly env: Record<string, string>;
  readonly config: AppConfig;
  readonly control: ControlDeps;
  readonly endpoints: { dynamodb: string; sqs: string };
  cleanup(): Promise<void>;
}

export async function setupAgentBench(dynamodbEndpoint: string, label: string): Promise<AgentBench> {
  const sqs = await startSqs();
  const endpoints = { dynamodb: dynamodbEndpoint, sqs: sqs.endpoint };
  const clients = createClients({ region: BENCH_REGION, credentials: BENCH_CREDENTIALS, endpoints });
  const prefix = benchPrefix(label);
  const secretsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rtg-bench-secrets-'));
  const env: Record<string, string> = {
    [ENV.stack]: 'local',
    [ENV.region]: BENCH_REGION,
    [ENV.tablePrefix]: prefix,
    [ENV.managementEndpoint]: 'http://127.0.0.1:9/unused',
    [ENV.authMode]: 'none',
    [ENV.secretsBackend]: 'local',
    [ENV.localSecretsDir]: secretsDir,
    [ENV.localSecretsKey]: randomBytes(32).toString('hex'),
    // As the local stack: its upstream platforms run on loopback.
    [ENV.upstreamAllowHosts]: '127.0.0.0/8,::1/128,localhost',
  };
  await createTables(clients.dynamodb, prefix);
  env[ENV.commandQueueUrl] = (await createQueues(clients.sqs, prefix)).commands;
  const config = loadConfig(env);
  const control: ControlDeps = {
    store: new UpstreamStore(clients.doc, config.tables.upstreams),
    secrets: new LocalSecretStore({ dir: config.upstream.localSecretsDir!, keyHex: config.upstream.localSecretsKey! }),
    commands: { send: async () => {} },
    guard: new SsrfGuard({ allowHosts: config.upstream.allowHosts }),
    secretPrefix: config.upstream.secretPrefix,
    publishClaim: 'publish',
    clock: Date.now,
    log: benchLog,
  };
  return {
    sqs,
    clients,
    env,
    config,
    control,
    endpoints,
    async cleanup() {
      clients.destroy();
      await sqs.stop();
      fs.rmSync(secretsDir, { recursive: true, force: true });
    },
  };
}

/**
 * POSTs sockets `veh-<from>` … `veh-<to - 1>` (32 control calls at a time, as concurrent POSTs
 * would arrive); `url(i)` is each one's upstream URL, `headers` any extra POST headers.
 */
export async function seedUpstreams(control: ControlDeps, o: { from: number; to: number; url: (i: number) => string; headers?: Record<string, string>; tag?: string }): Promise<{ socketId: string; topic: string }[]> {
  const ids: { socketId: string; topic: string }[] = [];
  let next = o.from;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < o.to) {
        const i = next++;
        const r = await openUpstream(control, {
          internalID: `${o.tag ?? 'veh'}-${i}`,
          interWorkingInterface: o.url(i),
          platformID: 'bench',
          asapa_email: BENCH_UPSTREAM_CREDS.email,
          asapa_pass: BENCH_UPSTREAM_CREDS.pass,
          ...o.headers,
        });
        ids.push({ socketId: r.socketId, topic: r.topic });
      }
    }),
  );
  return ids;
}
