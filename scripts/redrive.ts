import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { createClients, clientOptionsFromEnv } from '../lib/aws/clients';
import { ConfigError } from '../lib/errors';
import { ENV, loadConfig } from '../lib/config';
import { createLogger } from '../lib/log';
import { ItemStore } from '../lib/stores/items';
import { redrive } from '../lib/fanout/redrive';
import { createHandler } from '../functions/fanout';

/**
 * `npm run redrive`: replays what reached `fanoutDlq` (lib/fanout/redrive.ts).
 *
 *   npm run redrive                                   the running local stack (.local/endpoints.json)
 *   npm run redrive -- --aws                          AWS: the fanout function's environment + FANOUT_DLQ_URL,
 *                                                     credentials from the default chain (docs/deploy.md)
 */

const HELP = 'usage: npm run redrive -- [--endpoints .local/endpoints.json | --aws]';

async function main() {
  const { values } = parseArgs({ options: { aws: { type: 'boolean', default: false }, endpoints: { type: 'string', default: '.local/endpoints.json' }, help: { type: 'boolean', default: false } } });
  if (values.help) return console.log(HELP);
  let env: Record<string, string | undefined> = process.env;
  if (!values.aws) {
    const file = path.resolve(values.endpoints!);
    let endpoints: { redrive?: Record<string, string> };
    try {
      endpoints = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch {
      throw new ConfigError('--endpoints', `cannot read ${file}: start the local stack first (npm start), or use --aws`);
    }
    if (!endpoints.redrive) throw new ConfigError('--endpoints', `${file} has no "redrive" section: restart the local stack with this version`);
    // Redrive touches no secret; the local secrets store still wants a key to load the config.
    env = { ...endpoints.redrive, [ENV.localSecretsDir]: os.tmpdir(), [ENV.localSecretsKey]: randomBytes(32).toString('hex') };
  }
  const dlqUrl = env.FANOUT_DLQ_URL;
  if (!dlqUrl) throw new ConfigError('FANOUT_DLQ_URL', 'is not set; expected the fanoutDlq queue URL (aws sqs get-queue-url --queue-name {prefix}-fanoutDlq)');
  const config = loadConfig(env);
  // Locally any keys work; on AWS the default chain (profile, SSO, role) provides them.
  const clients = createClients({ ...clientOptionsFromEnv(env), ...(values.aws ? {} : { credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }) });
  const log = createLogger({ base: { component: 'redrive' } });
  try {
    const deps = { config, clients, log, clock: Date.now };
    const items = new ItemStore(clients.doc, { itemsTable: config.tables.items, historyTable: config.tables.history, historyTtlSeconds: config.subscriber.historyTtlSeconds, clock: Date.now });
    const report = await redrive({
      sqs: clients.sqs,
      streams: clients.streams,
      dlqUrl,
      history: (topic, after, upto) => items.historySince(topic, after, upto),
      fanout: createHandler(deps),
      log,
    });
    process.stdout.write(JSON.stringify(report) + '\n');
    if (report.kept > 0) process.exitCode = 1;
  } finally {
    clients.destroy();
  }
}

main().catch((err) => {
  process.stderr.write(`redrive failed: ${err instanceof ConfigError ? err.message : ((err as Error)?.stack ?? err)}\n`);
  process.exit(1);
});
