import { randomBytes } from 'node:crypto';

/** Credentials for the local emulators; they accept any. */
export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

/** The DynamoDB Local started once for the run by test/support/hooks.ts. */
export function testDynamoEndpoint(): string {
  const e = process.env.TEST_DYNAMODB_ENDPOINT;
  if (!e) throw new Error('TEST_DYNAMODB_ENDPOINT is not set: run tests through `npm test` (test/support/hooks.ts starts DynamoDB Local)');
  return e;
}

/** A table/queue prefix no other suite uses, so suites share one DynamoDB Local safely. */
export function uniquePrefix(label = 't'): string {
  return `${label}-${randomBytes(4).toString('hex')}`;
}
