import { expect } from 'chai';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { backoffDelay } from '../../../ec2-agent/backoff';
import { loadAgentOptions, resolveAgentOptions, DEFAULTS } from '../../../ec2-agent/config';
import { decodeFrame, sourceTimestamp } from '../../../ec2-agent/frames';
import { Metrics } from '../../../ec2-agent/metrics';
import { HttpSink, type SinkRecord } from '../../../ec2-agent/sink';
import { ConfigError } from '../../../lib/errors';
import { createLogger, silentLogger } from '../../../lib/log';

describe('agent: frame decoding', () => {
  it('parses JSON objects and uses their timestamp as the source time', () => {
    const f = decodeFrame(Buffer.from('{"timestamp":1731801715542,"voltage":136}'), false, 5);
    expect(f.data).to.deep.equal({ timestamp: 1731801715542, voltage: 136 });
    expect(f.ts).to.equal(1731801715542);
  });
  it('keeps non-JSON text as a string and stamps it with the receive time', () => {
    expect(decodeFrame(Buffer.from('hello {'), false, 77)).to.include({ data: 'hello {', ts: 77 });
    expect(decodeFrame(Buffer.from('{broken'), false, 77).data).to.equal('{broken');
    expect(decodeFrame(Buffer.from('42'), false, 77).data).to.equal('42');
  });
  it('wraps binary frames as base64', () => {
    const f = decodeFrame(Buffer.from([0, 1, 255]), true, 9);
    expect(f.data).to.deep.equal({ encoding: 'base64', data: 'AAH/' });
    expect(f.ts).to.equal(9);
  });
  it('scales epoch seconds and parses ISO timestamps', () => {
    expect(sourceTimestamp({ timestamp: 1731801715 })).to.equal(1731801715000);
    expect(sourceTimestamp({ timestamp: '2024-11-17T00:01:55.542Z' })).to.equal(Date.parse('2024-11-17T00:01:55.542Z'));
    expect(sourceTimestamp({ timestamp: 'soon' })).to.equal(undefined);
    expect(sourceTimestamp([1])).to.equal(undefined);
  });
});

describe('agent: backoff', () => {
  it('grows exponentially, is capped, and jitters within [d/2, d]', () => {
    expect(backoffDelay(0, 100, 10_000, () => 0)).to.equal(50);
    expect(backoffDelay(0, 100, 10_000, () => 1)).to.equal(100);
    expect(backoffDelay(3, 100, 10_000, () => 0)).to.equal(400);
    expect(backoffDelay(30, 100, 10_000, () => 1)).to.equal(10_000);
    const spread = new Set(Array.from({ length: 20 }, () => backoffDelay(4, 100, 10_000)));
    expect(spread.size).to.be.greaterThan(1);
  });
});

describe('agent: config', () => {
  it('has the seed defaults (health each minute) and reads AGENT_* overrides', () => {
    const o = loadAgentOptions({});
    expect(o.healthIntervalMs).to.equal(60_000);
    expect(o.leaseMs).to.equal(DEFAULTS.leaseMs);
    expect(loadAgentOptions({ AGENT_CAPACITY: '3', AGENT_ID: 'a1' })).to.include({ capacity: 3, agentId: 'a1' });
  });
  it('refuses a renew period that is not under a third of the lease, naming the key', () => {
    expect(() => loadAgentOptions({ AGENT_LEASE_MS: '3000', AGENT_RENEW_MS: '1000' })).to.throw(ConfigError, /AGENT_RENEW_MS/);
    expect(() => loadAgentOptions({ AGENT_CAPACITY: 'lots' })).to.throw(ConfigError, /AGENT_CAPACITY/);
  });
  it('lets options override the environment', () => {
    expect(resolveAgentOptions({ leaseMs: 900, renewMs: 200 }, { AGENT_LEASE_MS: '5000' })).to.include({ leaseMs: 900, renewMs: 200 });
  });
});

