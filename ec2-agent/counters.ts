import type { UpstreamCounters } from '../lib/upstream/row';
import type { MetricName, Metrics } from './metrics';

type CounterName = keyof UpstreamCounters;

/**
 * The per-socket counters (messagesIn, …) gathered between two writes to the socket's row, and
 * the agent-wide metric each event also counts in: one call per event instead of a
 * bump-and-count pair. The deltas reach the row at most once per flush period (and with a
 * release or fail), never one write per message.
 */
export class CounterLedger {
  private readonly deltas = new Map<string, Partial<UpstreamCounters>>();

  constructor(private readonly metrics: Metrics) {}

  /** One event for the socket's `name` counter, also counted in the agent's `name` metric and `alsoMetrics`. */
  count(socketId: string, name: CounterName, ...alsoMetrics: MetricName[]): void {
    const d = this.deltas.get(socketId) ?? {};
    d[name] = (d[name] ?? 0) + 1;
    this.deltas.set(socketId, d);
    this.metrics.inc(name);
    for (const m of alsoMetrics) this.metrics.inc(m);
  }

  /** Sockets with deltas waiting. */
  active(): string[] {
    return [...this.deltas.keys()];
  }

  /** The socket's deltas, cleared. */
  take(socketId: string): Partial<UpstreamCounters> {
    const d = this.deltas.get(socketId) ?? {};
    this.deltas.delete(socketId);
    return d;
  }

  /** Puts back deltas whose write was not confirmed, so the next write carries them. */
  restore(socketId: string, d: Partial<UpstreamCounters>): void {
    const cur = this.deltas.get(socketId) ?? {};
    for (const [k, v] of Object.entries(d) as [CounterName, number][]) cur[k] = (cur[k] ?? 0) + v;
    if (Object.keys(cur).length) this.deltas.set(socketId, cur);
  }
}
