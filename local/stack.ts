import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { SendMessageCommand, type Message } from '@aws-sdk/client-sqs';
import { createClients, type AwsClients } from '../lib/aws/clients';
import { ENV, loadConfig, type AppConfig } from '../lib/config';
import { FUNCTIONS, type FunctionSpec } from '../lib/functions';
import { createLogger, type Logger } from '../lib/log';
import type { EmfWriter } from '../lib/metrics';
import type { Deps } from '../lib/runtime';
import { QUEUES, TABLES, type QueueName, type TableName } from '../lib/schema';
import { createQueues, createTables } from './bootstrap';
import { startDynamoDbLocal, type RunningDynamoDbLocal } from './dynamodb-local';
import { startSqs, type RunningSqs } from './sqs';
import { WebSocketEmulator } from './apigw/websocket-emulator';
import type { FaultSpec } from './apigw/faults';
import type { LatencySpec, QuotaSpec } from './apigw/quota';
import { HttpApiEmulator, type Mount } from './http/http-api-emulator';
import { StreamPoller } from './streams/stream-poller';
import { FifoQueuePoller } from './queues/fifo-poller';
import type { AnyHandler } from './lambda/invoke';
import { createDashboardHandler, DASHBOARD_PATH } from './dashboard/serve';
import { startLocalIam, type IamMode, type LocalIam } from './iam/local-iam';
import { ADMIN_PRINCIPAL, AGENT_PRINCIPAL, localCredentials } from './iam/principals';
import { mintDashboardToken } from './dashboard/token';

/**
 * The whole platform on one machine: DynamoDB Local, SQS, the API Gateway WebSocket emulator,
 * the HTTP API emulator, the stream poller feeding fan-out, and (optionally) the upstream agent,
 * all wired from lib/schema.ts and lib/functions.ts, the same definitions the Pulumi program uses.
 * `npm start` (local/start.ts) and the tests (test/support/stack.ts) both call this.
 */

export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };
export const LOCAL_REGION = 'us-east-1';

export interface LocalStackOptions {
  /** Use this running DynamoDB Local instead of starting one (tests share one JVM). */
  readonly dynamodbEndpoint?: string;
  /** Keep tables and sealed secrets on disk in this directory between runs. */
  readonly persistDir?: string;
  /** Table and queue name prefix. */
  readonly prefix?: string;
  /** Overrides of the handler environment (AUTH_MODE, JWT_HS256_SECRET, ITEM_KEYS, …). */
  readonly env?: Record<string, string>;
  /** Start the upstream agent in this process. */
  readonly withAgent?: boolean | Record<string, unknown>;
  readonly wsPort?: number;
  readonly httpPort?: number;
  readonly idleTimeoutMs?: number;
  readonly maxDurationMs?: number;
  /** Stream poll interval of an idle shard. */
  readonly streamIdlePollMs?: number;
  /** Concurrent batches per stream shard, 1–10: the stack config's `fanout.parallelizationFactor`. */
  readonly streamParallelizationFactor?: number;
  readonly mounts?: Mount[];
  readonly log?: Logger;
  /** Where the handlers' CloudWatch EMF metric lines go (`npm start -- --metrics`: the log); none: not recorded. */
  readonly emf?: EmfWriter;
  /**
   * Serve the WebSocket API as wss:// and its management API as https:// with this certificate.
   * This process must trust its CA (NODE_EXTRA_CA_CERTS at start, as `npm start -- --tls` does)
   * for fan-out and the handlers to reach the management API.
   */
  readonly tls?: { cert: string; key: string };
  /**
   * IAM enforcement (docs/local-iam.md): `enforce` (default; `LOCAL_IAM` in the environment
   * overrides) refuses every call outside the caller's policy, `audit` only logs it, `off` binds
   * every client to one unchecked principal (benchmarks).
   */
  readonly iam?: IamMode;
  /** Management API faults from the start (`npm start -- --faults …`; local/apigw/faults.ts). */
  readonly faults?: FaultSpec;
  /** The account's `@connections` quota (`--quota-rps`/`--quota-burst`; local/apigw/quota.ts); none by default. */
  readonly quota?: QuotaSpec;
  /** Round trip added to each `@connections` call (`--latency-ms`; local/apigw/quota.ts); none by default. */
  readonly managementLatency?: LatencySpec;
}

