import { expect } from 'chai';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { createTables } from '../../../local/bootstrap';
import { ItemStore } from '../../../lib/stores/items';
import { ConnectionStore } from '../../../lib/stores/connections';
import { subscribe } from '../../../lib/subscriber/subscribe';
import { SubscriptionStore } from '../../../lib/stores/subscriptions';
import { unsubscribe } from '../../../lib/subscriber/unsubscribe';
import { LOCAL_CREDENTIALS, testDynamoEndpoint, uniquePrefix } from '../../support/env';

type Side = 'S' | 'U';
/** The store calls each core makes that the other core's writes can interleave with. */
const SCRIPTED = {
  connections: ['addTopic', 'ensureTopic', 'removeTopic'],
  subscriptions: ['put', 'delete', 'exists'],
} as const;

/**
 * Runs the store calls of two concurrent operations (S = subscribe, U = unsubscribe) in a
 * scripted order. A call is labelled `side.store.method`; a call whose label is still in the
 * script waits for its turn, any other call runs at once. When a side returns, its remaining
 * steps are dropped, so a step the code under test does not make (e.g. with a fix reverted)
 * cannot deadlock the test.
 */
class Interleaving {
  private readonly script: string[];
  private readonly done = new Set<string>();
  private waiters: (() => void)[] = [];

  constructor(script: readonly string[]) {
    this.script = [...script];
  }

  /** `store` with its scripted methods routed through the script for `side`. */
  wrap<T extends object>(side: Side, name: keyof typeof SCRIPTED, store: T): T {
    const methods: readonly string[] = SCRIPTED[name];
    return new Proxy(store, {
      get: (target, prop) => {
        const v = Reflect.get(target, prop, target) as unknown;
        if (typeof v !== 'function') return v;
        const fn = v as (...a: unknown[]) => unknown;
        if (!methods.includes(String(prop))) return fn.bind(target);
        return (...args: unknown[]) => this.step(`${side}.${name}.${String(prop)}`, () => fn.apply(target, args) as Promise<unknown>);
      },
    });
  }

  /** Runs one side to completion, then releases its unused steps. */
  async run<T>(side: Side, op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } finally {
      this.done.add(side);
      this.wake();
    }
  }

  private head(): string | undefined {
    while (this.script.length > 0 && this.done.has(this.script[0]!.slice(0, 1))) this.script.shift();
    return this.script[0];
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  private async step<T>(label: string, call: () => Promise<T>): Promise<T> {
    if (!this.script.includes(label)) return call();
    while (this.head() !== label) await new Promise<void>((r) => this.waiters.push(r));
    try {
      return await call();
    } finally {
      this.script.shift();
      this.wake();
    }
  }
}

/** Every merge of two step lists that keeps each list's own order. */
function merges(a: readonly string[], b: readonly string[]): string[][] {
  if (a.length === 0) return [[...b]];
  if (b.length === 0) return [[...a]];
  return [...merges(a.slice(1), b).map((m) => [a[0]!, ...m]), ...merges(a, b.slice(1)).map((m) => [b[0]!, ...m])];
}

/**
 * subscribe / unsubscribe of one topic on one connection, landing out of order. API Gateway runs a connection's route invocations concurrently, so the writes of frames
 * sent in order can reach DynamoDB in any order. The cores are called in the bad order with
 * the request times the frames carried (requestContext.requestTimeEpoch).
 */
