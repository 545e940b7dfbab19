import { expect } from 'chai';
import { ItemStore } from '../../../lib/stores/items';
import { startTestStack, type LocalStack } from '../../support/stack';
import { TestClient } from './support/client';
import { postJson } from './support/http';

/**
 * An item too large for one WebSocket message, written directly to the table (publish refuses
 * it; the items table holds 400 KB, API Gateway messages 128 KB). End to end through the stream
 * poller, fan-out and the emulator (which answers 413 above 128 KB like API Gateway): the seq
 * arrives as a `truncated` placeholder live, in a replay and as a snapshot, so no client is left
 * with a gap it can never fill.
 */
describe('oversize items end to end (local stack)', function () {
  this.timeout(60_000);
  let stack: LocalStack;
  let items: ItemStore;
  const clients: TestClient[] = [];
  const open = async () => {
    const c = await TestClient.connect(stack.endpoints.websocketUrl);
    clients.push(c);
    return c;
  };
  const publish = async (topic: string, data: unknown) => {
    const r = await postJson(`${stack.endpoints.httpUrl}/publish`, { topic, data });
    expect(r.status, JSON.stringify(r.body)).to.equal(202);
  };
  const big = { blob: 'x'.repeat(200 * 1024) };

  before(async () => {
    stack = await startTestStack();
    items = new ItemStore(stack.clients.doc, {
      itemsTable: stack.tables.items,
      historyTable: stack.tables.history,
      historyTtlSeconds: stack.config.subscriber.historyTtlSeconds,
    });
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });
  after(async () => {
    await stack?.stop();
  });

  it('live, replayed and snapshot deliveries of an oversize seq are placeholders; seqs stay contiguous', async () => {
    const topic = 'vehicle:oversize';
    const live = await open();
    await live.request({ action: 'subscribe', topic }, 'snapshot');
    await publish(topic, 'one');
    expect((await items.write(topic, big)).seq).to.equal(2);
    await publish(topic, 'three');
    await live.waitFor(() => (live.applied.get(topic) ?? []).at(-1) === 3, 15_000, 'seq 3 live');
    expect(live.applied.get(topic)).to.deep.equal([0, 1, 2, 3]);
    const ev2 = live.ofType('event').find((e) => e.seq === 2)!;
    expect(ev2).to.include({ topic, data: null, truncated: true });
    expect(ev2.latencyMs).to.be.a('number');

    // Resume from seq 1: the replay carries the placeholder for 2, then 3.
    const resumer = await open();
    const done = await resumer.request({ action: 'subscribe', topic, sinceSeq: 1 }, 'subscribed');
    expect(done).to.include({ seq: 3, replayed: 2 });
    // The frames of a replay page are posted in parallel and may arrive in any order: each once,
    // sorted here; the order the application sees is `applied`.
    const replayed = resumer.ofType('event').sort((x, y) => Number(x.seq) - Number(y.seq));
    expect(replayed.map((e) => [e.seq, e.data, e.truncated ?? false, e.replay])).to.deep.equal([
      [2, null, true, true],
      [3, 'three', false, true],
    ]);
    expect(resumer.applied.get(topic)).to.deep.equal([2, 3]);
    expect(resumer.ofType('error')).to.deep.equal([]);

    // The latest item oversize: a fresh subscribe still gets a (truncated) snapshot.
    expect((await items.write(topic, big)).seq).to.equal(4);
    const fresh = await open();
    const snap = await fresh.request({ action: 'subscribe', topic }, 'snapshot');
    expect(snap).to.deep.include({ type: 'snapshot', topic, seq: 4, data: null, truncated: true });
    await live.waitFor(() => (live.applied.get(topic) ?? []).at(-1) === 4, 15_000, 'seq 4 live');
    expect(live.ofType('error')).to.deep.equal([]);
  });
});
