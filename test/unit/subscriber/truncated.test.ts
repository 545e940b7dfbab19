import { expect } from 'chai';
import { marshall } from '@aws-sdk/util-dynamodb';
import { fanout } from '../../../lib/fanout/fanout';
import { deliverablePrefix, finishEvent, snapshotFrame } from '../../../lib/subscriber/frames';
import type { Sender, SendOutcome } from '../../../lib/delivery/sender';
import type { SubscriberServices } from '../../../lib/subscriber/services';
import { messageRoute } from '../../../lib/subscriber/ws-route';
import { createLogger } from '../../../lib/log';
import type { Deps } from '../../../lib/runtime';

/**
 * Items too large for one WebSocket message: fan-out, replay and snapshot
 * send a `truncated` placeholder so the seq stays contiguous, and a reply API Gateway still
 * refuses becomes an error frame that names the topic.
 */

const LIMIT = 128 * 1024;
const big = 'x'.repeat(200 * 1024);
const silent = createLogger({ write: () => {} });

/** Records what it accepts; refuses (413) frames above `refuseAbove` bytes, like API Gateway. */
class RecordingSender implements Sender {
  readonly sent: { id: string; frame: Record<string, unknown> }[] = [];
  refused = 0;
  constructor(private readonly refuseAbove = LIMIT) {}
  async send(id: string, data: string): Promise<SendOutcome> {
    if (Buffer.byteLength(data) > this.refuseAbove) {
      this.refused++;
      return 'too_large';
    }
    this.sent.push({ id, frame: JSON.parse(data) });
    return 'ok';
  }
  async disconnect(): Promise<SendOutcome> {
    return 'ok';
  }
}

let sn = 0;
const rec = (topic: string, seq: number, data: unknown) => ({
  eventName: 'MODIFY',
  dynamodb: { SequenceNumber: String(++sn), NewImage: marshall({ topic, seq, data, ts: 1_000 }) },
});

async function* one(ids: string[]) {
  yield ids;
}

