import { expect } from 'chai';
import { PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { DELIVERY_METRICS, METRICS_SERVICE } from '../../../lib/metrics';
import { startTestStack, type LocalStack } from '../../support/stack';
import { waitFor } from '../../support/wait';
import { TestClient } from './support/client';
import { postJson } from './support/http';

/**
 * Delivery metrics end to end: a publish through the local HTTP API, fan-out by the stack's own
 * stream poller over the API Gateway emulator, and the CloudWatch EMF lines the handlers write
 * (parsed as CloudWatch Logs would: `_aws.CloudWatchMetrics` names the metrics, the values are
 * top-level fields).
 */

interface Emf {
  _aws: { Timestamp: number; CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[] };
  [key: string]: unknown;
}

/** Every value of every metric across the lines, by metric name. */
function valuesByMetric(lines: readonly string[]): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const line of lines) {
    const doc = JSON.parse(line) as Emf;
    for (const directive of doc._aws.CloudWatchMetrics) {
      for (const m of directive.Metrics) {
        const v = doc[m.Name];
        const list = out.get(m.Name) ?? [];
        list.push(...(Array.isArray(v) ? (v as number[]) : [v as number]));
        out.set(m.Name, list);
      }
    }
  }
  return out;
}

const sum = (values: readonly number[] | undefined) => (values ?? []).reduce((a, b) => a + b, 0);

