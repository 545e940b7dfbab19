import { expect } from 'chai';
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import { ApiGatewayManagementApiClient, DeleteConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { connect, type CollectionMember, type RealtimeClient } from '../../../client/index';
import { startTestStack, type LocalStack } from '../../support/stack';
import { ADMIN_PRINCIPAL, localCredentials } from '../../../local/iam/principals';
import { NodeWebSocket, publish, waitFor } from './helpers';

/**
 * The SDK's collection subscribe (`batteryId:*`) against the local stack: one snapshot of every
 * member, then each member change once and in order to every subscription that covers it, and
 * after a server-side kill during changes a view equal to the table.
 */
describe('client SDK collections against the local stack', function () {
  this.timeout(60_000);
  let stack: LocalStack;
  let mgmt: ApiGatewayManagementApiClient;
  const clients: RealtimeClient[] = [];
  before(async () => {
    stack = await startTestStack();
    mgmt = new ApiGatewayManagementApiClient({ endpoint: stack.endpoints.managementUrl, region: 'us-east-1', credentials: localCredentials(ADMIN_PRINCIPAL) });
  });
  after(async () => {
    for (const c of clients) c.close();
    mgmt?.destroy();
    await stack?.stop();
  });

  it('delivers the members as one snapshot, then each member change once to the collection and to the member subscription', async () => {
    for (const [t, n] of [['batteryId:1', 1], ['batteryId:2', 2], ['batteryId:3', 3]] as const) for (let i = 1; i <= n; i++) await publish(stack.endpoints.httpUrl, t, { soc: i });
    const rt = connect(stack.endpoints.websocketUrl, { WebSocket: NodeWebSocket, userId: 'fleet' });
    clients.push(rt);
    const snapshots: Record<string, CollectionMember>[] = [];
    const events: string[] = [];
    const memberEvents: number[] = [];
    rt.subscribe(
      'batteryId:*',
      (members) => snapshots.push(members),
      (_change, { topic, seq }) => events.push(`${topic}@${seq}`),
    );
    await waitFor(() => snapshots.length === 1, 10_000, 'the collection snapshot');
    expect(Object.fromEntries(Object.entries(snapshots[0]).map(([t, m]) => [t, [m.seq, m.data]]))).to.deep.equal({
      'batteryId:1': [1, { soc: 1 }],
      'batteryId:2': [2, { soc: 2 }],
      'batteryId:3': [3, { soc: 3 }],
    });
    let memberSnap = false;
    rt.subscribe('batteryId:2', () => (memberSnap = true), (_c, { seq }) => memberEvents.push(seq));
    await waitFor(() => memberSnap, 10_000, 'the member snapshot');
    await publish(stack.endpoints.httpUrl, 'batteryId:2', { soc: 3 });
    await publish(stack.endpoints.httpUrl, 'batteryId:2', { soc: 4 });
    await waitFor(() => events.length >= 2 && memberEvents.length >= 2, 10_000, () => `both changes (${events}; ${memberEvents})`);
    await new Promise((r) => setTimeout(r, 300)); // late duplicates would show up here
    expect(events).to.deep.equal(['batteryId:2@3', 'batteryId:2@4']);
    expect(memberEvents).to.deep.equal([3, 4]);
    rt.close();
    await waitFor(() => stack.websocket.connectionIds().length === 0, 5000, 'the socket closed');
  });

  it('after the connection is killed during changes, the re-subscribed collection view equals the table', async () => {
    const topics = ['fleetc:a', 'fleetc:b', 'fleetc:c'];
    for (const t of topics) await publish(stack.endpoints.httpUrl, t, { n: 0 });
    const view = new Map<string, { seq: number; data: unknown }>();
    const outOfOrder: string[] = [];
    const rt = connect(stack.endpoints.websocketUrl, { WebSocket: NodeWebSocket, userId: 'viewer', backoff: { initialMs: 50, maxMs: 300 } });
    clients.push(rt);
    let snapshots = 0;
    rt.subscribe(
      'fleetc:*',
      (members) => {
        snapshots++;
        for (const [t, m] of Object.entries(members)) view.set(t, { seq: m.seq, data: m.data });
      },
      (data, { topic, seq }) => {
        // Once and in order per member: each change is past what the view holds (a re-subscribe's
        // snapshot may jump ahead; an event never repeats or goes back).
        if (seq <= (view.get(topic)?.seq ?? 0)) outOfOrder.push(`${topic}@${seq}`);
        view.set(topic, { seq, data });
      },
    );
    await waitFor(() => snapshots === 1, 10_000, 'the first snapshot');
    let stop = false;
    let rounds = 0;
    const writer = (async () => {
      for (let n = 1; !stop; n++) {
        await Promise.all(topics.map((t) => publish(stack.endpoints.httpUrl, t, { n })));
        rounds++;
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    // Changes made in each phase: counted in rounds of writes, not in time, which a slow run stretches.
    const writes = async (k: number, what: string) => {
      const until = rounds + k;
      await waitFor(() => rounds >= until, 10_000, `${k} rounds of changes ${what}`);
    };
    try {
      await writes(2, 'before the kill');
      await waitFor(() => stack.websocket.connectionIds().length === 1, 5000, 'one live connection');
      await mgmt.send(new DeleteConnectionCommand({ ConnectionId: stack.websocket.connectionIds()[0] }));
      await waitFor(() => snapshots === 2, 10_000, 'the snapshot after the reconnect');
      await writes(2, 'after the re-subscribe');
    } finally {
      stop = true;
      await writer;
    }
    const table = new Map<string, { seq: number; data: unknown }>();
    for (const t of topics) {
      const r = await stack.clients.doc.send(new QueryCommand({ TableName: stack.tables.items, KeyConditionExpression: 'topic = :t', ExpressionAttributeValues: { ':t': t }, ConsistentRead: true }));
      table.set(t, { seq: Number(r.Items![0].seq), data: r.Items![0].data });
    }
    await waitFor(() => JSON.stringify([...view].sort()) === JSON.stringify([...table].sort()), 10_000, () => `view ${JSON.stringify([...view])} = table ${JSON.stringify([...table])}`);
    expect(outOfOrder).to.deep.equal([]);
    expect(table.get('fleetc:a')!.seq).to.be.greaterThan(3);
  });
});
