import type { Deps } from '../lib/runtime';
import { lambdaEntry } from '../lib/runtime';
import { createDeliveryMetrics, metricsNamespace } from '../lib/metrics';
import type { RetryPolicy } from '../lib/delivery/deliver';
import { withCollectionSubscribers } from '../lib/fanout/collection-subscribers';
import { fanout, type FanoutDeps } from '../lib/fanout/fanout';
import type { Sender } from '../lib/delivery/sender';
import { fanoutSender, subscriberServices, type SenderKind } from '../lib/subscriber/services';
import type { StreamRecordLike } from '../lib/fanout/stream-record';
import { earliestFailure, handOffLargeTopics, reuseCounted } from '../lib/fanout/partition-handoff';
import { partitionQueue } from '../lib/fanout/partition-queue';

/**
 * items stream → every subscriber of each changed topic, in per-topic order; 410 prunes stale
 * connections; what still fails is reported through ReportBatchItemFailures. With partitioning
 * configured, topics past the threshold are queued to the partition workers instead
 * (fanout-partition.ts).
 * `opts` lets the local stack and the benchmark choose the sender and retry timing.
 */
export interface FanoutHandlerOptions {
  readonly sender?: SenderKind | Sender;
  readonly retry?: RetryPolicy;
  /** false: a fixed FANOUT_CONCURRENCY in flight instead of the adaptive limiter (the benchmark's comparison). */
  readonly adaptive?: boolean;
  /** false: every topic is delivered here, whatever FANOUT_PARTITION_QUEUE_URL says (the benchmark's one-worker comparison). */
  readonly partitioning?: false;
}

/**
 * What both fan-out handlers (this one and the partition worker) deliver with: the sender, made on
 * first use (the lean sender's sockets outlive invocations), metrics, and retry and limits from
 * the config and `opts`.
 */
export function deliverySetup(deps: Deps, opts: FanoutHandlerOptions) {
  const services = subscriberServices(deps);
  const metrics = createDeliveryMetrics({ namespace: metricsNamespace(deps.config.stack), write: deps.emf });
  let sender: Sender | undefined;
  return {
    services,
    deliveryDeps: (): Omit<FanoutDeps, 'subscribers'> => ({
      sender: (sender ??= typeof opts.sender === 'object' ? opts.sender : fanoutSender(deps, opts.sender ?? deps.config.subscriber.fanoutSender)),
      removeStale: services.removeConnections,
      clock: deps.clock,
      log: deps.log,
      concurrency: deps.config.subscriber.fanoutConcurrency,
      retry: opts.retry,
      adaptive: opts.adaptive,
      maxMessageBytes: deps.config.subscriber.maxMessageBytes,
      metrics,
    }),
  };
}

export const createHandler = (deps: Deps, opts: FanoutHandlerOptions = {}) => {
  const { services, deliveryDeps } = deliverySetup(deps, opts);
  const partitioning = opts.partitioning === false ? undefined : deps.config.subscriber.partitioning;
  let enqueue: ReturnType<typeof partitionQueue> | undefined;
  return async (event: { Records?: StreamRecordLike[] }) => {
    // A record also goes to its collection's subscribers (`battery:*`), once per connection.
    const subscribers = withCollectionSubscribers((topic) => services.subscriptions.pages(topic));
    const records = event.Records ?? [];
    // Large topics go to their partition workers; the rest is delivered here.
    const handoff = partitioning
      ? await handOffLargeTopics(records, { ...partitioning, subscribers, enqueue: (enqueue ??= partitionQueue(deps.clients.sqs, partitioning.queueUrl)), log: deps.log, clock: deps.clock })
      : undefined;
    if (handoff?.handedOff) deps.log.debug('fanout: large topics handed to partition workers', { records: handoff.handedOff, topics: handoff.largeTopics });
    const r = await fanout(handoff?.direct ?? records, {
      ...deliveryDeps(),
      subscribers: handoff ? reuseCounted(handoff.counted, subscribers) : subscribers,
    });
    deps.log.debug('fanout batch', r.concurrency ? { ...r.stats, concurrency: r.concurrency } : r.stats);
    return { batchItemFailures: handoff ? earliestFailure(records, r.batchItemFailures, handoff.failedIndex) : r.batchItemFailures };
  };
};

export const handler = lambdaEntry(createHandler);
