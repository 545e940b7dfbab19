import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { connect, type RealtimeClient, type RealtimeError } from '../../../client/index';
import { createLogger } from '../../../lib/log';
import { DEFAULT_RETRY } from '../../../lib/delivery/deliver';
import { startTestStack, type LocalStack } from '../../support/stack';
import { NodeWebSocket, publish, waitFor } from './helpers';
import { ReplyFaultProxy } from './reply-fault-proxy';

/**
 * The SDK against the local stack when the answer to a subscribe does not arrive: the handlers
 * post their replies through a proxy that refuses them (500) while a fault is on. The topic is
 * quiet (nothing is published after the subscribe), so only a re-sent subscribe can bring the
 * snapshot. Also: send-to-user frames through the SDK's `message` event.
 */
describe('client SDK against the local stack: lost subscribe answers, messages to the user', function () {
  this.timeout(60_000);
  let stack: LocalStack;
  let proxy: ReplyFaultProxy;
  const clients: RealtimeClient[] = [];
  const open = (userId: string) => {
    const c = connect(stack.endpoints.websocketUrl, { WebSocket: NodeWebSocket, userId, subscribeTimeoutMs: 2000, backoff: { initialMs: 100, maxMs: 500 } });
    clients.push(c);
    return c;
  };

  before(async () => {
    proxy = await ReplyFaultProxy.start();
    // The handlers log the refused replies as errors: expected here, so kept out of the output.
    stack = await startTestStack({ env: { WS_MANAGEMENT_ENDPOINT: proxy.endpoint() }, log: createLogger({ write: () => {} }) });
    proxy.target = new URL(stack.endpoints.managementUrl);
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
    proxy.refuse = () => false;
    proxy.refused = 0;
  });
  after(async () => {
    await stack?.stop();
    await proxy?.close();
  });

  it('a subscribe whose answer is lost is sent again: the snapshot of a quiet topic arrives after the fault clears', async () => {
    const topic = `quiet:${randomUUID().slice(0, 8)}`;
    await publish(stack.endpoints.httpUrl, topic, { state: 'parked' });
    // Every reply about this topic fails: the snapshot, and the error frame the handler tries next.
    proxy.refuse = (body) => body.includes(JSON.stringify(topic));
    const c = open('lost');
    const snapshots: unknown[] = [];
    const errors: RealtimeError[] = [];
    c.on('error', (e) => errors.push(e));
    c.subscribe(topic, (data, info) => snapshots.push({ data, seq: info.seq }));
    await waitFor(() => proxy.refused >= 1, 10_000, 'the first answer to be lost');
    // The SDK sends the subscribe again while every answer is still being lost…
    await waitFor(() => errors.some((e) => e.code === 'subscribe_retry'), 15_000, 'the SDK to send the subscribe again');
    // …and past the handler's own retries of its replies (DEFAULT_RETRY.budgetMs) nothing arrives.
    await new Promise((r) => setTimeout(r, DEFAULT_RETRY.budgetMs! + 500));
    expect(snapshots).to.deep.equal([]);
    proxy.refuse = () => false; // the fault clears; nothing is published
    await waitFor(() => snapshots.length === 1, 15_000, 'the snapshot after the fault cleared');
    expect(snapshots).to.deep.equal([{ data: { state: 'parked' }, seq: 1 }]);
    expect(errors.filter((e) => e.code === 'subscribe_retry')[0].message).to.match(/no answer within 2000 ms/);
  });

  it('a subscribe answered with a retryable error (internal_error) is sent again and the snapshot arrives; the topic sees no error', async () => {
    const topic = `retry:${randomUUID().slice(0, 8)}`;
    await publish(stack.endpoints.httpUrl, topic, 7);
    // The snapshot fails (with the sender's own retries) until the handler has answered
    // {"type":"error","code":"internal_error"} instead; after that the fault is gone.
    let answeredError = false;
    proxy.refuse = (body) => {
      if (!body.includes(JSON.stringify(topic))) return false;
      if (body.includes('"code":"internal_error"')) answeredError = true;
      return !answeredError && body.includes('"type":"snapshot"');
    };
    const c = open('retry');
    const snapshots: number[] = [];
    const topicErrors: string[] = [];
    const retries: string[] = [];
    c.on('error', (e) => e.code === 'subscribe_retry' && retries.push(e.message));
    c.subscribe(topic, (_d, info) => snapshots.push(info.seq), undefined, { onError: (e) => topicErrors.push(e.code) });
    await waitFor(() => snapshots.length === 1, 10_000, 'the snapshot');
    expect(snapshots).to.deep.equal([1]);
    expect(proxy.refused).to.be.at.least(1);
    expect(answeredError).to.equal(true);
    expect(retries.some((m) => /answered internal_error/.test(m)), retries.join('; ')).to.equal(true);
    expect(topicErrors).to.deep.equal([]);
  });

  it('send-to-user frames reach rt.on("message") with their data and ts, never as protocol errors', async () => {
    const userId = `u-${randomUUID().slice(0, 8)}`;
    const c = open(userId);
    const messages: { data: unknown; ts?: number }[] = [];
    const errors: string[] = [];
    c.on('message', (data, info) => messages.push({ data, ts: info.ts }));
    c.on('error', (e) => errors.push(`${e.code}: ${e.message}`));
    await c.whenOpen();
    // The connection row is written by $connect before the upgrade completes.
    const r = await fetch(`${stack.endpoints.httpUrl}/publish`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ userId, data: { note: 'private to this user' } }),
    });
    expect(((await r.json()) as { reached: number }).reached).to.equal(1);
    await waitFor(() => messages.length === 1, 5000, 'the message');
    expect(messages[0].data).to.deep.equal({ note: 'private to this user' });
    expect(messages[0].ts).to.be.a('number');
    expect(errors).to.deep.equal([]);
  });
});
