import { expect } from 'chai';
import { createHandler } from '../../../functions/control';
import { startAgent, type RunningAgent } from '../../../ec2-agent/agent';
import { maxPayloadFor } from '../../../ec2-agent/supervisor';
import { ItemStore } from '../../../lib/stores/items';
import { worstCaseEventBytes } from '../../../lib/subscriber/frames';
import { invokeLambda } from '../../../local/lambda/invoke';
import { httpEvent, startHarness, startUpstream, waitFor, type Harness, type UpstreamServer } from './harness';

/**
 * Review finding 3 (agent side): the agent stores only what fan-out can deliver. A message whose
 * worst-case event frame exceeds the WebSocket message limit (128 KB) would take a seq that no
 * subscriber can ever receive; it is dropped and counted instead, so seqs stay contiguous.
 * Frames far beyond the limit are refused by ws itself (maxPayload), not buffered.
 */
describe('upstream agent: messages too large to deliver', function () {
  this.timeout(30_000);
  let h: Harness;
  let agent: RunningAgent;
  let up: UpstreamServer;
  let items: ItemStore;
  let topic: string;
  let socketId: string;
  const SECRET_MARK = 'do-not-log-this-content';

  before(async () => {
    h = await startHarness();
    up = await startUpstream();
    const control = createHandler(h.deps('control'));
    const ev = httpEvent('POST /websocket', { internalID: 'veh-big', interWorkingInterface: up.url, platformID: 'acme', asapa_email: 'a@b.c', asapa_pass: 'pw' });
    const r = JSON.parse((await invokeLambda<{ statusCode: number; body: string }>(control as never, ev, { functionName: 'control' })).body);
    topic = r.topic;
    socketId = r.socketId;
    // A lease a loaded host's stalls cannot run out (deadline 4.2 s after a renewal): a lost one
    // would cut the socket, which these tests would see as an extra close.
    agent = await startAgent(h.deps('agent'), { leaseMs: 4500, renewMs: 300, reconcileMs: 300, backoffBaseMs: 50, backoffMaxMs: 200, commandWaitSeconds: 1, counterFlushMs: 300 });
    items = new ItemStore(h.clients.doc, { itemsTable: h.tables.items, historyTable: h.tables.history, historyTtlSeconds: 3600 });
    await waitFor(() => up.open.size === 1, 10_000, 'the upstream connection');
  });
  after(async () => {
    await agent?.stop();
    await up?.stop();
    await h?.stop();
  });

  const seq = async () => (await items.get(topic))?.seq ?? 0;
  /** `{"pad":"xx…","m":mark}` whose worst-case event frame on the topic is exactly `bytes`. */
  const sized = (bytes: number, mark: string) => {
    const base = { pad: '', m: mark };
    const n = bytes - worstCaseEventBytes(topic, base);
    return { pad: 'x'.repeat(n), m: mark };
  };

  it('stores a message whose event frame is exactly at the limit, drops one byte more, and keeps seqs contiguous', async () => {
    const limit = h.config.subscriber.maxMessageBytes;
    up.send({ n: 1 });
    await waitFor(async () => (await seq()) === 1, 5000, 'seq 1');
    const atLimit = sized(limit, 'fits');
    expect(worstCaseEventBytes(topic, atLimit)).to.equal(limit);
    up.send(atLimit);
    up.send(sized(limit + 1, SECRET_MARK));
    up.send({ n: 3 });
    await waitFor(async () => (await seq()) === 3, 5000, 'seq 3');
    const hist = await items.historySince(topic, 0, 10);
    expect(hist.map((x) => x.seq)).to.deep.equal([1, 2, 3]);
    expect((hist[1].data as { m: string }).m).to.equal('fits');
    expect(hist[2].data).to.deep.equal({ n: 3 });
    expect(agent.metrics().messagesDropped).to.equal(1);
    // Logged (with its size), never with its content.
    const logs = h.logLines.join('\n');
    expect(logs).to.match(/message dropped.*too large/);
    expect(logs).to.not.include(SECRET_MARK);
  });

  it('a frame over maxPayload is refused by ws (1009), counted as dropped, and the socket is redialled', async () => {
    const limit = h.config.subscriber.maxMessageBytes;
    expect(maxPayloadFor(limit)).to.be.below(1024 * 1024); // not ws's 100 MiB default
    const dropped = agent.metrics().messagesDropped;
    const before = await seq();
    const connections = up.connections;
    up.send('y'.repeat(maxPayloadFor(limit) + 1));
    await waitFor(() => up.closes.includes(1009), 5000, 'the 1009 close');
    await waitFor(() => up.connections > connections && up.open.size === 1, 5000, 'the redial');
    expect(agent.metrics().messagesDropped).to.equal(dropped + 1);
    up.send({ n: 'after' });
    await waitFor(async () => (await seq()) === before + 1, 5000, 'the next message stored');
    // The counters reach the row with the lease renewals.
    const control = createHandler(h.deps('control'));
    await waitFor(
      async () => {
        const ev = httpEvent('GET /websocket', {}, { socketId });
        const r = JSON.parse((await invokeLambda<{ statusCode: number; body: string }>(control as never, ev, { functionName: 'control' })).body);
        return r.counters.messagesDropped === 2;
      },
      3000,
      'messagesDropped on the row',
    );
  });
});
