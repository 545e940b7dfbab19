import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startLocalStack } from './stack';
import { createLogger } from '../lib/log';
import { ConfigError } from '../lib/errors';
import { ENV } from '../lib/config';
import { JavaMissingError } from './dynamodb-local';
import { handlerEnv } from './handler-env';
import { ensureLocalCa, issueServerCert } from './apigw/tls';
import { reexecTrusting } from './tls-trust';
import { FaultSpecError, parseFaultsFlag } from './apigw/faults';
import { QuotaSpecError, parseLatencyFlag, parseQuotaFlags } from './apigw/quota';

/**
 * `npm start`: the whole platform on this machine. Prints the endpoints, writes them to
 * .local/endpoints.json, and stops everything (the JVM included) on Ctrl-C or SIGTERM.
 *
 *   npm start                       in-memory, fresh every run
 *   npm start -- --persist          keep tables and sealed secrets in .local/data
 *   npm start -- --demo             also start the sample upstream platform (npm run demo)
 *   npm start -- --ws-port 3001 --http-port 3000
 *   npm start -- --tls              wss:// and https:// management API, CA in .local/tls/ca
 *   npm start -- --env-file .env    handler settings (AUTH_MODE=jwt, JWT_*, ITEM_KEYS, …)
 *   npm start -- --faults rate=0.2,statuses=429|500,latencyMs=20|40   management API faults (docs/apigw-emulator.md)
 *   npm start -- --quota-rps 2000 --quota-burst 1000 --latency-ms 25,35   the account's @connections quota and round trip
 *   npm start -- --parallelization-factor 4   concurrent batches per stream shard (the stack
 *                                   config's fanout.parallelizationFactor, 1–10; default 1)
 *   npm start -- --app-actions chat.ask,order.track
 *                                   application actions clients may send; they land on the inbound
 *                                   queue (inboundQueueUrl and sqsEndpoint in the endpoints file)
 */

const HELP =
  'usage: npm start -- [--persist [--data-dir DIR]] [--demo] [--agent=false] [--ws-port N] [--http-port N] [--endpoints-file F]\n' +
  '                    [--tls [--ca-dir DIR]] [--env-file FILE] [--dynamodb-endpoint URL]\n' +
  '                    [--faults rate=R,statuses=S|S,latencyMs=MIN|MAX] [--quota-rps N [--quota-burst N]]\n' +
  '                    [--latency-ms MS|MIN,MAX|MEDIAN~JITTER] [--app-actions a,b] [--parallelization-factor N] [--metrics]';

// This machine class runs Node 20; the SDK warns at every start that releases after January 2027
// need Node 22 (deployed Lambdas run nodejs22.x). Said once in README instead of in every start.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

