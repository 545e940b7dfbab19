import { validateBackoff } from './backoff';
import { RealtimeError } from './errors';
import { systemTimers, type Timers } from './timers';
import { BEARER_PROTOCOL, isProtocolToken, type TokenTransport, type WebSocketConstructor } from './transport';
import type { ConnectOptions } from './types';

/** Connect options: their defaults, and the one check that runs before a client does anything. */

const MINUTE = 60_000;

export const DEFAULTS = {
  tokenIn: 'protocol' as TokenTransport,
  protocol: BEARER_PROTOCOL,
  connectTimeoutMs: 10_000,
  pingIntervalMs: 5 * MINUTE,
  pongTimeoutMs: 20_000,
  rotateAfterMs: 115 * MINUTE,
  rotateJitterMs: 5 * MINUTE,
  rotateOverlapMs: 10_000,
  gapTimeoutMs: 2_000,
  subscribeTimeoutMs: 10_000,
  maxBuffered: 1000,
  maxAttempts: Infinity,
};

export type ResolvedOptions = typeof DEFAULTS &
  ConnectOptions & { WebSocket: WebSocketConstructor; timers: Timers; random: () => number };

function invalid(message: string): RealtimeError {
  return new RealtimeError('invalid_option', message);
}

function checkPositive(name: string, v: number): void {
  if (!(typeof v === 'number' && v > 0)) throw invalid(`${name} must be a positive number of milliseconds, got ${String(v)}`);
}

/** The options with their defaults filled in; throws `no_websocket` or `invalid_option` naming what is wrong. */
export function resolveOptions(url: string, options: ConnectOptions): ResolvedOptions {
  const WS = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (!WS) {
    throw new RealtimeError(
      'no_websocket',
      'no WebSocket implementation: this runtime has no global WebSocket (Node 20); pass { WebSocket } from the "ws" package',
    );
  }
  const opts: ResolvedOptions = {
    ...DEFAULTS,
    ...stripUndefined(options),
    WebSocket: WS,
    timers: options.timers ?? systemTimers,
    random: options.random ?? Math.random,
  };
  validate(url, opts);
  return opts;
}

function validate(url: string, o: ResolvedOptions): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw invalid(`url "${url}" is not a valid URL`);
  }
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw invalid(`url must start with ws:// or wss://, got "${u.protocol}"`);
  if (o.token !== undefined && typeof o.token !== 'string' && typeof o.token !== 'function') throw invalid('token must be a string or a function');
  if (o.tokenIn !== 'protocol' && o.tokenIn !== 'query') throw invalid(`tokenIn must be "protocol" or "query", got "${String(o.tokenIn)}"`);
  if (!isProtocolToken(o.protocol)) throw invalid(`protocol "${o.protocol}" is not a valid subprotocol token`);
  for (const k of ['connectTimeoutMs', 'pingIntervalMs', 'pongTimeoutMs', 'rotateAfterMs', 'rotateOverlapMs', 'gapTimeoutMs', 'subscribeTimeoutMs'] as const) {
    checkPositive(k, o[k]);
  }
  if (!(o.rotateJitterMs >= 0 && o.rotateJitterMs < o.rotateAfterMs)) {
    throw invalid(`rotateJitterMs must be >= 0 and below rotateAfterMs (${o.rotateAfterMs}), got ${o.rotateJitterMs}`);
  }
  if (!(o.maxAttempts >= 1)) throw invalid(`maxAttempts must be >= 1, got ${o.maxAttempts}`);
  if (!(Number.isInteger(o.maxBuffered) && o.maxBuffered >= 1)) throw invalid(`maxBuffered must be a positive integer, got ${o.maxBuffered}`);
  if (o.topics !== undefined && !Array.isArray(o.topics)) throw invalid('topics must be an array of topic names');
  try {
    validateBackoff(o.backoff ?? {});
  } catch (err) {
    throw invalid(err instanceof Error ? err.message : String(err));
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
