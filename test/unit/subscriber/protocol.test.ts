import { expect } from 'chai';
import { parseBody, parseClientFrame } from '../../../lib/subscriber/protocol';
import { eventFrame, eventPrefix, finishEvent, snapshotFrame, worstCaseEventBytes } from '../../../lib/subscriber/frames';
import { SubscriberError } from '../../../lib/subscriber/errors';

const codeOf = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    expect(err).to.be.instanceOf(SubscriberError);
    return (err as SubscriberError).code;
  }
  throw new Error('did not throw');
};

describe('subscriber protocol parsing', () => {
  it('parses the three client frames', () => {
    expect(parseClientFrame(parseBody('{"action":"subscribe","topic":"vehicle:3"}'))).to.deep.equal({ action: 'subscribe', topic: 'vehicle:3' });
    expect(parseClientFrame(parseBody('{"action":"subscribe","topic":"v","sinceSeq":41}'))).to.deep.equal({ action: 'subscribe', topic: 'v', sinceSeq: 41 });
    expect(parseClientFrame(parseBody('{"action":"unsubscribe","topic":"v"}'))).to.deep.equal({ action: 'unsubscribe', topic: 'v' });
    expect(parseClientFrame(parseBody('{"action":"ping"}'))).to.deep.equal({ action: 'ping' });
  });

  it('decodes base64 bodies', () => {
    expect(parseBody(Buffer.from('{"action":"ping"}').toString('base64'), true)).to.deep.equal({ action: 'ping' });
  });

  const bad: [string, string, string][] = [
    ['not JSON', '{', 'invalid_json'],
    ['a string', '"x"', 'invalid_message'],
    ['null', 'null', 'invalid_message'],
    ['no action', '{}', 'invalid_message'],
    ['unknown action', '{"action":"nope"}', 'unknown_action'],
    ['missing topic', '{"action":"subscribe"}', 'missing_topic'],
    ['empty topic', '{"action":"subscribe","topic":""}', 'invalid_topic'],
    ['control characters', '{"action":"subscribe","topic":"a\\u0007"}', 'invalid_topic'],
    ['257 characters', JSON.stringify({ action: 'subscribe', topic: 'x'.repeat(257) }), 'invalid_topic'],
    ['fractional sinceSeq', '{"action":"subscribe","topic":"a","sinceSeq":1.5}', 'invalid_since_seq'],
    ['string sinceSeq', '{"action":"subscribe","topic":"a","sinceSeq":"4"}', 'invalid_since_seq'],
    ['a frame over 4 KB', JSON.stringify({ action: 'ping', pad: 'x'.repeat(5000) }), 'frame_too_large'],
  ];
  for (const [name, body, code] of bad) {
    it(`refuses ${name} with ${code}`, () => {
      expect(codeOf(() => parseClientFrame(parseBody(body)))).to.equal(code);
    });
  }

  it('accepts a topic of exactly 256 characters', () => {
    expect(parseClientFrame(parseBody(JSON.stringify({ action: 'unsubscribe', topic: 'x'.repeat(256) })))).to.have.property('action', 'unsubscribe');
  });
});

describe('subscriber frames', () => {
  it('an event built from its prefix is the JSON of the full object', () => {
    const e = { topic: 'vehicle:"3"', seq: 7, data: { a: [1, 'ü'] }, ts: 1700000000000 };
    const f = finishEvent(eventPrefix(e), 12.6);
    expect(JSON.parse(f)).to.deep.equal({ type: 'event', ...e, latencyMs: 13 });
    expect(JSON.parse(eventFrame({ ...e, data: undefined }, -5))).to.include({ data: null, latencyMs: 0 });
  });

  it('snapshot of a missing item has seq 0 and null data, no ts', () => {
    expect(JSON.parse(snapshotFrame({ topic: 't', seq: 0, data: null }))).to.deep.equal({ type: 'snapshot', topic: 't', seq: 0, data: null });
  });

  it('worst-case size covers any real frame of the same data', () => {
    const data = { s: 'x'.repeat(1000) };
    const real = Buffer.byteLength(eventFrame({ topic: 't', seq: 123456, data, ts: Date.now() }, 99999));
    expect(worstCaseEventBytes('t', data)).to.be.greaterThan(real);
  });
});
