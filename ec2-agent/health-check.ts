import type { Logger } from '../lib/log';
import type { HealthRecords } from '../lib/upstream/health-records';
import type { Fence } from '../lib/upstream/leases';
import type { Metrics } from './metrics';
import type { UpstreamConnection } from './upstream-connection';

/**
 * Seed 000's health rule, on a timer (the seed's cron ran `netstat … ESTABLISHED` each minute):
 * - the socket is open and answers a ping within pingTimeoutMs → healthy: countErr = 0,
 *   isActive = true, lastHealthyAt = now;
 * - otherwise → countErr += 1 and reconnect;
 * - countErr > 2 → close it, isActive = false, status `failed`, no more reconnects.
 * A ping/pong round trip is a stronger test than the seed's "a TCP connection exists": it also
 * catches a peer that hangs with the connection still established.
 */

export const COUNT_ERR_LIMIT = 2;

export type HealthOutcome = 'healthy' | 'reconnect' | 'fail' | 'lost';

export interface HealthCheckerOptions {
  readonly records: HealthRecords;
  /** This agent's current fence; undefined while it has no live heartbeat (then the socket is lost). */
  readonly fence: () => Fence | undefined;
  readonly pingTimeoutMs: number;
  readonly clock: () => number;
  readonly metrics: Metrics;
  readonly log: Logger;
}

export class HealthChecker {
  constructor(private readonly opts: HealthCheckerOptions) {}

  /** Probes one connection and records the result; the caller acts on the outcome. */
  async check(socketId: string, conn: UpstreamConnection): Promise<{ outcome: HealthOutcome; countErr?: number; reason?: string }> {
    this.opts.metrics.inc('healthChecks');
    const wasOpen = conn.isOpen;
    const ok = wasOpen && (await conn.ping(this.opts.pingTimeoutMs));
    const now = this.opts.clock();
    const fence = this.opts.fence();
    if (!fence) return { outcome: 'lost' };
    if (ok) {
      const r = await this.opts.records.healthy(socketId, fence, now);
      return r.ok ? { outcome: 'healthy', countErr: 0 } : { outcome: 'lost' };
    }
    this.opts.metrics.inc('healthFailures');
    const reason = wasOpen ? `no pong within ${this.opts.pingTimeoutMs} ms` : 'socket not open';
    const r = await this.opts.records.unhealthy(socketId, fence, now, reason);
    if (!r.ok) return { outcome: 'lost' };
    this.opts.log.warn('upstream unhealthy', { socketId, countErr: r.countErr, reason });
    return { outcome: r.countErr > COUNT_ERR_LIMIT ? 'fail' : 'reconnect', countErr: r.countErr, reason };
  }
}
