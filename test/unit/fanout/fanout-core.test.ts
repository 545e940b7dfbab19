import { expect } from 'chai';
import { marshall } from '@aws-sdk/util-dynamodb';
import { createLimiter } from '../../../lib/delivery/limiter';
import { withRetries } from '../../../lib/delivery/deliver';
import { widespreadFailure } from '../../../lib/fanout/fanout-outcomes';
import { parseStreamRecord } from '../../../lib/fanout/stream-record';
import { assertDeliverable, authorize, parsePublishBody } from '../../../lib/subscriber/publish';

describe('fan-out building blocks', () => {
  it('the limiter never runs more than n tasks at once and runs them all', async () => {
    const limit = createLimiter(3);
    let active = 0;
    let peak = 0;
    const out = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        limit(async () => {
          peak = Math.max(peak, ++active);
          await new Promise((r) => setTimeout(r, 1 + (i % 3)));
          active--;
          return i;
        }),
      ),
    );
    expect(peak).to.equal(3);
    expect(out).to.deep.equal(Array.from({ length: 20 }, (_, i) => i));
  });

  it('the limiter releases its slot when a task throws', async () => {
    const limit = createLimiter(1);
    await limit(async () => { throw new Error('x'); }).catch(() => {});
    expect(await limit(async () => 'ok')).to.equal('ok');
  });

  // The budget's own timer decides when these give up, and a loaded machine runs a timer late by
  // up to a few hundred ms: the budget is a second, so "within one more budget" has that slack.
  const BUDGET_MS = 1000;

  it('a delivery whose calls hang gives up when its budget runs out, whatever the attempts left', async () => {
    let calls = 0;
    const t0 = Date.now();
    const hang = () => (calls++, new Promise<never>(() => {}));
    const o = await withRetries(hang, { attempts: 5, baseDelayMs: 1, maxDelayMs: 1, budgetMs: BUDGET_MS });
    const took = Date.now() - t0;
    expect(o).to.equal('error');
    expect(calls).to.equal(1);
    expect(took).to.be.within(BUDGET_MS - 10, 2 * BUDGET_MS);
  });

  it('retries stop at the budget even when each attempt answers quickly', async () => {
    let calls = 0;
    const t0 = Date.now();
    const o = await withRetries(async () => (calls++, 'throttled' as const), { attempts: 1000, baseDelayMs: BUDGET_MS / 5, maxDelayMs: BUDGET_MS / 5, budgetMs: BUDGET_MS });
    expect(o).to.equal('throttled');
    expect(Date.now() - t0).to.be.below(2 * BUDGET_MS);
    expect(calls).to.be.within(2, 60);
  });

  it('a delivery waiting out its backoff holds no slot: others use it, its retry goes first, its budget starts when first admitted', async () => {
    const limit = createLimiter(1);
    const order: string[] = [];
    let failFirst = true;
    // One slot. `a` fails once and backs off; meanwhile `b` gets the slot; `a`'s retry jumps the queue ahead of `c`.
    const call = (name: string, ms: number) => async () => {
      order.push(name);
      await new Promise((r) => setTimeout(r, ms));
      if (name === 'a' && failFirst) return (failFirst = false), 'error' as const;
      return 'ok' as const;
    };
    const policy = { attempts: 3, baseDelayMs: 1, maxDelayMs: 1, budgetMs: 1000 };
    const a = withRetries(call('a', 5), policy, limit);
    const b = withRetries(call('b', 30), policy, limit);
    const c = withRetries(call('c', 5), policy, limit);
    expect(await Promise.all([a, b, c])).to.deep.equal(['ok', 'ok', 'ok']);
    expect(order).to.deep.equal(['a', 'b', 'a', 'c']);
    // A queue longer than the budget is not a failure: the clock starts at the first attempt.
    const slow = Array.from({ length: 4 }, () => withRetries(call('q', 40), { ...policy, budgetMs: 60 }, limit));
    expect(await Promise.all(slow)).to.deep.equal(['ok', 'ok', 'ok', 'ok']);
  });

  it('a record fails, instead of resyncing, only when at least 2 and more than half of its deliveries still failed', () => {
    const cases: [number, number, boolean][] = [
      [1, 1, false], // one subscriber's failing socket is its own problem: it resyncs
      [2, 1, false],
      [2, 2, true],
      [6, 3, false],
      [6, 4, true],
      [1000, 499, false],
      [1000, 501, true],
    ];
    for (const [attempted, failed, fails] of cases) expect(widespreadFailure(attempted, failed), `${failed}/${attempted}`).to.equal(fails);
  });

  it('stream records: events, REMOVE skipped, malformed named', () => {
    const rec = (img: object | undefined, eventName = 'INSERT') => ({ eventName, dynamodb: { SequenceNumber: '1', ...(img ? { NewImage: marshall(img) } : {}) } });
    const ok = parseStreamRecord(rec({ topic: 't', seq: 3, data: { s: new Set(['a']) }, ts: 5 }), 0);
    expect(ok).to.deep.equal({ kind: 'event', sequenceNumber: '1', event: { topic: 't', seq: 3, data: { s: ['a'] }, ts: 5 } });
    expect(parseStreamRecord(rec(undefined, 'REMOVE'), 0).kind).to.equal('skip');
    expect(parseStreamRecord(rec({ topic: 't' }), 0)).to.include({ kind: 'malformed' });
    expect(parseStreamRecord(rec({ seq: 1 }), 0)).to.include({ kind: 'malformed' });
    expect(parseStreamRecord(rec(undefined), 0)).to.include({ kind: 'malformed' });
    expect(parseStreamRecord({ eventName: 'INSERT', dynamodb: { NewImage: { topic: { S: 't' }, seq: { N: 'x' } } } }, 0).kind).to.equal('malformed');
    // A writer without a source timestamp: the stream's creation time stands in.
    const noTs = parseStreamRecord({ eventName: 'INSERT', dynamodb: { NewImage: marshall({ topic: 't', seq: 1 }), ApproximateCreationDateTime: 100 } }, 0);
    expect(noTs.kind === 'event' && noTs.event.ts).to.equal(100_000);
  });
});

