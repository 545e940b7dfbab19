import { topicAllowed } from '../topics';
import type { ConnectionStore } from '../stores/connections';
import { AuthError } from './errors';
import { assertDeliverable, publishToTopic } from './publish';
import type { BucketRate } from './rate-limit';
import { admitDataFrame } from './socket-gate';
import type { IdempotencyStore } from '../stores/idempotency';
import type { ItemStore } from '../stores/items';

/**
 * `{"action":"publish","topic","data"[,"id"]}` from the socket: the same write as `POST /publish`
 * (publishToTopic: item, seq + 1 and history row in one transaction; fan-out delivers it to every
 * subscriber, the sender included). Idempotency keys are scoped to the user (`ws:<userId>`), so a
 * client that reconnects (a new connectionId) and sends its publish again gets the first seq.
 * Rights: the publish patterns decided on $connect (all topics in `none` mode).
 */
export async function publishFromSocket(
  connectionId: string,
  frame: { readonly topic: string; readonly data: unknown; readonly id?: string },
  deps: {
    readonly connections: ConnectionStore;
    readonly items: ItemStore;
    readonly idempotency: IdempotencyStore;
    readonly rate: BucketRate;
    readonly maxMessageBytes: number;
  },
): Promise<{ seq: number }> {
  const req = { kind: 'topic' as const, topic: frame.topic, data: frame.data, ...(frame.id !== undefined ? { id: frame.id } : {}) };
  assertDeliverable(req, deps.maxMessageBytes);
  const row = await admitDataFrame(connectionId, deps, (r) => {
    if (!topicAllowed(r.publishTopics ?? [], frame.topic)) {
      throw new AuthError('forbidden', `this connection may not publish to topic "${frame.topic}"`);
    }
  });
  const r = await publishToTopic(req, deps.items, { store: deps.idempotency, scope: `ws:${row.userId}` });
  return { seq: r.body.seq as number };
}