async function main() {
  const { values } = parseArgs({
    options: {
      persist: { type: 'boolean', default: false },
      'data-dir': { type: 'string', default: '.local/data' },
      demo: { type: 'boolean', default: false },
      agent: { type: 'string', default: 'true' },
      'ws-port': { type: 'string', default: process.env.WS_PORT ?? '3001' },
      'http-port': { type: 'string', default: process.env.HTTP_PORT ?? '3000' },
      'endpoints-file': { type: 'string', default: '.local/endpoints.json' },
      tls: { type: 'boolean', default: false },
      'ca-dir': { type: 'string', default: '.local/tls/ca' },
      'env-file': { type: 'string' },
      'dynamodb-endpoint': { type: 'string' },
      faults: { type: 'string' },
      'quota-rps': { type: 'string' },
      'quota-burst': { type: 'string' },
      'latency-ms': { type: 'string' },
      'app-actions': { type: 'string' },
      'parallelization-factor': { type: 'string', default: '1' },
      metrics: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const port = (name: string, v: string) => {
    if (!/^\d+$/.test(v) || Number(v) > 65535) throw new ConfigError(name, `is "${v}"; expected a port number (0 picks a free one)`);
    return Number(v);
  };
  const factor = values['parallelization-factor']!;
  if (!/^(10|[1-9])$/.test(factor)) throw new ConfigError('--parallelization-factor', `is "${factor}"; expected an integer from 1 to 10 (the event source mapping's bounds)`);
  // Read before anything starts, so a bad setting stops here with its name.
  const env = handlerEnv(process.env, values['env-file']);
  // --app-actions wins over APP_ACTIONS from the shell or the env file; loadConfig validates the names.
  if (values['app-actions'] !== undefined) env[ENV.appActions] = values['app-actions'];
  if (values['quota-burst'] !== undefined && values['quota-rps'] === undefined) throw new QuotaSpecError('--quota-burst', 'needs --quota-rps');
  const quota = values['quota-rps'] !== undefined ? parseQuotaFlags(values['quota-rps'], values['quota-burst']) : undefined;
  const ca = values.tls ? ensureLocalCa(values['ca-dir']!) : undefined;
  // Handlers and fan-out run in this process and must trust the CA: re-executed once with it.
  if (ca && reexecTrusting(ca.caFile, path.dirname(ca.caFile))) return;
  const log = createLogger({ base: { component: 'local-stack' } });
  const started = Date.now();
  const stack = await startLocalStack({
    env,
    ...(ca ? { tls: issueServerCert(ca) } : {}),
    ...(values['dynamodb-endpoint'] ? { dynamodbEndpoint: values['dynamodb-endpoint'] } : {}),
    persistDir: values.persist ? path.resolve(values['data-dir']!) : undefined,
    withAgent: values.agent !== 'false',
    wsPort: port('--ws-port', values['ws-port']!),
    httpPort: port('--http-port', values['http-port']!),
    ...(values.faults ? { faults: parseFaultsFlag(values.faults) } : {}),
    ...(quota ? { quota } : {}),
    ...(values['latency-ms'] !== undefined ? { managementLatency: parseLatencyFlag(values['latency-ms']) } : {}),
    streamParallelizationFactor: Number(factor),
    // The EMF lines Lambda would write to CloudWatch Logs, in the same stream as the logs; off by default (one per batch).
    ...(values.metrics ? { emf: (line: string) => process.stdout.write(line + '\n') } : {}),
    log,
  });

  let demo: { stop(): Promise<void>; topics: string[] } | undefined;
  if (values.demo) {
    const { startDemo } = (await import('./demo/demo')) as {
      startDemo: (o: { httpUrl: string }) => Promise<{ stop(): Promise<void>; topics: string[] }>;
    };
    demo = await startDemo({ httpUrl: stack.endpoints.httpUrl });
  }

  const endpointsFile = path.resolve(values['endpoints-file']!);
  fs.mkdirSync(path.dirname(endpointsFile), { recursive: true });
  const endpoints = { ...stack.endpoints, ...(ca ? { caFile: ca.caFile } : {}), redrive: await redriveEnv(stack) };
  fs.writeFileSync(endpointsFile, JSON.stringify(endpoints, null, 2) + '\n');
  const lines = [
    '',
    `realtime-gateway local stack ready in ${((Date.now() - started) / 1000).toFixed(1)} s`,
    `  WebSocket API     ${stack.endpoints.websocketUrl}      (wscat -c "${stack.endpoints.websocketUrl}?userId=alice")`,
    `  HTTP API          ${stack.endpoints.httpUrl}         (POST /publish, /websocket, GET /websockets)`,
    `  Management API    ${stack.endpoints.managementUrl}/@connections/{id}`,
    ...(stack.config.subscriber.appActions.length
      ? [`  App actions       ${stack.config.subscriber.appActions.join(', ')} → ${stack.endpoints.inboundQueueUrl} (SQS at ${stack.endpoints.sqsEndpoint})`]
      : []),
    ...(ca ? [`  CA certificate    ${ca.caFile}      (NODE_EXTRA_CA_CERTS / your client's trust store)`] : []),
    ...(Object.keys(env).length ? [`  Handler settings  ${Object.keys(env).sort().join(', ')}`] : []),
    ...(values.metrics ? ['  Metrics           CloudWatch EMF lines (namespace RealtimeGateway/local) in this log'] : []),
    ...(values.faults ? [`  Injected faults   ${values.faults}   (change: PUT/DELETE ${stack.endpoints.managementUrl}/_emulator/faults)`] : []),
    ...(quota ? [`  @connections quota ${quota.rps} requests/s, burst ${quota.burst}   (change: PUT/DELETE ${stack.endpoints.managementUrl}/_emulator/quota)`] : []),
    ...(values['latency-ms'] !== undefined ? [`  Round trip        ${values['latency-ms']} ms   (change: PUT/DELETE ${stack.endpoints.managementUrl}/_emulator/latency)`] : []),
    ...(stack.endpoints.dashboardUrl ? [`  Dashboard         ${stack.endpoints.dashboardUrl}`] : []),
    ...(demo
      ? [`  Demo topics       ${demo.topics.join(', ')}`, `  Watch one         ${stack.endpoints.dashboardUrl}?topic=${encodeURIComponent(demo.topics[0])}`]
      : []),
    `  Endpoints file    ${path.relative(process.cwd(), endpointsFile)}`,
    `  Storage           ${values.persist ? path.resolve(values['data-dir']!) : 'in memory (use --persist to keep data)'}`,
    '',
    'Ctrl-C stops everything.',
  ];
  process.stdout.write(lines.join('\n') + '\n');

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`\n${signal}: stopping…\n`);
    const force = setTimeout(() => process.exit(1), 15_000);
    force.unref();
    await demo?.stop();
    await stack.stop();
    process.stdout.write('stopped\n');
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

/** What `npm run redrive` needs to reach this stack (no secret: the secrets key stays out). */
async function redriveEnv(stack: Awaited<ReturnType<typeof startLocalStack>>): Promise<Record<string, string>> {
  const ddb = await stack.clients.dynamodb.config.endpoint?.();
  const keep = [ENV.stack, ENV.region, ENV.tablePrefix, ENV.commandQueueUrl, ENV.managementEndpoint, ENV.authMode];
  return {
    ...Object.fromEntries(keep.map((k) => [k, stack.env[k]])),
    ...(ddb ? { AWS_ENDPOINT_URL_DYNAMODB: `${ddb.protocol}//${ddb.hostname}:${ddb.port}` } : {}),
    AWS_ENDPOINT_URL_SQS: new URL(stack.queueUrls.fanoutDlq).origin,
    FANOUT_DLQ_URL: stack.queueUrls.fanoutDlq,
  };
}

main().catch((err) => {
  if (err instanceof JavaMissingError || err instanceof ConfigError || err instanceof FaultSpecError || err instanceof QuotaSpecError) {
    process.stderr.write(`\n${err.message}\n`);
  } else {
    process.stderr.write(`\nlocal stack failed to start: ${(err as Error)?.stack ?? err}\n`);
  }
  process.exit(1);
});
