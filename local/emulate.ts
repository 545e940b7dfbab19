import path from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger } from '../lib/log';
import { EmulatorOptionError } from './apigw/errors';
import { QuotaSpecError, parseLatencyFlag, parseQuotaFlags } from './apigw/quota';
import { loadRoutesFile } from './apigw/routes-file';
import { ensureLocalCa, issueServerCert } from './apigw/tls';
import { WebSocketEmulator } from './apigw/websocket-emulator';
import { reexecTrusting } from './tls-trust';

/**
 * `npm run emulate`: the API Gateway WebSocket emulator alone, for any project's handlers.
 *
 *   npm run emulate -- --routes routes.json [--tls] [--ws-port N] [--stage NAME] [--ca-dir DIR]
 *                      [--quota-rps N [--quota-burst N]] [--latency-ms MS|MIN,MAX|MEDIAN~JITTER]
 *
 * The first line on standard output is one JSON object with the endpoints (`websocketUrl`,
 * `managementUrl`, and `caFile` with --tls: the keys of .local/endpoints.json); logs go to
 * standard error. Handlers run in this process with its environment (TABLE_NAME, AWS_REGION,
 * AWS_ENDPOINT_URL_DYNAMODB, …). See docs/apigw-emulator.md.
 */

const HELP =
  'usage: npm run emulate -- --routes routes.json [--tls] [--ws-port N] [--stage NAME] [--ca-dir DIR] [--host ADDR]\n' +
  '                          [--quota-rps N [--quota-burst N]] [--latency-ms MS|MIN,MAX|MEDIAN~JITTER]';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      routes: { type: 'string' },
      tls: { type: 'boolean', default: false },
      'ws-port': { type: 'string', default: process.env.WS_PORT ?? '3001' },
      stage: { type: 'string', default: 'local' },
      'ca-dir': { type: 'string', default: '.local/tls/ca' },
      host: { type: 'string', default: '127.0.0.1' },
      'quota-rps': { type: 'string' },
      'quota-burst': { type: 'string' },
      'latency-ms': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  if (!values.routes) throw new EmulatorOptionError('--routes', `is required\n${HELP}`);
  const portText = values['ws-port']!;
  if (!/^\d+$/.test(portText) || Number(portText) > 65535) throw new EmulatorOptionError('--ws-port', `is "${portText}"; expected a port number (0 picks a free one)`);

  if (values['quota-burst'] !== undefined && values['quota-rps'] === undefined) throw new QuotaSpecError('--quota-burst', 'needs --quota-rps');
  const quota = values['quota-rps'] !== undefined ? parseQuotaFlags(values['quota-rps'], values['quota-burst']) : undefined;
  const managementLatency = values['latency-ms'] !== undefined ? parseLatencyFlag(values['latency-ms']) : undefined;
  const ca = values.tls ? ensureLocalCa(values['ca-dir']!) : undefined;
  if (ca && reexecTrusting(ca.caFile, path.dirname(ca.caFile))) return;

  const log = createLogger({ base: { component: 'emulate' }, write: (line) => process.stderr.write(line + '\n') });
  const routes = await loadRoutesFile(values.routes);
  const em = await WebSocketEmulator.start({
    ...routes,
    port: Number(portText),
    host: values.host,
    stage: values.stage,
    ...(ca ? { tls: issueServerCert(ca) } : {}),
    ...(quota ? { quota } : {}),
    ...(managementLatency ? { managementLatency } : {}),
    log,
  });
  process.stdout.write(JSON.stringify({ websocketUrl: em.websocketUrl, managementUrl: em.managementUrl, ...(ca ? { caFile: ca.caFile } : {}) }) + '\n');

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    await em.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}

main().catch((err) => {
  process.stderr.write(`${err instanceof EmulatorOptionError || err instanceof QuotaSpecError ? err.message : ((err as Error)?.stack ?? String(err))}\n`);
  process.exit(1);
});
