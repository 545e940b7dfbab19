import type { Deps } from '../lib/runtime';
import { lambdaEntry } from '../lib/runtime';
import { createDeliveryMetrics, metricsNamespace } from '../lib/metrics';
import { withCollectionSubscribers } from '../lib/fanout/collection-subscribers';
import { deliverPartitions, type SqsRecordLike } from '../lib/fanout/partition-worker';
import type { FanoutHandlerOptions } from './fanout';
import type { Sender } from '../lib/delivery/sender';
import { fanoutSender, subscriberServices } from '../lib/subscriber/services';

/**
 * fanoutPartitions queue (FIFO) → one partition of a large topic's subscribers, record after
 * record, as the stream's fan-out delivers a small topic (lib/fanout/partition-worker.ts).
 * Failed messages, and the later ones of their group, go back through batchItemFailures.
 */
export const createHandler = (deps: Deps, opts: Omit<FanoutHandlerOptions, 'partitioning'> = {}) => {
  const services = subscriberServices(deps);
  const metrics = createDeliveryMetrics({ namespace: metricsNamespace(deps.config.stack), write: deps.emf });
  let sender: Sender | undefined;
  return async (event: { Records?: SqsRecordLike[] }) => {
    sender ??= typeof opts.sender === 'object' ? opts.sender : fanoutSender(deps, opts.sender ?? deps.config.subscriber.fanoutSender);
    const r = await deliverPartitions(event.Records ?? [], {
      subscribers: (topic, range) => withCollectionSubscribers((t) => services.subscriptions.pages(t, range))(topic),
      sender,
      removeStale: services.removeConnections,
      clock: deps.clock,
      log: deps.log,
      concurrency: deps.config.subscriber.fanoutConcurrency,
      retry: opts.retry,
      adaptive: opts.adaptive,
      maxMessageBytes: deps.config.subscriber.maxMessageBytes,
      metrics,
    });
    deps.log.debug('fanout-partition batch', { groups: r.groups, malformed: r.malformed });
    return { batchItemFailures: r.batchItemFailures };
  };
};

export const handler = lambdaEntry(createHandler);
