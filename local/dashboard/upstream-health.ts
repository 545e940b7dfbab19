/**
 * When the upstream view marks a socket unhealthy, and how long ago it was last healthy. Pure, so
 * the rule has one definition and a unit test.
 */

export interface HealthInput {
  status: string;
  isActive: boolean;
  countErr: number;
  lastHealthyAt: string | null;
}

export interface Health {
  unhealthy: boolean;
  /** Why, in words for the row's tooltip; empty when healthy. */
  reasons: string[];
  /** "12 s ago", "3 min ago", "never". */
  lastHealthy: string;
}

export function upstreamHealth(row: HealthInput, now: number): Health {
  const reasons: string[] = [];
  if (row.status === 'failed') reasons.push('failed: the agent gave up on it');
  if (row.countErr > 0) reasons.push(`${row.countErr} consecutive error${row.countErr === 1 ? '' : 's'}`);
  return { unhealthy: reasons.length > 0, reasons, lastHealthy: ago(row.lastHealthyAt, now) };
}

export function ago(iso: string | null, now: number): string {
  const t = iso ? Date.parse(iso) : NaN;
  if (!Number.isFinite(t)) return 'never';
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 90) return `${s} s ago`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min ago`;
  if (s < 48 * 3600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}