describe('subscribe/unsubscribe ordering by request time (DynamoDB Local)', function () {
  this.timeout(30_000);
  let ddb: DynamoDBClient;
  let doc: DynamoDBDocumentClient;
  let connections: ConnectionStore;
  let subscriptions: SubscriptionStore;
  let items: ItemStore;
  let tables: Record<string, string>;
  let n = 0;
  const frames: string[] = [];
  const deps = () => ({ connections, subscriptions, items, send: async (f: string) => frames.push(f), clock: Date.now });

  const newConnection = async () => {
    const connectionId = `race-${++n}`;
    await connections.put({ connectionId, userId: 'u', allowedTopics: ['*'], topics: [], connectedAt: Date.now() });
    return connectionId;
  };
  const subscriptionRow = async (topic: string, connectionId: string) =>
    (await doc.send(new GetCommand({ TableName: tables.subscriptions, Key: { topic, connectionId }, ConsistentRead: true }))).Item;
  const rowTopics = async (connectionId: string) => (await connections.get(connectionId))?.topics ?? [];

  before(async () => {
    ddb = new DynamoDBClient({ endpoint: testDynamoEndpoint(), region: 'us-east-1', credentials: LOCAL_CREDENTIALS });
    doc = DynamoDBDocumentClient.from(ddb, { marshallOptions: { removeUndefinedValues: true } });
    tables = (await createTables(ddb, uniquePrefix('race'))).names;
    connections = new ConnectionStore(doc, { table: tables.connections, ttlSeconds: 600, maxLifetimeSeconds: 7200, clock: Date.now });
    subscriptions = new SubscriptionStore(doc, { table: tables.subscriptions, clock: Date.now });
    items = new ItemStore(doc, { itemsTable: tables.items, historyTable: tables.history, historyTtlSeconds: 3600 });
  });
  after(() => ddb.destroy());

  it('an earlier unsubscribe landing after a later subscribe does not remove the subscription', async () => {
    const c = await newConnection();
    const topic = 'race:a';
    // Client sent: subscribe (t=1000), unsubscribe (t=2000), subscribe (t=3000).
    await subscribe(c, { topic, requestedAt: 1000 }, deps());
    await subscribe(c, { topic, requestedAt: 3000 }, deps());
    await unsubscribe(c, topic, { connections, subscriptions }, 2000); // landed last
    expect(await subscriptionRow(topic, c), 'the subscription of t=3000 survives').to.include({ subscribedAt: 3000 });
    expect(await rowTopics(c)).to.include(topic);

    // A genuinely later unsubscribe still removes it.
    expect(await unsubscribe(c, topic, { connections, subscriptions }, 4000)).to.equal(true);
    expect(await subscriptionRow(topic, c)).to.equal(undefined);
    expect(await rowTopics(c)).to.not.include(topic);
  });

  it('a stale subscribe landing after a newer one does not lower subscribedAt (so the unsubscribe between them cannot win)', async () => {
    const c = await newConnection();
    const topic = 'race:b';
    // Sent: subscribe (1000), unsubscribe (2000), subscribe (3000). Landed: 3000, 1000, 2000.
    await subscribe(c, { topic, requestedAt: 3000 }, deps());
    await subscribe(c, { topic, requestedAt: 1000 }, deps());
    expect(await subscriptionRow(topic, c)).to.include({ subscribedAt: 3000 });
    await unsubscribe(c, topic, { connections, subscriptions }, 2000);
    expect(await subscriptionRow(topic, c), 'still subscribed').to.not.equal(undefined);
  });

  it('an unsubscribe in the same millisecond as the subscribe keeps the subscription (losing one is the worse error)', async () => {
    const c = await newConnection();
    const topic = 'race:c';
    await subscribe(c, { topic, requestedAt: 5000 }, deps());
    expect(await unsubscribe(c, topic, { connections, subscriptions }, 5000)).to.equal(false);
    expect(await subscriptionRow(topic, c)).to.not.equal(undefined);
  });

  describe('concurrent subscribe (t=300) and unsubscribe (t=200) over a subscription of t=100', () => {
    /**
     * Drives subscribe(t=300) and unsubscribe(t=200) of a topic already subscribed at t=100
     * through `script`, then checks the invariant: the subscription row of t=300 exists (it is
     * the newest frame) AND its topic is on the connection row (the 100-topic cap counts it and
     * $disconnect finds it without the eventually consistent byConnection index).
     */
    const race = async (script: readonly string[], topic: string) => {
      const c = await newConnection();
      await subscribe(c, { topic, requestedAt: 100 }, deps());
      const il = new Interleaving(script);
      const side = (s: Side) => ({ connections: il.wrap(s, 'connections', connections), subscriptions: il.wrap(s, 'subscriptions', subscriptions) });
      await Promise.all([
        il.run('S', () => subscribe(c, { topic, requestedAt: 300 }, { ...deps(), ...side('S') })),
        il.run('U', () => unsubscribe(c, topic, side('U'), 200)),
      ]);
      return {
        c,
        row: await subscriptionRow(topic, c),
        topics: await rowTopics(c),
      };
    };

    it("the interleaving S.addTopic, U.delete, S.put, U.removeTopic leaves the topic on the connection row", async () => {
      const topic = 'race:f3';
      const r = await race(['S.connections.addTopic', 'U.subscriptions.delete', 'S.subscriptions.put', 'U.connections.removeTopic'], topic);
      expect(r.row, 'the t=300 subscription').to.include({ subscribedAt: 300 });
      expect(r.topics, 'topic on the connection row').to.include(topic);
      // And a later unsubscribe still removes both.
      expect(await unsubscribe(r.c, topic, { connections, subscriptions }, 400)).to.equal(true);
      expect(await subscriptionRow(topic, r.c)).to.equal(undefined);
      expect(await rowTopics(r.c)).to.not.include(topic);
    });

    it('every interleaving of their store calls keeps row ⇒ topic on the connection row', async function () {
      this.timeout(60_000);
      const S = ['S.connections.addTopic', 'S.subscriptions.put', 'S.connections.ensureTopic'];
      const U = ['U.subscriptions.delete', 'U.connections.removeTopic', 'U.subscriptions.exists'];
      const all = merges(S, U);
      expect(all).to.have.length(20); // C(6,3)
      const broken: string[] = [];
      let i = 0;
      for (const script of all) {
        const topic = `race:all:${i++}`;
        const r = await race(script, topic);
        if (!r.row || r.row.subscribedAt !== 300 || !r.topics.includes(topic)) {
          broken.push(`${script.join(' → ')}: row=${JSON.stringify(r.row?.subscribedAt)} topics=${JSON.stringify(r.topics)}`);
        }
      }
      expect(broken, broken.join('\n')).to.deep.equal([]);
    });
  });

  it('rows written at $connect (no subscribedAt) and absent rows are removed by any unsubscribe', async () => {
    const c = await newConnection();
    const topic = 'vehicleId:9';
    await connections.addTopic(c, topic);
    await subscriptions.put({ topic, connectionId: c, userId: 'u', expiresAt: Math.floor(Date.now() / 1000) + 600 });
    expect(await unsubscribe(c, topic, { connections, subscriptions }, 1)).to.equal(true);
    expect(await subscriptionRow(topic, c)).to.equal(undefined);
    expect(await rowTopics(c)).to.not.include(topic);
    // Idempotent: unsubscribing again (nothing there) succeeds.
    expect(await unsubscribe(c, topic, { connections, subscriptions }, 2)).to.equal(true);
  });
});
