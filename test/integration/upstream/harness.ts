import type { AgentOptions } from '../../../ec2-agent/config';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { IncomingMessage } from 'node:http';
import { WebSocketServer, WebSocket } from 'ws';
import { createClients, type AwsClients } from '../../../lib/aws/clients';
import { loadConfig, type AppConfig } from '../../../lib/config';
import { createLogger, type Logger } from '../../../lib/log';
import type { Deps } from '../../../lib/runtime';
import type { QueueName, TableName } from '../../../lib/schema';
import { createQueues, createTables } from '../../../local/bootstrap';
import { startSqs, type RunningSqs } from '../../../local/sqs';
import { startLocalIam } from '../../../local/iam/local-iam';
import { ADMIN_PRINCIPAL, AGENT_PRINCIPAL, localCredentials } from '../../../local/iam/principals';
import { testDynamoEndpoint, uniquePrefix } from '../../support/env';
import { waitFor } from '../../support/wait';

/**
 * The local stack minus the emulators, for the upstream tests: tables in the shared DynamoDB
 * Local (own prefix), an SQS emulator, a sealed-file secret store in a temporary directory and
 * the config the control function and the agent read, all behind the local IAM gateway:
 * `deps('control')` and `deps('agent')` sign as those principals (their real policies), `clients`
 * as the local admin (seeding and inspection). Also real upstream platforms: `ws` servers on
 * 127.0.0.1, port 0.
 */

/**
 * Agent periods for tests: short timers, so every loop runs many times within a test (heartbeat
 * and reconcile 0.3 s). The lease is long beside them: a heartbeat not confirmed within lease −
 * renew (4.2 s) drops every socket, and on a loaded host DynamoDB Local can stall for over a
 * second, which tests not about leases would see as a cut. Tests spread it and override what
 * they are about.
 */
export const FAST_AGENT: Partial<AgentOptions> = {
  leaseMs: 4500,
  renewMs: 300,
  reconcileMs: 300,
  healthIntervalMs: 60_000,
  pingTimeoutMs: 150,
  backoffBaseMs: 50,
  backoffMaxMs: 400,
  // The default: at 1 s a handshake slowed by a loaded host (the upstream server shares this
  // process) was given up after the server had accepted it, which the server saw as a 1006 close.
  handshakeTimeoutMs: 10_000,
  commandWaitSeconds: 1,
  counterFlushMs: 300,
};

export interface Harness {
  readonly env: Record<string, string>;
  readonly config: AppConfig;
  readonly clients: AwsClients;
  readonly tables: Record<TableName, string>;
  readonly queueUrls: Record<QueueName, string>;
  readonly sqsEndpoint: string;
  /** The IAM gateway: DynamoDB, Streams and SQS endpoint of every principal (child processes too). */
  readonly iamEndpoint: string;
  readonly logLines: string[];
  /** Deps whose clients sign as `principal` (a function name, `agent`); the admin by default. */
  deps(principal?: string): Deps;
  stop(): Promise<void>;
}

export async function startHarness(opts: { allowHosts?: string } = {}): Promise<Harness> {
  const sqs: RunningSqs = await startSqs();
  const iam = await startLocalIam({
    region: 'us-east-1',
    upstreams: { dynamodb: testDynamoEndpoint(), sqs: sqs.endpoint },
    mode: 'enforce',
    log: createLogger({ level: 'error' }),
  });
  const byPrincipal = new Map<string, AwsClients>();
  const clientsFor = (principal: string) => {
    let c = byPrincipal.get(principal);
    if (!c) {
      c = createClients({
        region: 'us-east-1',
        credentials: localCredentials(principal),
        endpoints: { dynamodb: iam.endpoint, dynamodbstreams: iam.endpoint, sqs: iam.endpoint, secretsmanager: iam.endpoint },
      });
      byPrincipal.set(principal, c);
    }
    return c;
  };
  const clients = clientsFor(ADMIN_PRINCIPAL);
  const prefix = uniquePrefix('up');
  const { names: tables, streamArns } = await createTables(clients.dynamodb, prefix);
  const queueUrls = await createQueues(clients.sqs, prefix);
  const secretsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rtg-up-secrets-'));
  const env: Record<string, string> = {
    STACK: 'local',
    AWS_REGION: 'us-east-1',
    TABLE_PREFIX: prefix,
    COMMAND_QUEUE_URL: queueUrls.commands,
    WS_MANAGEMENT_ENDPOINT: 'http://127.0.0.1:9',
    AUTH_MODE: 'none',
    // The Secrets Manager SDK path, served (and authorised) by the IAM gateway over sealed files
    // in LOCAL_SECRETS_DIR, which tests read directly with LocalSecretStore.
    SECRETS_BACKEND: 'secretsmanager',
    LOCAL_SECRETS_DIR: secretsDir,
    LOCAL_SECRETS_KEY: randomBytes(32).toString('hex'),
    UPSTREAM_ALLOW_HOSTS: opts.allowHosts ?? '127.0.0.1/8,::1/128,localhost',
  };
  const config = loadConfig(env);
  iam.bind({
    tables,
    streamArns,
    queueUrls,
    websocket: { apiId: 'harness', stage: 'local' },
    secretPrefix: config.upstream.secretPrefix,
    prefix,
    metricsNamespace: 'RealtimeGateway/local',
  }, { dir: secretsDir, keyHex: env.LOCAL_SECRETS_KEY! });
  const logLines: string[] = [];
  const log: Logger = createLogger({ level: 'debug', write: (l) => logLines.push(l) });
  return {
    env,
    config,
    clients,
    tables,
    queueUrls,
    sqsEndpoint: sqs.endpoint,
    iamEndpoint: iam.endpoint,
    logLines,
    deps: (principal = ADMIN_PRINCIPAL) => ({ config, clients: clientsFor(principal), log: log.child({ component: principal }), clock: Date.now }),
    async stop() {
      for (const c of byPrincipal.values()) c.destroy();
      await iam.stop();
      await sqs.stop();
      fs.rmSync(secretsDir, { recursive: true, force: true });
    },
  };
}

