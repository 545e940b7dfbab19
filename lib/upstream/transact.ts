import { TransactWriteCommand, type TransactWriteCommandInput, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/** One item of a transaction, and one conditional update in it. */
export type TxItem = NonNullable<TransactWriteCommandInput['TransactItems']>[number];
export type TxUpdate = NonNullable<TxItem['Update']>;

/** Items per transaction: DynamoDB's limit. */
export const TX_MAX_ITEMS = 100;
/** Transactions sent for one batch before what is left is reported as contended. */
const TX_ROUNDS = 4;

export interface EachOutcome {
  /** Ids whose update was applied. */
  readonly done: string[];
  /** Ids whose own condition failed. */
  readonly refused: string[];
  /** Ids that kept meeting conflicts with other transactions (TX_ROUNDS sends); the caller decides. */
  readonly contended: string[];
  /** `head`'s condition failed: nothing more was tried. */
  readonly headFailed: boolean;
}

/**
 * One conditional update per id in as few round trips as DynamoDB allows: up to TX_MAX_ITEMS per
 * TransactWriteItems (with `head`, e.g. a ConditionCheck every update depends on, one fewer). A
 * transaction is all or nothing, so one refused update cancels the others; the cancellation
 * reasons (in item order) say which, and the transaction is sent again without it. An update
 * costs the same conditions as a single UpdateItem, but one call carries up to 100 of them —
 * what makes claims (and the status writes after a failover) thousands per second rather than
 * one round trip each. In DynamoDB a transactional write costs 2 write units per item.
 */
export async function updateEach(doc: DynamoDBDocumentClient, ids: readonly string[], update: (id: string) => TxUpdate, head?: TxItem): Promise<EachOutcome> {
  const unique = [...new Set(ids)];
  const perTx = head ? TX_MAX_ITEMS - 1 : TX_MAX_ITEMS;
  const out = { done: [] as string[], refused: [] as string[], contended: [] as string[], headFailed: false };
  for (let i = 0; i < unique.length; i += perTx) {
    let rest = unique.slice(i, i + perTx);
    for (let round = 0; rest.length && round < TX_ROUNDS; round++) {
      const first = head ? [head] : [];
      try {
        await doc.send(new TransactWriteCommand({ TransactItems: [...first, ...rest.map((id) => ({ Update: update(id) }))] }));
        out.done.push(...rest);
        rest = [];
      } catch (err) {
        const reasons = cancellationReasons(err);
        if (!reasons) throw err;
        if (head && reasons[0]?.Code === 'ConditionalCheckFailed') return { ...out, contended: [], headFailed: true };
        const refused = rest.filter((_, k) => reasons[k + first.length]?.Code === 'ConditionalCheckFailed');
        out.refused.push(...refused);
        rest = rest.filter((id) => !refused.includes(id));
      }
    }
    out.contended.push(...rest);
  }
  return out;
}

/** The per-item reasons of a cancelled transaction, or undefined for any other error. */
export function cancellationReasons(err: unknown): { Code?: string }[] | undefined {
  const e = err as { name?: string; CancellationReasons?: { Code?: string }[] };
  return e?.name === 'TransactionCanceledException' && e.CancellationReasons ? e.CancellationReasons : undefined;
}

/** A transaction cancelled because one of its conditions failed (not a conflict or a throttle). */
export function isTransactionConditionFailed(err: unknown): boolean {
  return !!cancellationReasons(err)?.some((r) => r.Code === 'ConditionalCheckFailed');
}
