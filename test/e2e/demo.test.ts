import { expect } from 'chai';
import { connect, type RealtimeClient } from '../../client/index';
import { startDemo, type Demo } from '../../local/demo/demo';
import { startTestStack, type LocalStack } from '../support/stack';
import { NodeWebSocket, waitFor } from '../integration/client/helpers';

/**
 * The newcomer path: stack + agent + `startDemo` (control API POST /websocket per stream) → the
 * agent connects to the sample platform with the sealed Basic credentials → messages land on
 * their topics → a subscriber sees them move.
 */
describe('demo source through the control API, the agent and a subscriber', function () {
  this.timeout(60_000);
  let stack: LocalStack;
  let demo: Demo | undefined;
  let client: RealtimeClient | undefined;
  before(async () => {
    stack = await startTestStack({ withAgent: { reconcileMs: 200, renewMs: 1000, leaseMs: 5000 } });
  });
  after(async () => {
    client?.close();
    await demo?.stop();
    await stack?.stop();
  });

  it('opens one upstream socket per stream and subscribers receive battery metrics and vehicle positions', async () => {
    demo = await startDemo({ httpUrl: stack.endpoints.httpUrl, intervalMs: 100, batteries: 2, vehicles: 1 });
    expect(demo.topics).to.deep.equal(['batteryId:1', 'batteryId:2', 'vehicleId:1']);
    expect(demo.socketIds).to.have.length(3);

    const got = new Map<string, Record<string, unknown>[]>();
    client = connect(stack.endpoints.websocketUrl, { WebSocket: NodeWebSocket, userId: 'newcomer', topics: demo.topics });
    client.on('event', (d, i) => got.set(i.topic, [...(got.get(i.topic) ?? []), d as Record<string, unknown>]));
    await waitFor(() => demo!.topics.every((t) => (got.get(t)?.length ?? 0) >= 3), 20_000, () => `3 events per topic (${[...got].map(([t, v]) => `${t}:${v.length}`)})`);

    const battery = got.get('batteryId:1')!.at(-1)!;
    expect(Object.keys(battery).sort()).to.deep.equal(['current', 'state_of_charge', 'state_of_health', 'temperature', 'timestamp', 'voltage']);
    const vehicle = got.get('vehicleId:1')!.at(-1)!;
    expect(vehicle).to.include({ vehicleId: '1' });

    const r = await fetch(`${stack.endpoints.httpUrl}/websockets`);
    const list = (await r.json()) as { items: { socketId: string; isActive: boolean; status: string; topic: string }[] };
    const mine = list.items.filter((u) => demo!.socketIds.includes(u.socketId));
    expect(mine.map((u) => u.topic).sort()).to.deep.equal([...demo.topics].sort());
    expect(mine.every((u) => u.isActive), JSON.stringify(mine)).to.equal(true);
    // The credentials went to the secret store, never to the listing.
    expect(JSON.stringify(list)).to.not.include('demo@example.com');

    await demo.stop();
    demo = undefined;
  });
});