describe('oversize items: truncated placeholders', () => {
  it('a placeholder prefix is the event without its data, flagged truncated, and fits the limit', () => {
    const e = { topic: 't:1', seq: 7, data: big, ts: 1_000 };
    const p = deliverablePrefix(e, LIMIT);
    expect(p.truncated).to.equal(true);
    expect(JSON.parse(finishEvent(p.prefix, 5))).to.deep.equal({ type: 'event', topic: 't:1', seq: 7, data: null, ts: 1_000, truncated: true, latencyMs: 5 });
    expect(JSON.parse(finishEvent(deliverablePrefix(e, LIMIT, { replay: true }).prefix, 5))).to.include({ replay: true, truncated: true });
    const small = deliverablePrefix({ ...e, data: { a: 1 } }, LIMIT);
    expect(small.truncated).to.equal(false);
    expect(JSON.parse(finishEvent(small.prefix, 5))).to.not.have.property('truncated');
    expect(JSON.parse(snapshotFrame({ topic: 't:1', seq: 7, data: big, ts: 1, truncated: true }))).to.deep.equal({ type: 'snapshot', topic: 't:1', seq: 7, data: null, ts: 1, truncated: true });
  });

  it('fan-out sends the oversize seq as a placeholder between its neighbours, no failure, nothing dropped', async () => {
    const sender = new RecordingSender();
    const r = await fanout([rec('t:a', 1, 'a'), rec('t:a', 2, big), rec('t:a', 3, 'c')], {
      subscribers: () => one(['c1', 'c2']),
      sender,
      removeStale: async () => {},
      clock: () => 2_000,
      log: silent,
      concurrency: 4,
    });
    expect(r.batchItemFailures).to.deep.equal([]);
    expect(r.stats).to.include({ delivered: 6, truncated: 2, dropped: 0 });
    expect(sender.refused, 'never posted the full frame').to.equal(0);
    for (const id of ['c1', 'c2']) {
      const frames = sender.sent.filter((s) => s.id === id).map((s) => s.frame);
      expect(frames.map((f) => [f.seq, f.data, f.truncated])).to.deep.equal([
        [1, 'a', undefined],
        [2, null, true],
        [3, 'c', undefined],
      ]);
    }
  });

  it('fan-out falls back to the placeholder when API Gateway answers 413 for a frame it thought would fit', async () => {
    const sender = new RecordingSender(4096); // the gateway is stricter than the configured limit
    const r = await fanout([rec('t:b', 1, 'y'.repeat(8000)), rec('t:b', 2, 'z')], {
      subscribers: () => one(['c1']),
      sender,
      removeStale: async () => {},
      clock: () => 2_000,
      log: silent,
      concurrency: 1,
      retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
    });
    expect(r.batchItemFailures).to.deep.equal([]);
    expect(sender.refused).to.equal(1);
    expect(r.stats).to.include({ delivered: 2, truncated: 1, dropped: 0 });
    expect(sender.sent.map((s) => [s.frame.seq, s.frame.truncated ?? false])).to.deep.equal([
      [1, true],
      [2, false],
    ]);
  });

  describe('subscribe route', () => {
    const deps = { clock: () => 2_000, log: silent, config: { subscriber: { maxMessageBytes: LIMIT, appActions: [] } } } as unknown as Deps;
    const services = (latest: { seq: number; data: unknown }, history: { seq: number; data: unknown }[], sender: Sender) =>
      ({
        connections: {
          get: async () => ({ connectionId: 'c', userId: 'u', allowedTopics: ['*'], topics: [], connectedAt: 1, lastSeen: 1, expiresAt: 9e9 }),
          addTopic: async () => {},
          ensureTopic: async () => true,
          subscriptionExpiresAt: () => 9e9,
        },
        subscriptions: { put: async () => true, subscribedAt: async () => 1_500 },
        items: {
          get: async (topic: string) => ({ topic, seq: latest.seq, data: latest.data, ts: 1_000 }),
          historyPage: async (topic: string, after: number) => history.filter((h) => h.seq > after).map((h) => ({ topic, ...h, ts: 1_000, expiresAt: 9e9 })),
        },
        replySender: sender,
        // No presence topics: a subscribe announces no join.
        presenceEvents: { settings: { topics: [], eventMaxMembers: 100, listLimit: 1000 } },
      }) as unknown as SubscriberServices;
    const call = (s: SubscriberServices, body: object) =>
      messageRoute(deps, s, 'subscribe')({ body: JSON.stringify(body), requestContext: { connectionId: 'c', requestTimeEpoch: 1_500 } });

    it('replays an oversize history row as a placeholder and completes the resume', async () => {
      const sender = new RecordingSender();
      const s = services({ seq: 3, data: 'c' }, [
        { seq: 2, data: big },
        { seq: 3, data: 'c' },
      ], sender);
      const r = await call(s, { action: 'subscribe', topic: 't:c', sinceSeq: 1 });
      expect(r.statusCode).to.equal(200);
      expect(sender.sent.map((x) => x.frame)).to.deep.equal([
        { type: 'event', topic: 't:c', seq: 2, data: null, ts: 1_000, truncated: true, replay: true, latencyMs: 1_000 },
        { type: 'event', topic: 't:c', seq: 3, data: 'c', ts: 1_000, replay: true, latencyMs: 1_000 },
        { type: 'subscribed', topic: 't:c', seq: 3, replayed: 2 },
      ]);
    });

    it('answers an oversize latest item with a truncated snapshot', async () => {
      const sender = new RecordingSender();
      const r = await call(services({ seq: 4, data: big }, [], sender), { action: 'subscribe', topic: 't:d' });
      expect(r.statusCode).to.equal(200);
      expect(sender.sent.map((x) => x.frame)).to.deep.equal([{ type: 'snapshot', topic: 't:d', seq: 4, data: null, ts: 1_000, truncated: true }]);
    });

    it('sends the placeholder when API Gateway refuses a snapshot it thought would fit', async () => {
      const sender = new RecordingSender(2048);
      const r = await call(services({ seq: 4, data: 'q'.repeat(4000) }, [], sender), { action: 'subscribe', topic: 't:e' });
      expect(r.statusCode).to.equal(200);
      expect(sender.sent.map((x) => x.frame)).to.deep.equal([{ type: 'snapshot', topic: 't:e', seq: 4, data: null, ts: 1_000, truncated: true }]);
    });

    it('a reply that stays too large becomes an error frame naming the topic', async () => {
      // Refuses every snapshot, even the placeholder; error frames get through.
      const sender: Sender = {
        send: async (_id, f) => (f.includes('"snapshot"') ? 'too_large' : (errors.push(JSON.parse(f)), 'ok')),
        disconnect: async () => 'ok',
      };
      const errors: Record<string, unknown>[] = [];
      const r = await call(services({ seq: 1, data: 'a' }, [], sender), { action: 'subscribe', topic: 't:f' });
      expect(r.statusCode).to.equal(413);
      expect(errors).to.have.length(1);
      expect(errors[0]).to.include({ type: 'error', code: 'payload_too_large', action: 'subscribe', topic: 't:f' });
    });

    it('an internal error names the topic too', async () => {
      const sender = new RecordingSender();
      const s = services({ seq: 1, data: 'a' }, [], sender);
      (s.items as unknown as { get: () => Promise<never> }).get = async () => {
        throw new Error('boom');
      };
      const r = await call(s, { action: 'subscribe', topic: 't:g' });
      expect(r.statusCode).to.equal(500);
      expect(sender.sent.map((x) => x.frame)).to.deep.equal([
        { type: 'error', code: 'internal_error', message: 'the request could not be completed; retry', action: 'subscribe', topic: 't:g' },
      ]);
    });
  });
});
