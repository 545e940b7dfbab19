/**
 * The agent's counters, in one flat map so a log line, a test or a CloudWatch EMF emitter can
 * read them alike. `openSockets` and `redundantSlotsWaiting` are gauges; everything else only grows.
 */
export const METRIC_NAMES = [
  'openSockets',
  'messagesIn',
  'messagesPersisted',
  'messagesDropped',
  // Redundant sockets: messages the other slot's agent had already persisted.
  'messagesDeduped',
  // Gauge, redundant sockets: unowned slots the last reconcile saw whose other slot is held here
  // (they wait for a second agent; the socket is degraded).
  'redundantSlotsWaiting',
  'persistErrors',
  'errors',
  'reconnects',
  'commandsHandled',
  'commandsFailed',
  'leasesClaimed',
  'leasesLost',
  'leasesReleased',
  'heartbeats',
  'counterWrites',
  // Ownership audits run, sockets they closed (desired closed with the command lost, or taken
  // over by another agent), and orphans they adopted (owned here in the table, run nowhere: a
  // claim whose answer was lost): see ec2-agent/audit.ts.
  'audits',
  'auditClosed',
  'auditAdopted',
  'healthChecks',
  'healthFailures',
  'socketsFailed',
  'sinkPosted',
  'sinkDropped',
  'sinkErrors',
] as const;

export type MetricName = (typeof METRIC_NAMES)[number];

export class Metrics {
  private readonly values = new Map<MetricName, number>(METRIC_NAMES.map((n) => [n, 0]));

  inc(name: MetricName, by = 1): void {
    this.values.set(name, (this.values.get(name) ?? 0) + by);
  }

  set(name: MetricName, value: number): void {
    this.values.set(name, value);
  }

  get(name: MetricName): number {
    return this.values.get(name) ?? 0;
  }

  snapshot(): Record<string, number> {
    return Object.fromEntries(this.values);
  }
}
