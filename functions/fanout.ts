import type { Deps } from '../lib/runtime';
import { lambdaEntry } from '../lib/runtime';
import { createDeliveryMetrics, metricsNamespace } from '../lib/metrics';
import type { RetryPolicy } from '../lib/delivery/deliver';
import { withCollectionSubscribers } from '../lib/fanout/collection-subscribers';
import { fanout } from '../lib/fanout/fanout';
import type { Sender } from '../lib/delivery/sender';
import { fanoutSender, subscriberServices, type SenderKind } from '../lib/subscriber/services';
import type { StreamRecordLike } from '../lib/fanout/stream-record';

/**
 * items stream → every subscriber of each changed topic, in per-topic order; 410 prunes stale
 * connections; what still fails is reported through ReportBatchItemFailures.
 * `opts` lets the local stack and the benchmark choose the sender and retry timing.
 */
export interface FanoutHandlerOptions {
  readonly sender?: SenderKind | Sender;
  readonly retry?: RetryPolicy;
  /** false: a fixed FANOUT_CONCURRENCY in flight instead of the adaptive limiter (the benchmark's comparison). */
  readonly adaptive?: boolean;
}

export const createHandler = (deps: Deps, opts: FanoutHandlerOptions = {}) => {
  const services = subscriberServices(deps);
  const metrics = createDeliveryMetrics({ namespace: metricsNamespace(deps.config.stack), write: deps.emf });
  let sender: Sender | undefined;
  return async (event: { Records?: StreamRecordLike[] }) => {
    sender ??= typeof opts.sender === 'object' ? opts.sender : fanoutSender(deps, opts.sender ?? deps.config.subscriber.fanoutSender);
    const r = await fanout(event.Records ?? [], {
      // A record also goes to its collection's subscribers (`battery:*`), once per connection.
      subscribers: withCollectionSubscribers((topic) => services.subscriptions.pages(topic)),
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
    deps.log.debug('fanout batch', r.concurrency ? { ...r.stats, concurrency: r.concurrency } : r.stats);
    return { batchItemFailures: r.batchItemFailures };
  };
};

export const handler = lambdaEntry(createHandler);
