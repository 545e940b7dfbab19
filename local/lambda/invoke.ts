import { randomUUID } from 'node:crypto';

/**
 * Calls a handler the way the Lambda runtime does, so handlers written for AWS run here
 * unchanged: a fresh copy of the event (a handler cannot mutate the caller's object, as across
 * Lambda's wire), a Context with the usual fields, callback-style handlers supported, and a
 * timeout that fails the invocation like "Task timed out after N seconds".
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyHandler = (event: any, context: any, callback?: (err?: unknown, result?: unknown) => void) => any;

export interface InvokeOptions {
  readonly functionName: string;
  readonly timeoutMs?: number;
  readonly memoryMb?: number;
  readonly region?: string;
}

export class LambdaTimeoutError extends Error {
  readonly code = 'lambda_timeout';
  constructor(functionName: string, timeoutMs: number) {
    super(`${functionName}: Task timed out after ${(timeoutMs / 1000).toFixed(2)} seconds`);
    this.name = 'LambdaTimeoutError';
  }
}

export function lambdaContext(opts: InvokeOptions, deadline: number) {
  const region = opts.region ?? 'us-east-1';
  return {
    awsRequestId: randomUUID(),
    functionName: opts.functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${region}:000000000000:function:${opts.functionName}`,
    memoryLimitInMB: String(opts.memoryMb ?? 512),
    logGroupName: `/aws/lambda/${opts.functionName}`,
    logStreamName: `local/${randomUUID()}`,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
}

export async function invokeLambda<R = unknown>(handler: AnyHandler, event: unknown, opts: InvokeOptions): Promise<R> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  const ctx = lambdaContext(opts, deadline);
  const copy = event === undefined ? undefined : structuredClone(event);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new LambdaTimeoutError(opts.functionName, timeoutMs)), timeoutMs);
    timer.unref();
  });
  const run = new Promise<R>((resolve, reject) => {
    const callback = (err?: unknown, result?: unknown) => (err ? reject(err) : resolve(result as R));
    try {
      const out = handler.length >= 3 ? handler(copy, ctx, callback) : handler(copy, ctx);
      if (out && typeof (out as Promise<R>).then === 'function') (out as Promise<R>).then(resolve, reject);
      else if (handler.length < 3) resolve(out as R);
    } catch (err) {
      reject(err);
    }
  });
  try {
    return await Promise.race([run, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
