import { expect } from 'chai';
import { createHandler } from '../../../functions/fanout';
import { parseDlqMessage, redrive, RedriveInputError } from '../../../lib/fanout/redrive';
import { ItemStore } from '../../../lib/stores/items';
import { startTestStack, type LocalStack } from '../../support/stack';
import { waitFor } from '../../support/wait';
import { TestClient } from '../subscriber/support/client';

/**
 * Redrive of fanoutDlq against the local stack: fan-out gives up on a batch (every delivery
 * throttled, injected by the emulator), the stream poller puts it on the DLQ as the Lambda event
 * source mapping would, and redrive delivers those seqs from history to the current subscribers.
 */
describe('fanoutDlq redrive (local stack)', function () {
  this.timeout(90_000);
  let stack: LocalStack;
  const clients: TestClient[] = [];
  before(async () => {
    stack = await startTestStack();
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await stack?.stop();
  });

  const runRedrive = () => {
    const items = new ItemStore(stack.clients.doc, { itemsTable: stack.tables.items, historyTable: stack.tables.history, historyTtlSeconds: 3600, clock: Date.now });
    return redrive({
      sqs: stack.clients.sqs,
      streams: stack.clients.streams,
      dlqUrl: stack.queueUrls.fanoutDlq,
      history: (t, a, u) => items.historySince(t, a, u),
      fanout: createHandler(stack.deps),
      log: stack.deps.log,
    });
  };

  it('reads both the AWS on-failure record and the local poller form, and names what a bad one lacks', () => {
    const aws = {
      requestContext: { requestId: 'x', functionArn: 'arn:aws:lambda:eu-west-1:1:function:fanout', condition: 'RetryAttemptsExhausted', approximateInvokeCount: 4 },
      version: '1.0',
      DDBStreamBatchInfo: {
        shardId: 'shardId-00000001',
        startSequenceNumber: '100',
        endSequenceNumber: '200',
        batchSize: 2,
        streamArn: 'arn:aws:dynamodb:eu-west-1:1:table/items/stream/2026',
      },
    };
    expect(parseDlqMessage(JSON.stringify(aws))).to.deep.equal({ streamArn: aws.DDBStreamBatchInfo.streamArn, shardId: 'shardId-00000001', startSequenceNumber: '100', endSequenceNumber: '200' });
    const local = { reason: 'RetryAttemptsExhausted', firstSequenceNumber: '5', lastSequenceNumber: '9', batchSize: 3, shardId: 's', streamArn: 'arn' };
    expect(parseDlqMessage(JSON.stringify(local))).to.include({ startSequenceNumber: '5', endSequenceNumber: '9' });
    expect(() => parseDlqMessage('{"shardId":"s"}')).to.throw(RedriveInputError, /streamArn/);
    expect(() => parseDlqMessage('nope')).to.throw(RedriveInputError, /not JSON/);
  });

  it('a batch fan-out gave up on reaches the DLQ; redrive delivers its seqs in order to every current subscriber and empties the queue', async () => {
    const [a, b] = await Promise.all(['ra', 'rb'].map((u) => TestClient.connect(`${stack.endpoints.websocketUrl}?userId=${u}`)));
    clients.push(a, b);
    for (const c of [a, b]) await c.request({ action: 'subscribe', topic: 'redrive:1' }, 'snapshot');
    // Every management API call throttled: a widespread failure, so the records fail (no resync).
    stack.websocket.faults.set({ rate: 1, statuses: [429], latencyMs: [0, 0], connections: {} });
    for (let i = 1; i <= 3; i++) {
      const r = await fetch(`${stack.endpoints.httpUrl}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ topic: 'redrive:1', data: { i } }) });
      expect(r.ok).to.equal(true);
    }
    await waitFor(() => stack.pollers[0].stats.failedToDlq >= 3, 60_000, 'the batch on the DLQ');
    stack.websocket.faults.clear();
    expect(a.ofType('event')).to.have.length(0);

    const report = await runRedrive();
    expect(report).to.include({ kept: 0, events: 3, missingFromHistory: 0 });
    expect(report.redriven).to.be.at.least(1);
    for (const c of [a, b]) {
      await c.waitFor(() => c.ofType('event').length >= 3, 5000, 'redriven events');
      expect(c.ofType('event').map((e) => [e.seq, (e.data as { i: number }).i])).to.deep.equal([[1, 1], [2, 2], [3, 3]]);
    }
    expect(await runRedrive()).to.include({ messages: 0 });
  });
});
