import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { LocalStack } from '../../../support/stack';
import { waitFor } from '../../../support/wait';

/** Rows in one of the stack's tables (a consistent count: tests compare it before and after). */
export async function rowCount(stack: LocalStack, table: string): Promise<number> {
  return (await stack.clients.doc.send(new ScanCommand({ TableName: table, Select: 'COUNT', ConsistentRead: true }))).Count ?? 0;
}

/**
 * Resolves once no connection row is left. A socket's `close` resolves before its `$disconnect`
 * has run, and that cleanup deletes the connection row last, after its subscription rows
 * (lib/subscriber/cleanup.ts): a suite that counts rows to prove "nothing written" waits for
 * this after closing its sockets, so a previous test's cleanup cannot land inside its count.
 */
export async function waitForNoConnections(stack: LocalStack, timeoutMs = 15_000): Promise<void> {
  let left = 0;
  await waitFor(async () => (left = await rowCount(stack, stack.tables.connections)) === 0, timeoutMs, () => `$disconnect to remove every connection row (${left} left)`);
}
