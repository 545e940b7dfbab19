/**
 * A counting semaphore: at most `n` tasks in flight. Fan-out runs every PostToConnection of a
 * batch through one limiter so concurrency is bounded per invocation (and matches the number of
 * keep-alive sockets), whatever the number of topics and pages in the batch.
 */
export type Limiter = <T>(task: () => Promise<T>) => Promise<T>;

export function createLimiter(n: number): Limiter {
  if (!Number.isInteger(n) || n < 1) throw new TypeError(`limiter size must be a positive integer, got ${n}`);
  let active = 0;
  const waiting: (() => void)[] = [];
  const release = () => {
    active--;
    const next = waiting.shift();
    if (next) {
      active++;
      next();
    }
  };
  return <T>(task: () => Promise<T>) => {
    const run = () => {
      let p: Promise<T>;
      try {
        p = task();
      } catch (err) {
        p = Promise.reject(err);
      }
      return p.finally(release);
    };
    if (active < n) {
      active++;
      return run();
    }
    return new Promise<void>((resolve) => waiting.push(resolve)).then(run);
  };
}