describe('agent: HTTP sink', () => {
  let server: http.Server;
  let url: string;
  let batches: SinkRecord[][];
  let auth: (string | undefined)[];
  let failNext: number;
  let status: number;
  before(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        auth.push(req.headers.authorization);
        if (failNext > 0) {
          failNext--;
          res.statusCode = status;
          return res.end();
        }
        batches.push(JSON.parse(body));
        res.end('ok');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/ingest`;
  });
  beforeEach(() => {
    batches = [];
    auth = [];
    failNext = 0;
    status = 503;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  const rec = (i: number): SinkRecord => ({ socketId: 's', platformID: 'p', internalID: 'i', topic: 't', ts: i, receivedAt: i, data: { i } });

  it('posts JSON array batches of at most batchSize, in order, with the Authorization header', async () => {
    const metrics = new Metrics();
    const sink = new HttpSink({ url, authorization: 'Bearer s3cret', batchSize: 3, flushMs: 10_000, retries: 2, bufferSize: 100, backoffBaseMs: 5, metrics, log: silentLogger });
    for (let i = 0; i < 7; i++) sink.enqueue(rec(i));
    await sink.stop();
    expect(batches.map((b) => b.length)).to.deep.equal([3, 3, 1]);
    expect(batches.flat().map((r) => r.ts)).to.deep.equal([0, 1, 2, 3, 4, 5, 6]);
    expect(auth.every((a) => a === 'Bearer s3cret')).to.equal(true);
    expect(metrics.get('sinkPosted')).to.equal(7);
  });

  it('retries 5xx with backoff and delivers', async () => {
    failNext = 2;
    const metrics = new Metrics();
    const sink = new HttpSink({ url, batchSize: 10, flushMs: 10_000, retries: 3, bufferSize: 100, backoffBaseMs: 5, metrics, log: silentLogger });
    sink.enqueue(rec(1));
    await sink.flush();
    expect(batches).to.have.length(1);
    expect(metrics.get('sinkErrors')).to.equal(2);
    await sink.stop();
  });

  it('drops (and counts) a batch after its retries, and never logs the Authorization value', async () => {
    failNext = 100;
    status = 500;
    const lines: string[] = [];
    const metrics = new Metrics();
    const sink = new HttpSink({ url, authorization: 'Basic c2VjcmV0', batchSize: 10, flushMs: 10_000, retries: 1, bufferSize: 100, backoffBaseMs: 5, metrics, log: createLogger({ write: (l) => lines.push(l) }) });
    sink.enqueue(rec(1));
    sink.enqueue(rec(2));
    await sink.flush();
    expect(metrics.get('sinkDropped')).to.equal(2);
    expect(lines.join('\n')).to.include('sink batch dropped').and.not.include('c2VjcmV0');
    failNext = 0;
    await sink.stop();
  });

  it('keeps posting after a timer tick found the buffer empty', async () => {
    const metrics = new Metrics();
    const sink = new HttpSink({ url, batchSize: 100, flushMs: 20, retries: 0, bufferSize: 1000, backoffBaseMs: 5, metrics, log: silentLogger });
    sink.start();
    await new Promise((r) => setTimeout(r, 60)); // ticks with nothing to send
    for (let i = 0; i < 5; i++) sink.enqueue(rec(i)); // fewer than a batch: only the timer sends them
    const deadline = Date.now() + 2000;
    while (metrics.get('sinkPosted') < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await sink.stop();
    expect(metrics.get('sinkPosted')).to.equal(5);
    expect(batches.flat().map((r) => r.ts)).to.deep.equal([0, 1, 2, 3, 4]);
  });

  it('bounds its buffer, dropping the oldest and counting them', async () => {
    const metrics = new Metrics();
    const sink = new HttpSink({ url, batchSize: 1000, flushMs: 10_000, retries: 0, bufferSize: 5, backoffBaseMs: 5, metrics, log: silentLogger });
    for (let i = 0; i < 8; i++) sink.enqueue(rec(i));
    expect(sink.buffered).to.equal(5);
    expect(metrics.get('sinkDropped')).to.equal(3);
    await sink.stop();
    expect(batches.flat().map((r) => r.ts)).to.deep.equal([3, 4, 5, 6, 7]);
  });
});
