import { expect } from 'chai';
import WebSocket from 'ws';
import { startTestStack, type LocalStack } from '../../support/stack';
import { startUpstream, waitFor, type UpstreamServer } from './harness';

/**
 * The whole path on the local stack: HTTP control API (emulator, payload 2.0) → SQS → agent →
 * upstream WebSocket on loopback → items table → stream → fan-out → a subscriber on the
 * WebSocket emulator, using nothing but the public protocols.
 */
describe('upstream connector end to end on the local stack', function () {
  this.timeout(30_000);
  let stack: LocalStack;
  let up: UpstreamServer;
  const email = 'e2e@acme.example';
  const pass = 'e2e-pass';
  const basic = `Basic ${Buffer.from(`${email}:${pass}`).toString('base64')}`;

  before(async () => {
    up = await startUpstream({ requireAuth: basic });
    stack = await startTestStack({
      // A ping timeout a loaded host cannot miss: a failed health check would redial, and a
      // message sent meanwhile would be lost (the test platform does not replay).
      withAgent: { leaseMs: 3000, renewMs: 500, reconcileMs: 500, healthIntervalMs: 5000, pingTimeoutMs: 2500, backoffBaseMs: 50, backoffMaxMs: 500, commandWaitSeconds: 1 },
    });
  });
  after(async () => {
    await stack?.stop();
    await up?.stop();
  });

  const api = (method: string, headers: Record<string, string>) =>
    fetch(`${stack.endpoints.httpUrl}/websocket`, { method, headers }).then(async (r) => ({ status: r.status, body: await r.json() }));

  it('POST → messages reach a subscriber of the topic; GET reports active; DELETE → upstream sees the close, GET inactive', async () => {
    const ids = { internalID: 'e2e-1', interWorkingInterface: up.url, platformID: 'acme' };
    const p = await api('POST', { ...ids, asapa_email: email, asapa_pass: pass });
    expect(p.status).to.equal(202);
    expect(p.body.topic).to.equal('platform:acme:e2e-1');
    await waitFor(() => up.open.size === 1, 10_000, 'the agent to connect upstream');
    expect(up.auths[0]).to.equal(basic);
    await waitFor(async () => (await api('GET', ids)).body.isActive === true, 5000, 'GET isActive');

    const sub = new WebSocket(`${stack.endpoints.websocketUrl}?userId=watcher`);
    const frames: { type: string; seq?: number; data?: unknown; topic?: string }[] = [];
    sub.on('message', (m) => frames.push(JSON.parse(m.toString())));
    await new Promise((r, j) => sub.once('open', r).once('error', j));
    sub.send(JSON.stringify({ action: 'subscribe', topic: p.body.topic }));
    await waitFor(() => frames.some((f) => f.type === 'snapshot' || f.type === 'subscribed'), 5000, 'the subscription to be acknowledged');

    for (let i = 1; i <= 3; i++) up.send({ timestamp: Date.now(), speed: i * 10 });
    await waitFor(() => frames.filter((f) => f.type === 'event').length >= 3, 10_000, 'three events at the subscriber');
    const events = frames.filter((f) => f.type === 'event');
    expect(events.map((e) => (e.data as { speed: number }).speed)).to.deep.equal([10, 20, 30]);
    expect(events.every((e) => e.topic === p.body.topic)).to.equal(true);
    sub.close();

    const d = await api('DELETE', ids);
    expect(d.status).to.equal(202);
    await waitFor(() => up.closes.length === 1, 5000, 'the upstream to see the close');
    await waitFor(async () => (await api('GET', ids)).body.isActive === false, 5000, 'GET inactive');
    expect((await api('GET', ids)).body.status).to.equal('closed');
  });
});
