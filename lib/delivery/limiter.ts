/**
 * A counting semaphore: at most `n` tasks in flight. Fan-out runs every PostToConnection of a
 * batch through one limiter so concurrency is bounded per invocation (and matches the number of
 * keep-alive sockets), whatever the number of topics and pages in the batch.
 */
export type Limiter = <T>(task: () => Promise<T>) => Promise<T>;

export function createLimiter(n: number): Limiter {
  if (!Number.isInteger(n) || n < 1) throw new TypeError(`limiter size must be a positive integer, got ${n}`);
  return semaphore(() => n).run;
}

/**
 * The semaphore both limiters share: `size()` is read at every admission, so the adaptive
 * limiter can move it (`pump` admits waiters after it grows).
 */
function semaphore(size: () => number) {
  let active = 0;
  const waiting: (() => void)[] = [];
  const pump = () => {
    while (active < size() && waiting.length) {
      active++;
      waiting.shift()!();
    }
  };
  const release = () => {
    active--;
    pump();
  };
  const run: Limiter = <T>(task: () => Promise<T>): Promise<T> => {
    const go = () => {
      let p: Promise<T>;
      try {
        p = task();
      } catch (err) {
        p = Promise.reject(err);
      }
      return p.finally(release);
    };
    if (active < size()) {
      active++;
      return go();
    }
    return new Promise<void>((resolve) => waiting.push(resolve)).then(go);
  };
  return { run, pump, active: () => active, waiting: () => waiting.length };
}

/**
 * What one management API request tells the adaptive limiter: `throttled` (429: the account's
 * `@connections` quota is spent), `ok` (answered: the limit can grow if it is what holds us
 * back), `neutral` (5xx, network: says nothing about the quota).
 */
export type Signal = 'ok' | 'throttled' | 'neutral';

export interface AdaptiveLimiterOptions {
  /** The ceiling (FANOUT_CONCURRENCY): never more tasks in flight than this, nor keep-alive sockets. */
  readonly max: number;
  /** The floor a run of 429s cannot push the limit below (default 2, or `max` if smaller). */
  readonly min?: number;
  /** Where the limit starts (default 16, or `max` if smaller). */
  readonly initial?: number;
  /** Multiplicative decrease on a 429 (default 0.5). */
  readonly decrease?: number;
  /** Monotonic milliseconds, to time each request's round trip (tests inject one). */
  readonly now?: () => number;
}

export interface AdaptiveLimiter {
  /** Runs a task within the current limit (a semaphore whose size moves). */
  readonly run: Limiter;
  /** Called when a request starts; the returned function reports how it ended. */
  request(): (signal: Signal) => void;
  /** The current limit. */
  readonly limit: number;
  /** The highest limit reached and the number of decreases (for logs and benchmarks). */
  readonly peak: number;
  readonly decreases: number;
}

/**
 * AIMD concurrency for requests against a rate quota with a long round trip. With a fixed number
 * in flight, deliveries/s = in-flight / round trip: 64 at 30 ms is ~2,100/s whatever the quota
 * allows, and a number large enough for the quota on one topic is a 429 storm for many.
 *
 * - Slow start: while no 429 has been seen, each answered request while the limiter is full
 *   (tasks waiting, so latency is what bounds us) raises the limit by one: it doubles per round
 *   trip, so a large topic reaches the quota within a few round trips.
 * - Congestion avoidance, after the first 429: +1 per window of answered requests (one window =
 *   `limit` answers while full), i.e. +1 per round trip.
 * - 429s multiply the limit by `decrease` (floor `min`), once per window: the second 429 of
 *   requests sent since the last cut does it (a lone 429 can be another API's or a fault); 429s of
 *   requests already in flight when the limit was cut say nothing new and are ignored (each
 *   request remembers the epoch it started in), so one burst of 429s halves the limit once.
 * - Latency-bound means the round trip, not a queue, is what each request waits for: an answer
 *   counts towards growth only if its round trip is close to the fastest seen (at most twice it, or
 *   20 ms more). When requests queue — a CPU-bound sender or receiver, an overloaded endpoint —
 *   more in flight only lengthens every round trip towards the delivery budget. An answer slower
 *   than 4× the fastest and 250 ms more cuts the limit by a quarter, once per window, like a 429.
 * - Never above `max`: the fixed ceiling the configuration gives.
 */
/** 429s within one window (calls sent since the last cut) that halve the limit. */
const THROTTLES_PER_CUT = 2;

export function createAdaptiveLimiter(o: AdaptiveLimiterOptions): AdaptiveLimiter {
  const max = o.max;
  if (!Number.isInteger(max) || max < 1) throw new TypeError(`adaptive limiter max must be a positive integer, got ${max}`);
  const min = Math.min(max, o.min ?? 2);
  const decrease = o.decrease ?? 0.5;
  if (!Number.isInteger(min) || min < 1) throw new TypeError(`adaptive limiter min must be a positive integer, got ${o.min}`);
  if (!(decrease > 0 && decrease < 1)) throw new TypeError(`adaptive limiter decrease must be between 0 and 1, got ${o.decrease}`);
  const now = o.now ?? (() => performance.now());
  let limit = Math.max(min, Math.min(max, o.initial ?? 16));
  let fastest = Infinity;
  let throttledInWindow = 0;
  if (!Number.isInteger(limit)) throw new TypeError(`adaptive limiter initial must be an integer, got ${o.initial}`);
  let peak = limit;
  let decreases = 0;
  let slowStart = true;
  let answered = 0;
  let epoch = 0;
  const gate = semaphore(() => limit);
  const { run, pump } = gate;
  const grow = () => {
    if (limit >= max) return;
    limit++;
    peak = Math.max(peak, limit);
    pump();
  };

  const cut = (factor: number) => {
    throttledInWindow = 0;
    epoch++;
    decreases++;
    slowStart = false;
    answered = 0;
    limit = Math.max(min, Math.floor(limit * factor));
  };

  const request = () => {
    const started = epoch;
    const t0 = now();
    return (signal: Signal) => {
      if (signal === 'throttled') {
        // One 429 alone may be another API of the account taking the last token, or a fault: a
        // second one in the same window is the quota.
        if (started === epoch && ++throttledInWindow >= THROTTLES_PER_CUT) cut(decrease);
        return;
      }
      if (signal !== 'ok') return;
      const rtt = now() - t0;
      fastest = Math.min(fastest, rtt);
      if (rtt > Math.max(4 * fastest, fastest + 250)) {
        if (started === epoch) cut(0.75);
        return;
      }
      if (rtt > Math.max(2 * fastest, fastest + 20)) return;
      // Only a full limiter is latency-bound: with nothing waiting, a higher limit changes nothing.
      if (gate.waiting() === 0 && gate.active() < limit) return;
      if (slowStart) return grow();
      if (++answered >= limit) {
        answered = 0;
        grow();
      }
    };
  };

  return {
    run,
    request,
    get limit() {
      return limit;
    },
    get peak() {
      return peak;
    },
    get decreases() {
      return decreases;
    },
  };
}
