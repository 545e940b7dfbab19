/**
 * A counting semaphore: at most `n` tasks in flight. Fan-out runs every PostToConnection of a
 * batch through one limiter so concurrency is bounded per invocation (and matches the number of
 * keep-alive sockets), whatever the number of topics and pages in the batch.
 */
export type Limiter = <T>(task: () => Promise<T>, urgent?: boolean) => Promise<T>;

/** No bound: for callers that have none (one request at a time). */
export const unlimited: Limiter = (task) => task();

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
  // `urgent` tasks (a retry: its delivery already holds its budget's clock) wait at the front.
  const run: Limiter = <T>(task: () => Promise<T>, urgent = false): Promise<T> => {
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
    return new Promise<void>((resolve) => (urgent ? waiting.unshift(resolve) : waiting.push(resolve))).then(go);
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
  /** The deepest cut one window of 429s makes (default 0.5: at most halved). */
  readonly decrease?: number;
  /** The share of 429s in a window, above the noise floor, that cuts the limit (default 0.05). */
  readonly tolerance?: number;
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
 * - Congestion avoidance, after the first cut: +1 per window of answered requests (one window =
 *   `limit` answers, at least 20), i.e. +1 per round trip. In slow start a window is 20 answers,
 *   so the doubling stops within a few milliseconds of the quota's first 429s.
 * - 429s are judged per window, by their share of the answers: a window with more than
 *   `tolerance` (5 %) of 429s above the noise floor cuts the limit to what the quota let through:
 *   over the quota, (1 − share) of the requests in flight are answered 200, so that many in flight
 *   is the quota's rate (no deeper than `decrease`, half, and at least a tenth). Answers to
 *   requests sent before a cut say nothing about the new limit and are not counted (each request
 *   remembers the epoch it started in).
 * - A cut is on probation for one window. Over a quota, sending less makes the 429s fall (to
 *   nothing once we send at the quota's rate); 429s that do not fall are noise (random faults, a
 *   proxy, another API of the account taking a few tokens). If the share after the cut is still
 *   at least half of what caused it (and above the tolerance: a few 429s at the quota's edge are
 *   the quota), the limit goes back to where it was and that share becomes the noise floor, which decays as later windows see fewer 429s. Above a noise floor a window
 *   must also exceed two standard deviations of what noise alone gives (a binomial share varies:
 *   10 % of 64 answers is 6 ± 2.4). A cut that stands is followed by another at once if the share
 *   is still too high; a cut made at a share above a half, or in slow start, always stands. So 10–20 % random 429s
 *   leave the limit where latency puts it (≥ 80 % of its ceiling in the simulations of the unit
 *   tests) instead of at its floor.
 * - Latency-bound means the round trip, not a queue, is what each request waits for: an answer
 *   counts towards growth only if its round trip is close to the fastest seen (at most twice it, or
 *   20 ms more). When requests queue — a CPU-bound sender or receiver, an overloaded endpoint —
 *   more in flight only lengthens every round trip towards the delivery budget. An answer slower
 *   than 4× the fastest and 250 ms more cuts the limit by a quarter, once per epoch.
 * - Never above `max`: the fixed ceiling the configuration gives.
 */
/** Answers a window holds at least, so one 429 in a handful is not read as a 5 % share. */
const WINDOW_MIN = 20;
/**
 * The highest 429 share that may be taken for noise. Over a quota, a cut to half sends a share s
 * down to 2s − 1: from at most a half it falls to nothing, which noise never does; above a half
 * the fall can look like noise's, so a cut made there always stands (all 429s always cut).
 */
const MAX_NOISE = 0.5;

export function createAdaptiveLimiter(o: AdaptiveLimiterOptions): AdaptiveLimiter {
  const max = o.max;
  if (!Number.isInteger(max) || max < 1) throw new TypeError(`adaptive limiter max must be a positive integer, got ${max}`);
  const min = Math.min(max, o.min ?? 2);
  const decrease = o.decrease ?? 0.5;
  const tolerance = o.tolerance ?? 0.05;
  if (!Number.isInteger(min) || min < 1) throw new TypeError(`adaptive limiter min must be a positive integer, got ${o.min}`);
  if (!(decrease > 0 && decrease < 1)) throw new TypeError(`adaptive limiter decrease must be between 0 and 1, got ${o.decrease}`);
  if (!(tolerance >= 0 && tolerance < 1)) throw new TypeError(`adaptive limiter tolerance must be between 0 and 1, got ${o.tolerance}`);
  const now = o.now ?? (() => performance.now());
  let limit = Math.max(min, Math.min(max, o.initial ?? 16));
  if (!Number.isInteger(limit)) throw new TypeError(`adaptive limiter initial must be an integer, got ${o.initial}`);
  let fastest = Infinity;
  let peak = limit;
  let decreases = 0;
  let slowStart = true;
  let answered = 0;
  let epoch = 0;
  /** The 429 share that cutting did not reduce: not ours to fix. */
  let noise = 0;
  /** The window of answers the 429 share is judged on (requests of the current epoch only). */
  const freshWindow = () => ({ size: slowStart ? WINDOW_MIN : Math.max(WINDOW_MIN, limit), answers: 0, throttled: 0 });
  let win = freshWindow();
  /** The cut being checked: the state before it and the share that caused it. */
  let probation: { limit: number; share: number } | undefined;
  const gate = semaphore(() => limit);
  const { run, pump } = gate;
  const grow = () => {
    if (limit >= max) return;
    limit++;
    peak = Math.max(peak, limit);
    pump();
  };
  const newEpoch = () => {
    epoch++;
    answered = 0;
    win = freshWindow();
  };
  const cutTo = (next: number) => {
    decreases++;
    slowStart = false;
    limit = Math.max(min, Math.min(limit, next));
    newEpoch();
  };

  const closeWindow = () => {
    const share = win.throttled / win.answers;
    if (probation) {
      const p = probation;
      probation = undefined;
      // Sending less did not lower the 429s: they are not the quota answering us.
      if (share >= Math.max(p.share / 2, tolerance) && p.share <= MAX_NOISE) {
        noise = share;
        limit = Math.max(limit, p.limit);
        pump();
        newEpoch();
        return;
      }
    }
    // With a noise floor, a window's share varies by itself (binomially): two standard deviations of margin.
    const margin = 2 * Math.sqrt((noise * (1 - noise)) / win.answers);
    if (share > noise + tolerance + margin) {
      // Over the quota, (1 - share) of what we send gets through: sending that much is the quota.
      const next = Math.min(Math.floor(limit * 0.9), Math.max(Math.floor(limit * decrease), Math.floor(limit * (1 - share))));
      // A cut in slow start always stands: the limit grew during the window the share was read
      // in, so the cut can fall short and the next window still show the quota's 429s.
      probation = slowStart ? undefined : { limit, share };
      cutTo(next);
      return;
    }
    if (share < noise) noise = 0.8 * noise + 0.2 * share;
    win = freshWindow();
  };

  const request = () => {
    const started = epoch;
    const t0 = now();
    return (signal: Signal) => {
      if (signal === 'neutral' || started !== epoch) return;
      win.answers++;
      if (signal === 'throttled') win.throttled++;
      else {
        const rtt = now() - t0;
        fastest = Math.min(fastest, rtt);
        if (rtt > Math.max(4 * fastest, fastest + 250)) {
          probation = undefined;
          cutTo(Math.floor(limit * 0.75));
          return;
        }
        // Only a full limiter is latency-bound, and only if the answer was not held in a queue.
        const latencyBound = rtt <= Math.max(2 * fastest, fastest + 20) && !(gate.waiting() === 0 && gate.active() < limit);
        if (latencyBound && !probation) {
          if (slowStart) grow();
          else if (++answered >= limit) {
            answered = 0;
            grow();
          }
        }
      }
      if (win.answers >= win.size) closeWindow();
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
