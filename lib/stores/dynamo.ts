import { QueryCommand, type DynamoDBDocumentClient, type QueryCommandInput } from '@aws-sdk/lib-dynamodb';

/**
 * DynamoDB idioms every store shares: the refused-condition test, the "TTL is only a backstop"
 * rule, and the pagination loop of Query.
 */

/** A conditional write (Put/Update/Delete) that DynamoDB refused because its condition was false. */
export function isConditionFailed(err: unknown): boolean {
  return (err as { name?: string } | undefined)?.name === 'ConditionalCheckFailedException';
}

/**
 * Whether a row with a TTL attribute still counts at `nowMs`. DynamoDB deletes expired rows up to
 * ~48 h late (DESIGN §2), so readers decide by `expiresAt` (epoch seconds), never by presence.
 * A row without `expiresAt` is NOT live: every writer here sets it, so such a row is damaged or
 * foreign, and treating it as live would keep it forever (TTL never deletes it either).
 */
export function isLive(row: { readonly expiresAt?: unknown }, nowMs: number): boolean {
  const expiresAt = Number(row.expiresAt ?? 0);
  return Number.isFinite(expiresAt) && expiresAt > Math.floor(nowMs / 1000);
}

/** Query, page by page (each page's items; a page may be empty after a filter). */
export async function* queryPages(doc: DynamoDBDocumentClient, input: QueryCommandInput): AsyncGenerator<Record<string, unknown>[]> {
  let start: Record<string, unknown> | undefined;
  do {
    const r = await doc.send(new QueryCommand({ ...input, ExclusiveStartKey: start }));
    yield (r.Items ?? []) as Record<string, unknown>[];
    start = r.LastEvaluatedKey;
  } while (start);
}

/** Every item a Query matches, across all its pages. */
export async function queryAll(doc: DynamoDBDocumentClient, input: QueryCommandInput): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  for await (const page of queryPages(doc, input)) out.push(...page);
  return out;
}