export interface LocalStack {
  readonly endpoints: {
    websocketUrl: string;
    httpUrl: string;
    managementUrl: string;
    dashboardUrl?: string;
    /** Application actions land here; consume it with any SQS client at `sqsEndpoint`. */
    inboundQueueUrl: string;
    /** The local SQS endpoint (the IAM gateway when IAM is on: sign as a principal, e.g. AKIDLOCALADMIN). */
    sqsEndpoint: string;
  };
  readonly env: Record<string, string>;
  readonly config: AppConfig;
  readonly deps: Deps;
  /** The `admin` principal's clients: bootstrap, and tests that seed or inspect tables. */
  readonly clients: AwsClients;
  /** Clients bound to one principal (a function name from lib/functions.ts, `agent`, `admin`). */
  clientsFor(principal: string): AwsClients;
  readonly iam: IamMode;
  readonly tables: Record<TableName, string>;
  readonly queueUrls: Record<QueueName, string>;
  readonly websocket: WebSocketEmulator;
  readonly http: HttpApiEmulator;
  readonly pollers: StreamPoller[];
  /** The queue-triggered functions' pollers (the partition workers of large topics). */
  readonly queuePollers: FifoQueuePoller[];
  readonly agent?: { stop(): Promise<void>; metrics(): Record<string, number> };
  stop(): Promise<void>;
}

type HandlerFactory = (deps: Deps) => AnyHandler;

async function loadFactory(spec: FunctionSpec): Promise<HandlerFactory> {
  const mod = (await import(`../functions/${spec.name}.ts`)) as { createHandler?: HandlerFactory };
  if (typeof mod.createHandler !== 'function') {
    throw new Error(`functions/${spec.name}.ts must export createHandler(deps) (see lib/runtime.ts)`);
  }
  return mod.createHandler;
}

