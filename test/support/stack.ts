import { startLocalStack, type LocalStack, type LocalStackOptions } from '../../local/stack';
import { createLogger } from '../../lib/log';
import { testDynamoEndpoint, uniquePrefix } from './env';

export type { LocalStack } from '../../local/stack';

/**
 * The local stack for one test suite: the run's shared DynamoDB Local, tables and queues under a
 * prefix of its own, its own emulators on free loopback ports. Always `await stack.stop()` in
 * an `after` hook. Logs are quiet unless TEST_LOG_LEVEL is set.
 */
export function startTestStack(opts: Omit<LocalStackOptions, 'dynamodbEndpoint' | 'prefix'> = {}): Promise<LocalStack> {
  return startLocalStack({
    streamIdlePollMs: 20,
    log: createLogger({ level: (process.env.TEST_LOG_LEVEL as 'debug' | undefined) ?? 'error' }),
    ...opts,
    dynamodbEndpoint: testDynamoEndpoint(),
    prefix: uniquePrefix('s'),
  });
}