describe('publish input', () => {
  const now = Date.now();
  it('parses topic and user requests', () => {
    expect(parsePublishBody('{"topic":"v:1","data":{"a":1},"ts":' + (now - 5) + '}', false, now)).to.deep.equal({ kind: 'topic', topic: 'v:1', data: { a: 1 }, ts: now - 5 });
    expect(parsePublishBody('{"userId":"u","data":null}', false, now)).to.deep.equal({ kind: 'user', userId: 'u', data: null });
  });
  it('refuses data that could not be delivered once framed', () => {
    expect(() => assertDeliverable({ kind: 'topic', topic: 't', data: 'x'.repeat(2000) }, 1024)).to.throw().with.property('status', 413);
    expect(() => assertDeliverable({ kind: 'topic', topic: 't', data: 'x'.repeat(100) }, 1024)).to.not.throw();
  });
  it('enforces the publish claim when a JWT authoriser is in front', () => {
    expect(() => authorize({ kind: 'topic', topic: 'v:1', data: 1 }, { publish: '[v:*]' }, 'publish')).to.not.throw();
    expect(() => authorize({ kind: 'topic', topic: 'w:1', data: 1 }, { publish: '[v:*]' }, 'publish')).to.throw().with.property('status', 403);
    expect(() => authorize({ kind: 'user', userId: 'eve', data: 1 }, {}, 'publish')).to.throw().with.property('code', 'forbidden');
    expect(() => authorize({ kind: 'user', userId: 'eve', data: 1 }, undefined, 'publish')).to.not.throw();
  });
  it('send-to-user needs the send-to-user claim; no topic grant in the publish claim allows it', () => {
    const bob = { kind: 'user', userId: 'bob', data: 1 } as const;
    // Topic grants that would match "user:bob" if users shared the topic namespace.
    for (const publish of [['*'], ['u*'], ['user:*'], ['user:bob']]) {
      expect(() => authorize(bob, { publish }, 'publish'), JSON.stringify(publish)).to.throw().with.property('status', 403);
    }
    expect(() => authorize(bob, { sendToUser: ['bob'] }, 'publish')).to.not.throw();
    expect(() => authorize(bob, { sendToUser: '[b* carol]' }, 'publish')).to.not.throw();
    expect(() => authorize(bob, { sendToUser: ['bobby', 'carol'] }, 'publish')).to.throw().with.property('code', 'forbidden');
    expect(() => authorize(bob, { notify: 'bob' }, 'publish', 'notify')).to.not.throw();
    // And the send-to-user claim grants no topic.
    expect(() => authorize({ kind: 'topic', topic: 'bob', data: 1 }, { sendToUser: ['*'] }, 'publish')).to.throw().with.property('status', 403);
  });
});
