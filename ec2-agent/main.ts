import { clientOptionsFromEnv, createClients } from '../lib/aws/clients';
import { loadConfig } from '../lib/config';
import { createLogger } from '../lib/log';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { startAgent } from './agent';
import { loadAgentOptions } from './config';
import { startMetricsPublisher, type MetricsPublisher } from './metrics-publisher';

/**
 * Process entry of the agent (systemd runs the bundled file on each EC2 instance). Settings
 * come from the environment (lib/config + ec2-agent/config); SIGTERM (systemd stop, ASG
 * instance refresh or scale-in) and SIGINT release the leases so another instance takes the
 * sockets at its next reconcile instead of after a lease period, then exit 0.
 */
async function main(): Promise<void> {
  const log = createLogger({ base: { component: 'ec2-agent' } });
  // The agent authenticates no subscribers: it needs no JWT key (which is kept out of its environment).
  const config = loadConfig(process.env, { auth: false });
  const options = loadAgentOptions(process.env);
  const clients = createClients(clientOptionsFromEnv(process.env));
  const agent = await startAgent({ config, clients, log, clock: Date.now }, options);
  let metrics: MetricsPublisher | undefined;
  const namespace = process.env.METRICS_NAMESPACE?.trim();
  if (namespace) {
    const cloudwatch = new CloudWatchClient({ region: config.region });
    metrics = startMetricsPublisher({ client: cloudwatch, namespace, read: () => agent.metrics(), log });
  }
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('shutting down', { signal });
    agent
      .stop()
      .then(() => metrics?.stop())
      .then(() => {
        clients.destroy();
        process.exit(0);
      })
      .catch((err) => {
        log.error('shutdown failed', { err });
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err) => {
  // ConfigError names the key; print it plainly so the systemd journal shows why.
  process.stderr.write(`${JSON.stringify({ level: 'error', msg: 'agent failed to start', err: { name: err?.name, message: err?.message } })}\n`);
  process.exit(1);
});
