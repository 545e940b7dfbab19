import { loadConfig, type AppConfig } from './config';
import { clientOptionsFromEnv, createClients, type AwsClients } from './aws/clients';
import { createLogger, type Logger } from './log';
import type { EmfWriter } from './metrics';

/**
 * What every handler receives. `functions/<name>.ts` exports `createHandler(deps)` (used by the
 * local stack and tests, which pass their own clients and config) and `handler` (what Lambda
 * calls), which builds the default dependencies from the environment on first invocation and
 * reuses them while the execution environment stays warm.
 */
export interface Deps {
  readonly config: AppConfig;
  readonly clients: AwsClients;
  readonly log: Logger;
  /** Epoch ms; injected so tests can move time (TTL, leases). */
  readonly clock: () => number;
  /** Where handlers write their CloudWatch EMF metric lines (lib/metrics.ts); none: no metrics. */
  readonly emf?: EmfWriter;
}

let cached: Deps | undefined;

/** Dependencies from the Lambda environment, created once per execution environment. */
export function defaultDeps(): Deps {
  if (!cached) {
    const config = loadConfig(process.env);
    cached = {
      config,
      clients: createClients({ ...clientOptionsFromEnv(process.env), maxSockets: config.subscriber.fanoutConcurrency }),
      log: createLogger(),
      clock: Date.now,
      // Lambda sends stdout to CloudWatch Logs, which extracts the EMF lines as metrics.
      emf: (line) => process.stdout.write(line + '\n'),
    };
  }
  return cached;
}

/** Turns a handler factory into a Lambda entry point with lazily built default dependencies. */
export function lambdaEntry<E, R, C = unknown>(factory: (deps: Deps) => (event: E, context?: C) => Promise<R>) {
  let h: ((event: E, context?: C) => Promise<R>) | undefined;
  return (event: E, context?: C): Promise<R> => {
    h ??= factory(defaultDeps());
    return h(event, context);
  };
}
