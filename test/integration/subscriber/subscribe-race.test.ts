import { expect } from 'chai';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { createTables } from '../../../local/bootstrap';
import { ItemStore } from '../../../lib/stores/items';
import { ConnectionStore } from '../../../lib/subscriber/connections';
import { subscribe } from '../../../lib/subscriber/subscribe';
import { SubscriptionStore } from '../../../lib/subscriber/subscriptions';
import { unsubscribe } from '../../../lib/subscriber/unsubscribe';
import { LOCAL_CREDENTIALS, testDynamoEndpoint, uniquePrefix } from '../../support/env';

/**
 * subscribe / unsubscribe of one topic on one connection, landing out of order (review finding
 * 6). API Gateway runs a connection's route invocations concurrently, so the writes of frames
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