export async function startLocalStack(opts: LocalStackOptions = {}): Promise<LocalStack> {
  const log = opts.log ?? createLogger({ base: { component: 'local-stack' } });
  const cleanups: (() => Promise<void> | void)[] = [];
  const stop = async () => {
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch (err) {
        log.warn('stop step failed', { err });
      }
    }
    cleanups.length = 0;
  };

  try {
    let ddb: RunningDynamoDbLocal | undefined;
    let ddbEndpoint = opts.dynamodbEndpoint;
    if (!ddbEndpoint) {
      ddb = await startDynamoDbLocal({ dbPath: opts.persistDir ? path.join(opts.persistDir, 'dynamodb') : undefined });
      cleanups.push(() => ddb!.stop());
      ddbEndpoint = ddb.endpoint;
    }
    const sqs: RunningSqs = await startSqs();
    cleanups.push(() => sqs.stop());

    const iamMode = opts.iam ?? iamModeFromEnv(process.env.LOCAL_IAM);
    let iam: LocalIam | undefined;
    if (iamMode !== 'off') {
      iam = await startLocalIam({
        region: LOCAL_REGION,
        upstreams: { dynamodb: ddbEndpoint, sqs: sqs.endpoint },
        mode: iamMode,
        log: log.child({ component: 'local-iam' }),
        // Every decision as a JSON line: what a handler calls, to derive its grants from.
        ...(process.env.LOCAL_IAM_DECISIONS
          ? { onDecision: (d) => fs.appendFileSync(process.env.LOCAL_IAM_DECISIONS!, JSON.stringify(d) + '\n') }
          : {}),
      });
      cleanups.push(() => iam!.stop());
    }
    const dataEndpoint = (direct: string) => iam?.endpoint ?? direct;
    const principalClients = new Map<string, AwsClients>();
    const clientsFor = (principal: string): AwsClients => {
      let c = principalClients.get(principal);
      if (!c) {
        c = createClients({
          region: LOCAL_REGION,
          credentials: iam ? localCredentials(principal) : LOCAL_CREDENTIALS,
          endpoints: {
            dynamodb: dataEndpoint(ddbEndpoint!),
            dynamodbstreams: dataEndpoint(ddbEndpoint!),
            sqs: dataEndpoint(sqs.endpoint),
            ...(iam ? { secretsmanager: iam.endpoint } : {}),
          },
        });
        principalClients.set(principal, c);
      }
      return c;
    };
    cleanups.push(() => {
      for (const c of principalClients.values()) c.destroy();
    });
    const clients = clientsFor(ADMIN_PRINCIPAL);

    const prefix = opts.prefix ?? 'rtg-local';
    const { names: tables, streamArns } = await createTables(clients.dynamodb, prefix);
    const queueUrls = await createQueues(clients.sqs, prefix);

    // Handlers are bound after the emulators listen, because their config needs the emulator's
    // management URL; until then a route answers as if the integration were missing.
    const bound = new Map<string, AnyHandler>();
    const late = (name: string): AnyHandler => (event, context) => {
      const h = bound.get(name);
      if (!h) throw new Error(`function ${name} is not bound yet`);
      return h(event, context);
    };

    const websocket = await WebSocketEmulator.start({
      port: opts.wsPort ?? 0,
      routes: Object.fromEntries(
        FUNCTIONS.filter((f) => f.trigger.kind === 'websocket').map((f) => [
          (f.trigger as { route: string }).route,
          { handler: late(f.name), functionName: f.name },
        ]),
      ),
      ...(opts.idleTimeoutMs ? { idleTimeoutMs: opts.idleTimeoutMs } : {}),
      ...(opts.maxDurationMs ? { maxDurationMs: opts.maxDurationMs } : {}),
      ...(opts.faults ? { faults: opts.faults } : {}),
      ...(opts.quota ? { quota: opts.quota } : {}),
      ...(opts.managementLatency ? { managementLatency: opts.managementLatency } : {}),
      log: log.child({ component: 'apigw-websocket' }),
      ...(opts.tls ? { tls: opts.tls } : {}),
      ...(iam ? { authorizeManagement: (req) => iam!.authorizeManagement(req) } : {}),
    });
    cleanups.push(() => websocket.close());

    // The dashboard reads its URLs per request: they exist only once both emulators listen.
    let dashboardConfig: Parameters<typeof createDashboardHandler>[0] | undefined;
    const dashboard = createDashboardHandler(() => {
      if (!dashboardConfig) throw new Error('dashboard requested before the stack was ready');
      return typeof dashboardConfig === 'function' ? dashboardConfig() : dashboardConfig;
    });

    const http = await HttpApiEmulator.start({
      port: opts.httpPort ?? 0,
      routes: Object.fromEntries(
        FUNCTIONS.flatMap((f) =>
          f.trigger.kind === 'http' ? f.trigger.routes.map((r) => [r, { handler: late(f.name), functionName: f.name }]) : [],
        ),
      ),
      mounts: [dashboard, ...(opts.mounts ?? [])],
      log: log.child({ component: 'apigw-http' }),
    });
    cleanups.push(() => http.close());

    const secrets = secretsSetup(opts.persistDir);
    cleanups.push(secrets.cleanup);

    const env: Record<string, string> = {
      [ENV.stack]: 'local',
      [ENV.region]: LOCAL_REGION,
      [ENV.tablePrefix]: prefix,
      [ENV.commandQueueUrl]: queueUrls.commands,
      [ENV.inboundQueueUrl]: queueUrls.inbound,
      // Large topics go to partition workers past FANOUT_PARTITION_THRESHOLD (default 5,000).
      [ENV.fanoutPartitionQueueUrl]: queueUrls.fanoutPartitions,
      [ENV.managementEndpoint]: websocket.managementUrl,
      [ENV.authMode]: 'none',
      [ENV.itemKeys]: 'vehicleId,batteryId',
      // With IAM on, handlers use the Secrets Manager SDK (the AWS code path), which the IAM
      // gateway authorises and serves over the same sealed files; off, they seal the files themselves.
      [ENV.secretsBackend]: iam ? 'secretsmanager' : 'local',
      [ENV.localSecretsDir]: secrets.dir,
      [ENV.localSecretsKey]: secrets.key,
      // The local stack's upstream platforms (the demo, tests) run on loopback.
      [ENV.upstreamAllowHosts]: '127.0.0.0/8,::1/128,localhost',
      ...(opts.env ?? {}),
    };
    const config = loadConfig(env);
    const deps: Deps = { config, clients, log, clock: Date.now, ...(opts.emf ? { emf: opts.emf } : {}) };
    iam?.bind({
      tables,
      streamArns,
      queueUrls,
      websocket: { apiId: websocket.apiId, stage: websocket.stage },
      secretPrefix: config.upstream.secretPrefix,
      prefix,
      metricsNamespace: 'RealtimeGateway/local',
    }, { dir: secrets.dir, keyHex: secrets.key });
    dashboardConfig = {
      websocketUrl: websocket.websocketUrl,
      httpUrl: http.url,
      ...(config.auth.mode === 'jwt' && config.auth.jwt?.hs256Secret
        ? { token: () => mintDashboardToken(config.auth.jwt!) }
        : {}),
    };

    for (const f of FUNCTIONS) {
      const factory = await loadFactory(f);
      bound.set(f.name, factory({ ...deps, clients: clientsFor(f.name), log: log.child({ function: f.name }) }));
    }

    const pollers: StreamPoller[] = [];
    for (const f of FUNCTIONS) {
      if (f.trigger.kind !== 'stream') continue;
      const arn = streamArns[f.trigger.table];
      if (!arn) throw new Error(`function ${f.name} reads the ${f.trigger.table} stream, but the schema gives that table none`);
      // The event source mapping reads the stream, and sends to the on-failure destination, as the function's role.
      const fnClients = clientsFor(f.name);
      const poller = new StreamPoller({
        streams: fnClients.streams,
        streamArn: arn,
        handler: late(f.name),
        functionName: f.name,
        batchSize: 100,
        parallelizationFactor: opts.streamParallelizationFactor ?? 1,
        partitionKey: TABLES[f.trigger.table].hashKey.name,
        maxRetryAttempts: 3,
        bisectOnError: true,
        idlePollMs: opts.streamIdlePollMs ?? 50,
        // Persisted tables keep 24 h of stream; replaying it at every start would redeliver old changes.
        startingPosition: opts.persistDir ? 'LATEST' : 'TRIM_HORIZON',
        onFailure: async (failure) => {
          // The on-failure destination gets the batch description, as the Lambda mapping sends it.
          await fnClients.sqs.send(new SendMessageCommand({ QueueUrl: queueUrls.fanoutDlq, MessageBody: JSON.stringify(failure) }));
        },
        log: log.child({ component: 'stream-poller', function: f.name }),
      });
      await poller.start();
      cleanups.push(() => poller.stop());
      pollers.push(poller);
    }

    // Queue-triggered functions (the large topics' partition workers): an SQS mapping with FIFO
    // semantics, polling as the function's role; the dead-letter move is SQS's own (admin).
    const queuePollers: FifoQueuePoller[] = [];
    for (const f of FUNCTIONS) {
      if (f.trigger.kind !== 'queue') continue;
      const spec = QUEUES[f.trigger.queue];
      const dlq = spec.deadLetter ? queueUrls[spec.deadLetter.queue] : undefined;
      const poller = new FifoQueuePoller({
        sqs: clientsFor(f.name).sqs,
        queueUrl: queueUrls[f.trigger.queue],
        handler: late(f.name),
        functionName: f.name,
        maxReceiveCount: spec.deadLetter?.maxReceiveCount ?? Number.POSITIVE_INFINITY,
        ...(dlq
          ? {
              deadLetter: async (m: Message) => {
                await clients.sqs.send(
                  new SendMessageCommand({
                    QueueUrl: dlq,
                    MessageBody: m.Body ?? '',
                    ...(m.Attributes?.MessageGroupId ? { MessageGroupId: m.Attributes.MessageGroupId, MessageDeduplicationId: m.MessageId } : {}),
                  }),
                );
              },
            }
          : {}),
        idlePollMs: opts.streamIdlePollMs ?? 50,
        log: log.child({ component: 'queue-poller', function: f.name }),
      });
      poller.start();
      cleanups.push(() => poller.stop());
      queuePollers.push(poller);
    }

    let agent: LocalStack['agent'];
    if (opts.withAgent) {
      const { startAgent } = (await import('../ec2-agent/agent')) as {
        startAgent: (d: Deps, o?: Record<string, unknown>) => Promise<NonNullable<LocalStack['agent']>>;
      };
      agent = await startAgent(
        { ...deps, clients: clientsFor(AGENT_PRINCIPAL), log: log.child({ component: 'agent' }) },
        typeof opts.withAgent === 'object' ? opts.withAgent : {},
      );
      // Before the emulators: the agent releases its leases while the tables are still there.
      cleanups.push(() => agent!.stop());
    }

    return {
      endpoints: {
        websocketUrl: websocket.websocketUrl,
        httpUrl: http.url,
        managementUrl: websocket.managementUrl,
        dashboardUrl: `${http.url}${DASHBOARD_PATH}`,
        inboundQueueUrl: queueUrls.inbound,
        sqsEndpoint: dataEndpoint(sqs.endpoint),
      },
      env,
      config,
      deps,
      clients,
      clientsFor,
      iam: iamMode,
      tables,
      queueUrls,
      websocket,
      http,
      pollers,
      queuePollers,
      agent,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

function iamModeFromEnv(v: string | undefined): IamMode {
  if (v === undefined || v === '') return 'enforce';
  if (v === 'enforce' || v === 'audit' || v === 'off') return v;
  throw new Error(`LOCAL_IAM is "${v}"; expected enforce, audit or off`);
}

/**
 * Where the local secret store seals upstream credentials (AES-256-GCM). In memory-only runs the
 * key is random and the directory temporary; with --persist both live in the persist directory
 * (key file mode 0600) so sockets opened before a restart can still be reopened.
 */
function secretsSetup(persistDir: string | undefined) {
  if (persistDir) {
    const dir = path.join(persistDir, 'secrets');
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const keyFile = path.join(persistDir, 'secrets.key');
    if (!fs.existsSync(keyFile)) fs.writeFileSync(keyFile, randomBytes(32).toString('hex'), { mode: 0o600 });
    return { dir, key: fs.readFileSync(keyFile, 'utf8').trim(), cleanup: () => {} };
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rtg-secrets-'));
  return { dir, key: randomBytes(32).toString('hex'), cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}
