import type { Logger } from '../log';
import { deliver, type RetryPolicy } from './deliver';
import { deliverablePrefix, eventPrefix, finishEvent, type EventFields } from './frames';
import type { Limiter } from './limiter';
import type { Sender, SendOutcome } from './sender';

/**
 * The record handler of fan-out: one event to every current subscriber of its topic, each with
 * its own retries (deliver.ts), all side by side through the batch's limiter — a subscriber that
 * keeps failing does not keep the others of this record waiting. It only reports what happened
 * per connection; deciding what that means for the record and the connections is the
 * bookkeeping's job (fanout-outcomes.ts).
 *
 * An event whose frame would exceed `maxBytes` (API Gateway's 128 KB message limit; items may
 * hold 400 KB) goes out as a placeholder without data (`"truncated":true`, frames.ts), as does an
 * event API Gateway still answers 413 for: dropping the seq would open a gap no resync can fill.
 */

export interface RecordContext {
  /** Live subscriber connection ids of a topic, page by page. */
  readonly subscribers: (topic: string) => AsyncIterable<string[]>;
  readonly sender: Sender;
  readonly limit: Limiter;
  readonly retry: RetryPolicy;
  readonly maxBytes: number;
  readonly clock: () => number;
  readonly log: Logger;
  /** Connections already settled in this batch (gone, or being forced to resync): not sent to. */
  readonly skip: (connectionId: string) => boolean;
  /** Each subscriber's final outcome, as soon as it is known (so a resync starts at once). */
  readonly onOutcome: (connectionId: string, outcome: SendOutcome, truncated: boolean) => void;
}

/** Throws only when the subscribers cannot be read: a failure that is not one subscriber's. */
export async function deliverRecord(event: EventFields, ctx: RecordContext): Promise<void> {
  // Serialised once per record; only latencyMs differs per delivery.
  const { prefix, truncated } = deliverablePrefix(event, ctx.maxBytes);
  if (truncated) {
    ctx.log.warn('fanout: event larger than the WebSocket message limit sent as a truncated placeholder', { topic: event.topic, seq: event.seq });
  }
  const frame = () => finishEvent(prefix, ctx.clock() - event.ts);
  let placeholder: string | undefined;
  const placeholderFrame = () => finishEvent((placeholder ??= eventPrefix(event, { truncated: true })), ctx.clock() - event.ts);

  const one = async (id: string) => {
    if (ctx.skip(id)) return;
    const o = await ctx.limit(() => deliver(ctx.sender, id, frame, ctx.retry));
    if (o === 'too_large' && !truncated) {
      // API Gateway counted it larger than we did: the placeholder keeps the seq contiguous.
      ctx.log.warn('fanout: event refused as too large, sending a truncated placeholder', { topic: event.topic, seq: event.seq, connectionId: id });
      ctx.onOutcome(id, await ctx.limit(() => deliver(ctx.sender, id, placeholderFrame, ctx.retry)), true);
      return;
    }
    ctx.onOutcome(id, o, truncated);
  };

  const pages = ctx.subscribers(event.topic)[Symbol.asyncIterator]();
  let next = pages.next();
  for (;;) {
    const r = await next;
    if (r.done) break;
    next = pages.next();
    next.catch(() => {}); // awaited on the next turn; don't let it count as unhandled meanwhile
    await Promise.all(r.value.map(one));
  }
}
