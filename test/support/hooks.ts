import { startDynamoDbLocal, type RunningDynamoDbLocal } from '../../local/dynamodb-local';

/**
 * One DynamoDB Local JVM for the whole mocha run (about 2 s to start, ~300 MB): suites isolate
 * themselves with their own table prefix. Its endpoint reaches tests through
 * TEST_DYNAMODB_ENDPOINT; test/support/stack.ts reads it.
 */
let ddb: RunningDynamoDbLocal | undefined;
// The SDK's "Node 22 needed from 2027" notice, once per process, is noise in test output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

// Mocha 12 re-emits an unhandled rejection from test code on `process`, where nobody listens, so
// a failing expectation in un-awaited async code would count as a pass. Rethrown, it becomes an
// uncaught exception: mocha fails the running test with it, and after the run it ends the
// process non-zero, which scripts/test.mjs counts as a failure.
process.on('unhandledRejection', (reason) => {
  throw reason;
});

export const mochaHooks = {
  async beforeAll(this: Mocha.Context) {
    this.timeout(60_000);
    if (process.env.TEST_NO_DYNAMODB === '1') return;
    ddb = await startDynamoDbLocal();
    process.env.TEST_DYNAMODB_ENDPOINT = ddb.endpoint;
  },
  async afterAll(this: Mocha.Context) {
    this.timeout(20_000);
    await ddb?.stop();
  },
};
