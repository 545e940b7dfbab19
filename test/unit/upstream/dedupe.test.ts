import { expect } from 'chai';
import { parseDedupePath, parseRedundancy, valueAtPath } from '../../../lib/upstream/headers';
import { IdempotencyStore } from '../../../lib/stores/idempotency';
import { DedupeKeys } from '../../../ec2-agent/dedupe';
import { InputError } from '../../../lib/errors';

/** Redundant homing's headers and the dedupe keys two agents must derive alike. */
describe('redundant homing: headers and dedupe keys', () => {
  it('redundancy is 1 by default, 1 or 2 when given, and anything else is a 400 naming the header', () => {
    expect(parseRedundancy({})).to.equal(1);
    expect(parseRedundancy({ redundancy: '2' })).to.equal(2);
    expect(parseRedundancy({ Redundancy: ' 1 ' })).to.equal(1);
    for (const v of ['0', '3', 'two', '2.0']) {
      expect(() => parseRedundancy({ redundancy: v })).to.throw(InputError, 'header redundancy must be 1 or 2');
    }
  });

  it('dedupe-path takes $.member steps only, and only with redundancy 2', () => {
    expect(parseDedupePath({}, 2)).to.equal(undefined);
    expect(parseDedupePath({ 'dedupe-path': '$.meta.message_id' }, 2)).to.equal('$.meta.message_id');
    expect(() => parseDedupePath({ 'dedupe-path': '$.id' }, 1)).to.throw(InputError, 'only applies with redundancy: 2');
    for (const v of ['id', '$', '$..id', '$.a[0]', '$.a b', `$${'.a'.repeat(9)}`]) {
      expect(() => parseDedupePath({ 'dedupe-path': v }, 2), v).to.throw(InputError, 'must be a JSON path');
    }
  });

  it('valueAtPath reads strings and finite numbers, nothing from arrays, prototypes or missing steps', () => {
    expect(valueAtPath({ meta: { id: 'm-1' } }, '$.meta.id')).to.equal('m-1');
    expect(valueAtPath({ id: 7 }, '$.id')).to.equal('7');
    expect(valueAtPath({ id: { x: 1 } }, '$.id')).to.equal(undefined);
    expect(valueAtPath({ meta: [1] }, '$.meta.length')).to.equal(undefined);
    expect(valueAtPath({}, '$.constructor')).to.equal(undefined);
    expect(valueAtPath('text', '$.id')).to.equal(undefined);
  });

  const keysOf = (path?: string) => {
    let now = 1_000_000;
    const store = (windowSeconds: number) => new IdempotencyStore(undefined as never, { table: 'idem', windowSeconds, clock: () => now });
    const keys = new DedupeKeys({ socketId: 's1', topic: 't', path, byId: store(3600), byContent: store(60), clock: () => now });
    return { key: (data: unknown, text?: string) => keys.claimFor({ data, text, ts: 0 } as never).item({ seq: 1, ts: 0 }).key as string, advance: (ms: number) => (now += ms) };
  };

  it('two agents derive the same key for the same message: by id at the path, else by content and its occurrence', () => {
    const [a, b] = [keysOf('$.id'), keysOf('$.id')];
    expect(a.key({ id: 'x', v: 1 })).to.equal(b.key({ id: 'x', v: 2 })); // same id: one message
    const [c, d] = [keysOf(), keysOf()];
    const first = c.key({ n: 1 }, '{"n":1}');
    expect(d.key({ n: 1 }, '{"n":1}')).to.equal(first);
    // A genuine repeat of the same content is a second message, with a key of its own.
    const again = c.key({ n: 1 }, '{"n":1}');
    expect(again).to.not.equal(first);
    expect(d.key({ n: 1 }, '{"n":1}')).to.equal(again);
    // After the window, counting starts over.
    c.advance(61_000);
    expect(c.key({ n: 1 }, '{"n":1}')).to.equal(first);
    // A message without a value at the path falls back to its content.
    expect(keysOf('$.id').key({ n: 1 }, '{"n":1}')).to.equal(first);
  });
});
