import { expect } from 'chai';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { datumsSince, startMetricsPublisher } from '../../../ec2-agent/metrics-publisher';
import { createLogger } from '../../../lib/log';
import { LOCAL_CREDENTIALS } from '../../support/env';

/**
 * The real CloudWatch SDK client against a strict loopback stand-in of the CloudWatch API
 * (AWS JSON 1.0): anything but PutMetricData is refused, so the test sees exactly what the
 * agent would send to AWS.
 */
describe('agent metrics publisher (CloudWatch PutMetricData)', () => {
  let server: http.Server;
  let endpoint: string;
  const calls: { target: string; body: any }[] = [];
  let failNext = false;
  before(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const target = String(req.headers['x-amz-target'] ?? '');
        if (failNext) {
          failNext = false;
          res.writeHead(500, { 'content-type': 'application/x-amz-json-1.0' });
          return res.end(JSON.stringify({ __type: 'InternalServiceFault', message: 'injected' }));
        }
        if (!target.endsWith('.PutMetricData')) {
          res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0' });
          return res.end(JSON.stringify({ __type: 'InvalidAction', message: `unexpected ${target}` }));
        }
        calls.push({ target, body: JSON.parse(body) });
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
        res.end('{}');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  it('sends counter increases and gauge values, and carries a failed period into the next', async () => {
    const client = new CloudWatchClient({ endpoint, region: 'us-east-1', credentials: LOCAL_CREDENTIALS, maxAttempts: 1 });
    const values = { openSockets: 5, socketsFailed: 1, messagesIn: 100, healthChecks: 7 };
    const pub = startMetricsPublisher({ client, namespace: 'RealtimeGateway/dev', read: () => ({ ...values }), log: createLogger({ write: () => {} }), clock: () => 1_700_000_000_000 });
    await pub.flush();
    values.socketsFailed = 3;
    values.messagesIn = 150;
    values.openSockets = 4;
    failNext = true;
    await pub.flush(); // refused: nothing recorded as published
    values.messagesIn = 160;
    await pub.stop();
    client.destroy();

    expect(calls).to.have.length(2);
    expect(calls[0].body.Namespace).to.equal('RealtimeGateway/dev');
    const byName = (c: { body: any }) => Object.fromEntries(c.body.MetricData.map((d: any) => [d.MetricName, d.Value]));
    expect(byName(calls[0])).to.deep.equal({ openSockets: 5, socketsFailed: 1, messagesIn: 100 });
    // Only the published set goes out (healthChecks stays local); the failed publish's increase
    // is not lost: 1 → 3 failures, 100 → 160 messages.
    expect(byName(calls[1])).to.deep.equal({ openSockets: 4, socketsFailed: 2, messagesIn: 60 });
    expect(calls[1].body.MetricData[0].Unit).to.equal('Count');
  });

  it('never reports a negative increase (a restarted agent starts from zero)', () => {
    const d = datumsSince({ messagesIn: 50 }, { messagesIn: 10 }, new Date(0));
    expect(d[0].Value).to.equal(0);
  });
});
