import { expect } from 'chai';
import * as frames from '../../../lib/protocol/frames';
import { parseServerMessage } from '../../../lib/protocol/parse';
import { deliverablePrefix } from '../../../lib/subscriber/frames';

/**
 * The contract between the server's frame builders and the client's parser: both come from
 * lib/protocol, and every frame the server can build must parse on the client with its fields
 * intact. A builder added without a sample here fails the first test.
 */
const e = { topic: 'chat:1', seq: 7, data: { text: 'hé ✓' }, ts: 1_700_000_000_000 };

const SAMPLES: Record<string, { frame: string; parsed: Record<string, unknown> }[]> = {
  eventFrame: [
    { frame: frames.eventFrame(e, 12), parsed: { type: 'event', ...e, latencyMs: 12 } },
    { frame: frames.eventFrame(e, 3, { replay: true }), parsed: { type: 'event', ...e, latencyMs: 3, replay: true } },
    { frame: frames.eventFrame(e, 0, { truncated: true }), parsed: { type: 'event', ...e, data: null, truncated: true, latencyMs: 0 } },
    {
      frame: frames.finishEvent(deliverablePrefix({ ...e, data: 'x'.repeat(200) }, 150, { replay: true }).prefix, 5),
      parsed: { type: 'event', ...e, data: null, truncated: true, replay: true, latencyMs: 5 },
    },
  ],
  snapshotFrame: [
    { frame: frames.snapshotFrame({ topic: 'chat:1', seq: 4, data: [1], ts: 9 }), parsed: { type: 'snapshot', topic: 'chat:1', seq: 4, data: [1], ts: 9, reset: false } },
    { frame: frames.snapshotFrame({ topic: 't', seq: 0, data: undefined }), parsed: { type: 'snapshot', topic: 't', seq: 0, data: null, reset: false } },
    {
      frame: frames.snapshotFrame({ topic: 't', seq: 2, data: 'big', reset: true, truncated: true }),
      parsed: { type: 'snapshot', topic: 't', seq: 2, data: null, reset: true, truncated: true },
    },
  ],
  collectionSnapshotFrame: [
    {
      frame: frames.collectionSnapshotFrame('chat:*', [frames.collectionItemJson(e), frames.collectionItemJson({ ...e, topic: 'chat:2' }, true)], { more: true }),
      parsed: { type: 'snapshot', topic: 'chat:*', items: [{ ...e }, { ...e, topic: 'chat:2', data: null, truncated: true }], more: true },
    },
    { frame: frames.collectionSnapshotFrame('chat:*', [], { truncated: true }), parsed: { type: 'snapshot', topic: 'chat:*', items: [], truncated: true } },
  ],
  subscribedFrame: [{ frame: frames.subscribedFrame('t', 9, 3), parsed: { type: 'subscribed', topic: 't', seq: 9, replayed: 3 } }],
  unsubscribedFrame: [{ frame: frames.unsubscribedFrame('t'), parsed: { type: 'unsubscribed', topic: 't' } }],
  pongFrame: [{ frame: frames.pongFrame(5), parsed: { type: 'pong', ts: 5 } }],
  messageFrame: [
    { frame: frames.messageFrame({ hi: 1 }, 6), parsed: { type: 'message', data: { hi: 1 }, ts: 6 } },
    { frame: frames.messageFrame(undefined, 6), parsed: { type: 'message', data: null, ts: 6 } },
  ],
  publishedFrame: [
    { frame: frames.publishedFrame('chat:1', 3, 'm-1'), parsed: { type: 'published', topic: 'chat:1', seq: 3, id: 'm-1' } },
    { frame: frames.publishedFrame('chat:1', 4), parsed: { type: 'published', topic: 'chat:1', seq: 4 } },
  ],
  acceptedFrame: [
    { frame: frames.acceptedFrame('chat.ask', 'q1'), parsed: { type: 'accepted', action: 'chat.ask', id: 'q1' } },
    { frame: frames.acceptedFrame('chat.ask'), parsed: { type: 'accepted', action: 'chat.ask' } },
  ],
  errorFrame: [
    {
      frame: frames.errorFrame('rate_limited', 'slow down', { action: 'publish', topic: 'chat:1', id: 'm-2', retryAfterMs: 250 }),
      parsed: { type: 'error', code: 'rate_limited', message: 'slow down', action: 'publish', topic: 'chat:1', id: 'm-2', retryAfterMs: 250 },
    },
    { frame: frames.errorFrame('forbidden', 'no', { topic: 't', action: 'subscribe' }), parsed: { type: 'error', code: 'forbidden', message: 'no', topic: 't', action: 'subscribe' } },
    { frame: frames.errorFrame('invalid_json', 'bad'), parsed: { type: 'error', code: 'invalid_json', message: 'bad' } },
  ],
  presenceFrame: [
    {
      frame: frames.presenceFrame({ topic: 'room:1', users: [{ userId: 'alice', connections: 2 }], count: { users: 3, connections: 4 }, truncated: true, id: 'r1' }),
      parsed: { type: 'presence', topic: 'room:1', users: [{ userId: 'alice', connections: 2 }], count: { users: 3, connections: 4 }, truncated: true, id: 'r1' },
    },
    {
      frame: frames.presenceFrame({ topic: 'room:2', users: [], count: { users: 0, connections: 0 } }),
      parsed: { type: 'presence', topic: 'room:2', users: [], count: { users: 0, connections: 0 } },
    },
  ],
  presenceChangeFrame: [
    { frame: frames.presenceChangeFrame('join', 'room:1', 'bob'), parsed: { type: 'join', topic: 'room:1', userId: 'bob' } },
    { frame: frames.presenceChangeFrame('leave', 'room:1', 'bob'), parsed: { type: 'leave', topic: 'room:1', userId: 'bob' } },
  ],
};

const stripUndefined = (o: object) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

describe('protocol contract: server frames and the client parser', () => {
  it('has a sample for every frame builder the server has', () => {
    const builders = Object.entries(frames)
      .filter(([name, v]) => typeof v === 'function' && name.endsWith('Frame'))
      .map(([name]) => name)
      .sort();
    expect(builders).to.deep.equal(Object.keys(SAMPLES).sort());
  });

  for (const [builder, samples] of Object.entries(SAMPLES)) {
    it(`parses every ${builder} frame with its fields intact`, () => {
      for (const { frame, parsed } of samples) {
        const got = parseServerMessage(frame);
        expect(got, frame).to.not.equal(undefined);
        expect(stripUndefined(got!), frame).to.deep.equal(parsed);
      }
    });
  }
});
