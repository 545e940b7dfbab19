import type { Deps } from '../lib/runtime';
import { lambdaEntry } from '../lib/runtime';
import { withCollectionSubscribers } from '../lib/fanout/collection-subscribers';
import { deliverPartitions, type SqsRecordLike } from '../lib/fanout/partition-worker';
import { deliverySetup, type FanoutHandlerOptions } from './fanout';

/**
 * fanoutPartitions queue (FIFO) → one partition of a large topic's subscribers, record after
 * record, as the stream's fan-out delivers a small topic (lib/fanout/partition-worker.ts).
 * Failed messages, and the later ones of their group, go back through batchItemFailures.
 */
export const createHandler = (deps: Deps, opts: Omit<FanoutHandlerOptions, 'partitioning'> = {}) => {
  const { services, deliveryDeps } = deliverySetup(deps, opts);
  return async (event: { Records?: SqsRecordLike[] }) => {
    const r = await deliverPartitions(event.Records ?? [], {
      ...deliveryDeps(),
      subscribers: (topic, range) => withCollectionSubscribers((t) => services.subscriptions.pages(t, range))(topic),
    });
    deps.log.debug('fanout-partition batch', { groups: r.groups, malformed: r.malformed });
    return { batchItemFailures: r.batchItemFailures };
  };
};

export const handler = lambdaEntry(createHandler);
