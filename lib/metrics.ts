import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { MetricsOptions } from '@aws-lambda-powertools/metrics/types';

/**
 * Delivery metrics as CloudWatch Embedded Metric Format: JSON lines in the function's log that
 * CloudWatch Logs turns into metrics. The hot path therefore makes no PutMetricData call (no
 * added latency, no API throttling, no IAM grant); the line is the metric.
 *
 * Built on powertools' `Metrics`, which shapes the EMF document, validates names and units and
 * flushes a metric on its own when it holds 100 values (EMF's limit per metric). Its lines go to
 * the `write` passed in instead of its own console, so Lambda writes them to stdout, the local
 * stack only when asked (`npm start -- --metrics`) and tests capture them.
 */

/** Where EMF lines go (one JSON document per call, without a newline). */
export type EmfWriter = (line: string) => void;

/** Dimension `service` of every metric (powertools always adds one); the dashboard and alarm name it. */
export const METRICS_SERVICE = 'realtime-gateway';

/** The stack's custom namespace: the agent publishes its counters there too (its role is limited to it). */
export function metricsNamespace(stack: string): string {
  return `RealtimeGateway/${stack}`;
}

/** Metric names; the dashboard and the alarm use these, never a literal. */
export const DELIVERY_METRICS = {
  /** Events (and send-to-user / reply messages) that reached a connection. */
  deliveries: 'deliveries',
  /** Connections that answered 410 and were pruned. */
  gone: 'gone',
  /** Deliveries that still failed after their retries (throttled ones included). */
  failed: 'failed',
  /** Of those, the ones whose last answer was 429. */
  throttled: 'throttled',
  /** Connections closed with DeleteConnection so that they resync. */
  resyncs: 'resyncs',
  /** Items-stream records fan-out received. */
  records: 'records',
  /** Topic publishes written by POST /publish. */
  published: 'published',
  /** Publish → delivery time of each delivered event (from the item's `ts`), one value per delivery. */
  latency: 'latencyMs',
} as const;

export type CountMetric = Exclude<keyof typeof DELIVERY_METRICS, 'latency'>;

export interface DeliveryMetrics {
  /** One delivery's publish → delivery time. */
  latency(ms: number): void;
  /** Adds `n` to a counter (0 too: a graph then shows a quiet minute as 0, not as a gap). */
  count(name: CountMetric, n: number): void;
  /** Writes what was recorded since the last flush as EMF lines. */
  flush(): void;
}

/** Records nothing: the local stack unless asked, and callers that pass no writer. */
export const noMetrics: DeliveryMetrics = { latency: () => {}, count: () => {}, flush: () => {} };

/** powertools' Metrics with its output redirected to `write`. */
class WrittenMetrics extends Metrics {
  readonly #write: EmfWriter;

  constructor(options: MetricsOptions, write: EmfWriter) {
    super(options);
    this.#write = write;
  }

  // Also reached from inside powertools when a metric holds 100 values.
  override publishStoredMetrics(): this {
    try {
      if (this.hasStoredMetrics() && !this.isDisabled()) this.#write(JSON.stringify(this.serializeMetrics()));
    } finally {
      this.clearMetrics();
      this.clearDimensions();
      this.clearMetadata();
    }
    return this;
  }
}

export interface DeliveryMetricsOptions {
  readonly namespace: string;
  /** Where the EMF lines go; without one nothing is recorded. */
  readonly write?: EmfWriter;
}

export function createDeliveryMetrics(opts: DeliveryMetricsOptions): DeliveryMetrics {
  if (!opts.write) return noMetrics;
  const m = new WrittenMetrics({ namespace: opts.namespace, serviceName: METRICS_SERVICE }, opts.write);
  return {
    latency: (ms) => {
      // A source clock ahead of ours would give a negative latency; CloudWatch takes it, but it means 0.
      m.addMetric(DELIVERY_METRICS.latency, MetricUnit.Milliseconds, Math.max(0, Math.round(ms)));
    },
    count: (name, n) => {
      m.addMetric(DELIVERY_METRICS[name], MetricUnit.Count, n);
    },
    flush: () => {
      m.publishStoredMetrics();
    },
  };
}