describe('delivery metrics (EMF)', function () {
  this.timeout(30_000);
  let stack: LocalStack;
  const emf: string[] = [];
  const clients: TestClient[] = [];

  before(async () => {
    stack = await startTestStack({ emf: (line) => emf.push(line) });
  });
  after(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await stack?.stop();
  });

  it('a fan-out writes EMF lines counting its record, deliveries, pruned, failed and throttled connections, and one latency per delivery', async () => {
    const topic = 'metrics:1';
    const good = await Promise.all(['m1', 'm2', 'm3'].map((u) => TestClient.connect(`${stack.endpoints.websocketUrl}?userId=${u}`)));
    const throttled = await TestClient.connect(`${stack.endpoints.websocketUrl}?userId=m-throttled`);
    clients.push(...good, throttled);
    for (const c of [...good, throttled]) await c.request({ action: 'subscribe', topic }, 'snapshot');
    const r = await stack.clients.doc.send(
      new QueryCommand({ TableName: stack.tables.connections, IndexName: 'byUser', KeyConditionExpression: 'userId = :u', ExpressionAttributeValues: { ':u': 'm-throttled' } }),
    );
    const throttledId = String(r.Items![0].connectionId);
    // Every PostToConnection to it answers 429, until its retries run out.
    const faults = await fetch(`${stack.endpoints.managementUrl}/_emulator/faults`, { method: 'PUT', body: JSON.stringify({ connections: { [throttledId]: 429 } }) });
    expect(faults.status).to.equal(200);
    // A subscription whose socket no longer exists: the management API answers 410.
    await stack.clients.doc.send(
      new PutCommand({ TableName: stack.tables.subscriptions, Item: { topic, connectionId: 'GoneConnAAAAAAA=', expiresAt: Math.floor(Date.now() / 1000) + 3600 } }),
    );
    emf.length = 0;

    const published = await postJson(`${stack.endpoints.httpUrl}/publish`, { topic, data: { v: 1 } });
    expect(published.status).to.equal(202);
    await waitFor(() => valuesByMetric(emf).has(DELIVERY_METRICS.records), 15_000, 'the fan-out batch metrics');

    const m = valuesByMetric(emf);
    expect(sum(m.get(DELIVERY_METRICS.published)), 'published').to.equal(1);
    expect(sum(m.get(DELIVERY_METRICS.records)), 'records').to.equal(1);
    expect(sum(m.get(DELIVERY_METRICS.deliveries)), 'deliveries').to.equal(3);
    expect(sum(m.get(DELIVERY_METRICS.gone)), 'gone').to.equal(1);
    expect(sum(m.get(DELIVERY_METRICS.failed)), 'failed').to.equal(1);
    expect(sum(m.get(DELIVERY_METRICS.throttled)), 'throttled').to.equal(1);
    expect(sum(m.get(DELIVERY_METRICS.resyncs)), 'resyncs').to.equal(1);
    const latencies = m.get(DELIVERY_METRICS.latency) ?? [];
    expect(latencies, 'one latency per delivery').to.have.length(3);
    for (const l of latencies) expect(l).to.be.within(0, 15_000);
    for (const c of good) await c.waitFor((f) => f.some((x) => x.type === 'event' && x.topic === topic), 5000, 'the event');

    for (const line of emf) {
      const doc = JSON.parse(line) as Emf;
      const d = doc._aws.CloudWatchMetrics[0]!;
      expect(d.Namespace).to.equal('RealtimeGateway/local');
      expect(d.Dimensions).to.deep.equal([['service']]);
      expect(doc.service).to.equal(METRICS_SERVICE);
      for (const metric of d.Metrics) expect(metric.Unit).to.equal(metric.Name === DELIVERY_METRICS.latency ? 'Milliseconds' : 'Count');
    }
    stack.websocket.faults.clear();
  });

  it('a publish to a user counts its deliveries and the pruned connections in its own EMF line', async () => {
    const user = 'm-direct';
    const live = await TestClient.connect(`${stack.endpoints.websocketUrl}?userId=${user}`);
    clients.push(live);
    // A connection row of the same user whose socket no longer exists: the management API answers 410.
    await stack.clients.doc.send(
      new PutCommand({ TableName: stack.tables.connections, Item: { connectionId: 'GoneDirectAAAAA=', userId: user, connectedAt: Date.now(), lastSeen: Date.now(), expiresAt: Math.floor(Date.now() / 1000) + 3600 } }),
    );
    emf.length = 0;

    const sent = await postJson(`${stack.endpoints.httpUrl}/publish`, { userId: user, data: { note: 1 } });
    expect(sent.status).to.equal(200);
    expect(sent.body).to.deep.include({ connections: 2, reached: 1 });
    await live.waitFor((f) => f.some((x) => x.type === 'message'), 5000, 'the message');

    // Written before the HTTP answer (the handler flushes when it returns): no wait needed.
    const m = valuesByMetric(emf);
    expect(sum(m.get(DELIVERY_METRICS.deliveries)), 'deliveries').to.equal(1);
    expect(sum(m.get(DELIVERY_METRICS.gone)), 'gone').to.equal(1);
    expect(sum(m.get(DELIVERY_METRICS.failed)), 'failed').to.equal(0);
    expect(m.has(DELIVERY_METRICS.published), 'no topic was written').to.equal(false);
    expect(m.has(DELIVERY_METRICS.records), 'no fan-out ran').to.equal(false);
  });

  it('a publish to a user whose connection stays throttled counts it failed and throttled', async () => {
    const user = 'm-direct-throttled';
    const c = await TestClient.connect(`${stack.endpoints.websocketUrl}?userId=${user}`);
    clients.push(c);
    const r = await stack.clients.doc.send(
      new QueryCommand({ TableName: stack.tables.connections, IndexName: 'byUser', KeyConditionExpression: 'userId = :u', ExpressionAttributeValues: { ':u': user } }),
    );
    const faults = await fetch(`${stack.endpoints.managementUrl}/_emulator/faults`, { method: 'PUT', body: JSON.stringify({ connections: { [String(r.Items![0].connectionId)]: 429 } }) });
    expect(faults.status).to.equal(200);
    emf.length = 0;
    try {
      const sent = await postJson(`${stack.endpoints.httpUrl}/publish`, { userId: user, data: { note: 2 } });
      expect(sent.body).to.deep.include({ connections: 1, reached: 0 });
    } finally {
      stack.websocket.faults.clear();
    }
    const m = valuesByMetric(emf);
    expect(sum(m.get(DELIVERY_METRICS.deliveries)), 'deliveries').to.equal(0);
    expect(sum(m.get(DELIVERY_METRICS.failed)), 'failed').to.equal(1);
    expect(sum(m.get(DELIVERY_METRICS.throttled)), 'throttled').to.equal(1);
  });
});