export interface UpstreamServer {
  readonly url: string;
  readonly port: number;
  /** Authorization header of every upgrade request. */
  readonly auths: string[];
  /** Close codes the server saw, in order. */
  readonly closes: number[];
  /** When the server saw each of `closes` (epoch ms). */
  readonly closedAt: number[];
  readonly open: Set<WebSocket>;
  /** Highest number of simultaneously open connections seen. */
  readonly maxConcurrent: number;
  connections: number;
  send(data: unknown): void;
  waitFor(pred: () => boolean, timeoutMs?: number, what?: string): Promise<void>;
  /** Stops listening and drops every connection (without a close frame). */
  stop(): Promise<void>;
}

export async function startUpstream(opts: { port?: number; autoPong?: boolean; requireAuth?: string } = {}): Promise<UpstreamServer> {
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: opts.port ?? 0,
    autoPong: opts.autoPong ?? true,
    verifyClient: opts.requireAuth
      ? (info: { req: IncomingMessage }, cb: (ok: boolean, code?: number) => void) => cb(info.req.headers.authorization === opts.requireAuth, 401)
      : undefined,
  });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const port = (wss.address() as AddressInfo).port;
  const s: UpstreamServer = {
    url: `ws://127.0.0.1:${port}/feed`,
    port,
    auths: [],
    closes: [],
    closedAt: [],
    open: new Set(),
    maxConcurrent: 0,
    connections: 0,
    send(data) {
      const text = typeof data === 'string' ? data : JSON.stringify(data);
      for (const ws of s.open) ws.send(text);
    },
    waitFor,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const ws of s.open) ws.terminate();
        wss.close(() => resolve());
      }),
  };
  wss.on('connection', (ws, req) => {
    s.auths.push(String(req.headers.authorization ?? ''));
    s.connections++;
    s.open.add(ws);
    (s as { maxConcurrent: number }).maxConcurrent = Math.max(s.maxConcurrent, s.open.size);
    ws.on('close', (code) => {
      s.open.delete(ws);
      s.closes.push(code);
      s.closedAt.push(Date.now());
    });
    ws.on('error', () => {});
  });
  return s;
}

export { waitFor };

/** An API Gateway HTTP API payload 2.0 event. */
export function httpEvent(routeKey: string, headers: Record<string, string> = {}, query?: Record<string, string>) {
  const [method, rawPath] = routeKey.split(' ');
  return {
    version: '2.0',
    routeKey,
    rawPath,
    rawQueryString: query ? new URLSearchParams(query).toString() : '',
    // Payload 2.0 lower-cases header names.
    headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v])),
    queryStringParameters: query,
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      domainName: 'localhost',
      domainPrefix: 'localhost',
      http: { method, path: rawPath, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'test' },
      requestId: randomBytes(6).toString('hex'),
      routeKey,
      stage: '$default',
      time: new Date().toUTCString(),
      timeEpoch: Date.now(),
    },
    isBase64Encoded: false,
  };
}

const ROOT = path.resolve(import.meta.dirname, '../../..');

/**
 * One agent process (`ec2-agent/main.ts`) against the harness, bound to the agent principal the
 * way any process is (endpoint + access key id), with test-sized periods from `env`. Its output
 * lines are collected in `output` (for failure messages), the child in `children` (to kill).
 */
export function spawnAgentProcess(
  h: Harness,
  agentId: string,
  env: Record<string, string>,
  collect: { readonly children: ChildProcess[]; readonly output: Map<string, string[]> },
): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'ec2-agent/main.ts'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      ...h.env,
      AWS_ENDPOINT_URL_DYNAMODB: h.iamEndpoint,
      AWS_ENDPOINT_URL_SQS: h.iamEndpoint,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: h.iamEndpoint,
      AWS_ACCESS_KEY_ID: localCredentials(AGENT_PRINCIPAL).accessKeyId,
      AWS_SECRET_ACCESS_KEY: localCredentials(AGENT_PRINCIPAL).secretAccessKey,
      AGENT_ID: agentId,
      AGENT_PING_TIMEOUT_MS: '500',
      AGENT_BACKOFF_BASE_MS: '50',
      AGENT_BACKOFF_MAX_MS: '500',
      AGENT_COMMAND_WAIT_SECONDS: '1',
      LOG_LEVEL: 'info',
      ...env,
    },
  });
  const lines: string[] = [];
  collect.output.set(agentId, lines);
  child.stdout!.on('data', (b: Buffer) => lines.push(b.toString()));
  child.stderr!.on('data', (b: Buffer) => lines.push(b.toString()));
  collect.children.push(child);
  return child;
}
