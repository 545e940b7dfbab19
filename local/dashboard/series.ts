/**
 * What the topic chart plots, as pure functions (no DOM): the numeric fields of a topic's data
 * and a bounded, time-ordered window of points. Kept apart from the chart library so the rules
 * (which fields count, how many points are kept) are unit-testable.
 */

/** Points kept per topic: at the demo's one update a second, ten minutes. */
export const MAX_POINTS = 600;

/** Fields that are times, not measurements: plotting an epoch next to a voltage flattens the voltage. */
const TIME_FIELD = /^(timestamp|ts|time|.*At)$/;

/** The top-level finite numbers of an object, in key order; none for anything else. */
export function numericFields(data: unknown): Record<string, number> {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return {};
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(data as Record<string, unknown>)) {
    if (typeof v === 'number' && Number.isFinite(v) && !TIME_FIELD.test(k)) out[k] = v;
  }
  return out;
}

export interface Point {
  /** Epoch ms: the source timestamp when there is one, else the receive time. */
  t: number;
  values: Record<string, number>;
  /** Delivery latency (events only). */
  latencyMs?: number;
}

/** A topic's points: fields in first-seen order, at most MAX_POINTS, oldest dropped first. */
export class SeriesWindow {
  readonly fields: string[] = [];
  readonly points: Point[] = [];

  constructor(private readonly max = MAX_POINTS) {}

  /** Adds a point if `data` has numeric fields; returns whether the set of fields grew. */
  add(t: number, data: unknown, latencyMs?: number): { added: boolean; newFields: boolean } {
    const values = numericFields(data);
    const keys = Object.keys(values);
    if (keys.length === 0) return { added: false, newFields: false };
    let newFields = false;
    for (const k of keys) {
      if (!this.fields.includes(k)) {
        this.fields.push(k);
        newFields = true;
      }
    }
    this.points.push({ t, values, latencyMs });
    if (this.points.length > this.max) this.points.splice(0, this.points.length - this.max);
    return { added: true, newFields };
  }

  /** Columns as uPlot wants them: x in seconds, then one column per field, then latency. */
  columns(): (number | null)[][] {
    return [
      this.points.map((p) => p.t / 1000),
      ...this.fields.map((f) => this.points.map((p) => p.values[f] ?? null)),
      this.points.map((p) => p.latencyMs ?? null),
    ];
  }
}
