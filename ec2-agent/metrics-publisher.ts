import { CloudWatchClient, PutMetricDataCommand, type MetricDatum } from '@aws-sdk/client-cloudwatch';
import type { Logger } from '../lib/log';
import type { MetricName } from './metrics';

/**
 * Publishes the agent's counters to CloudWatch, so the stack's alarms can see them (the
 * "upstreams failed" alarm sums `socketsFailed` across the fleet). Counters go out as the
 * increase since the last publish, gauges as their value, without dimensions so that one
 * metric covers every instance (the alarm needs no per-instance wiring). The agent role may
 * only PutMetricData into its stack's namespace (an IAM condition on cloudwatch:namespace).
 */

export const GAUGES: ReadonlySet<MetricName> = new Set(['openSockets']);
/**
 * What goes to CloudWatch: the alarm's metric and the few an operator watches. Each custom metric
 * costs $0.30 a month; the other counters stay in the agent's logs (`agent stopped`, periodic lines).
 */
export const PUBLISHED: readonly MetricName[] = ['socketsFailed', 'openSockets', 'messagesIn', 'messagesDropped'];
/** PutMetricData accepts up to 1000 datums per call; ours are far fewer, but keep it honest. */
const MAX_DATUMS = 1000;

export interface MetricsPublisherOptions {
  readonly client: CloudWatchClient;
  readonly namespace: string;
  readonly read: () => Record<string, number>;
  readonly intervalMs?: number;
  readonly log: Logger;
  readonly clock?: () => number;
}

export interface MetricsPublisher {
  /** One publish now (also what the timer calls). */
  flush(): Promise<void>;
  stop(): Promise<void>;
}

export function datumsSince(previous: Record<string, number>, current: Record<string, number>, at: Date): MetricDatum[] {
  return Object.entries(current)
    .filter(([name]) => (PUBLISHED as readonly string[]).includes(name))
    .map(([name, value]) => ({
      MetricName: name,
      Timestamp: at,
      Unit: 'Count',
      Value: GAUGES.has(name as MetricName) ? value : Math.max(0, value - (previous[name] ?? 0)),
    }));
}

export function startMetricsPublisher(opts: MetricsPublisherOptions): MetricsPublisher {
  const clock = opts.clock ?? Date.now;
  let previous: Record<string, number> = {};
  let inFlight: Promise<void> = Promise.resolve();
  const flush = () => {
    inFlight = inFlight.then(async () => {
      const current = opts.read();
      const datums = datumsSince(previous, current, new Date(clock()));
      try {
        for (let i = 0; i < datums.length; i += MAX_DATUMS) {
          await opts.client.send(new PutMetricDataCommand({ Namespace: opts.namespace, MetricData: datums.slice(i, i + MAX_DATUMS) }));
        }
        previous = current;
      } catch (err) {
        // Keep `previous`: the next publish carries this period's increase too.
        opts.log.warn('metrics publish failed', { err });
      }
    });
    return inFlight;
  };
  const timer = setInterval(() => void flush(), opts.intervalMs ?? 60_000);
  timer.unref();
  return {
    flush,
    async stop() {
      clearInterval(timer);
      await flush();
    },
  };
}
