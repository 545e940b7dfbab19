import fs from 'node:fs';
import { parseEnv } from 'node:util';
import { ENV } from '../lib/config';
import { ConfigError } from '../lib/errors';

/**
 * The handler environment `npm start` adds to the local stack's defaults: handler settings
 * (AUTH_MODE=jwt, JWT_*, ITEM_KEYS, …) from an `--env-file` and from the shell, the shell winning
 * as with Node's own --env-file. Settings the stack wires itself (its table prefix, queue URL,
 * management endpoint, secret store) are refused in the file and ignored in the shell: they would
 * point the handlers away from the stack's own components.
 */

const STACK_OWNED: ReadonlySet<string> = new Set([
  ENV.stack,
  ENV.region,
  ENV.tablePrefix,
  ENV.commandQueueUrl,
  ENV.inboundQueueUrl,
  ENV.fanoutPartitionQueueUrl,
  ENV.managementEndpoint,
  ENV.secretsBackend,
  ENV.localSecretsDir,
  ENV.localSecretsKey,
]);

/** Handler settings a user may set: every config key except those the stack wires itself. */
export const USER_SETTINGS: readonly string[] = Object.values(ENV).filter((k) => !STACK_OWNED.has(k));

export function handlerEnv(shell: Readonly<Record<string, string | undefined>>, envFile?: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (envFile !== undefined) {
    let text: string;
    try {
      text = fs.readFileSync(envFile, 'utf8');
    } catch (err) {
      throw new ConfigError('--env-file', `cannot read ${envFile}: ${(err as Error).message}`);
    }
    for (const [key, value] of Object.entries(parseEnv(text))) {
      if (STACK_OWNED.has(key)) throw new ConfigError(key, `in ${envFile} is set by the local stack itself; remove it from the file`);
      if (!USER_SETTINGS.includes(key)) {
        throw new ConfigError(key, `in ${envFile} is not a handler setting; expected one of ${USER_SETTINGS.join(', ')}`);
      }
      if (value !== undefined) out[key] = value;
    }
  }
  for (const key of USER_SETTINGS) {
    const v = shell[key];
    if (v !== undefined && v !== '') out[key] = v;
  }
  return out;
}
