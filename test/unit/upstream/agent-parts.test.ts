import { expect } from 'chai';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadAgentOptions, resolveAgentOptions, DEFAULTS } from '../../../ec2-agent/config';
import { decodeFrame, sourceTimestamp, type DecodedFrame } from '../../../ec2-agent/frames';
import { Metrics } from '../../../ec2-agent/metrics';
import { Persister } from '../../../ec2-agent/persister';
import { HttpSink, type SinkRecord } from '../../../ec2-agent/sink';
import { ConfigError } from '../../../lib/errors';
import type { ItemStore } from '../../../lib/stores/items';
import { createLogger, silentLogger } from '../../../lib/log';
import { waitFor } from '../../support/wait';

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
  it('audits ownership every minute by default and reads AGENT_AUDIT_MS', () => {
    expect(loadAgentOptions({}).auditMs).to.equal(60_000);
    expect(loadAgentOptions({ AGENT_AUDIT_MS: '15000' }).auditMs).to.equal(15_000);
    expect(() => loadAgentOptions({ AGENT_AUDIT_MS: 'hourly' })).to.throw(ConfigError, /AGENT_AUDIT_MS/);
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
  /** Requests left unanswered (a sink that hangs), answered by the test or dropped by the client. */
  let hang: boolean;
  let hung: http.ServerResponse[];
  before(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        auth.push(req.headers.authorization);
        if (hang) return void hung.push(res);
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
    hang = false;
    hung = [];
  });
  /** Every sink a test made: a started one runs a timer that would keep mocha from exiting. */
  const sinks: HttpSink[] = [];
  const newSink = (o: ConstructorParameters<typeof HttpSink>[0]) => {
    const sink = new HttpSink(o);
    sinks.push(sink);
    return sink;
  };
  // Stopped and ended even when a test failed: server.close() waits for hanging requests.
  afterEach(async () => {
    for (const sink of sinks.splice(0)) await sink.stop(20);
    for (const res of hung) res.destroy();
  });
  after(() => new Promise<void>((r) => server.close(() => r())));
  /** stop()'s grace for tests that are not about it: three loopback POSTs, however loaded the machine. */
  const GRACE_MS = 10_000;

  const rec = (i: number): SinkRecord => ({ socketId: 's', platformID: 'p', internalID: 'i', topic: 't', ts: i, receivedAt: i, data: { i } });

  it('posts JSON array batches of at most batchSize, in order, with the Authorization header', async () => {
    const metrics = new Metrics();
    const sink = newSink({ url, authorization: 'Bearer s3cret', batchSize: 3, flushMs: 10_000, retries: 2, bufferSize: 100, backoffBaseMs: 5, metrics, log: silentLogger });
    for (let i = 0; i < 7; i++) sink.enqueue(rec(i));
    await sink.stop(GRACE_MS);
    expect(batches.map((b) => b.length)).to.deep.equal([3, 3, 1]);
    expect(batches.flat().map((r) => r.ts)).to.deep.equal([0, 1, 2, 3, 4, 5, 6]);
    expect(auth.every((a) => a === 'Bearer s3cret')).to.equal(true);
    expect(metrics.get('sinkPosted')).to.equal(7);
  });

  it('retries 5xx with backoff and delivers', async () => {
    failNext = 2;
    const metrics = new Metrics();
    const sink = newSink({ url, batchSize: 10, flushMs: 10_000, retries: 3, bufferSize: 100, backoffBaseMs: 5, metrics, log: silentLogger });
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
    const sink = newSink({ url, authorization: 'Basic c2VjcmV0', batchSize: 10, flushMs: 10_000, retries: 1, bufferSize: 100, backoffBaseMs: 5, metrics, log: createLogger({ write: (l) => lines.push(l) }) });
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
    const sink = newSink({ url, batchSize: 100, flushMs: 20, retries: 0, bufferSize: 1000, backoffBaseMs: 5, metrics, log: silentLogger });
    // Counts the timer's flushes, so the test knows (rather than hopes, after a pause) that two
    // ticks found nothing to send before anything is enqueued.
    let ticks = 0;
    const flush = sink.flush.bind(sink);
    sink.flush = () => (ticks++, flush());
    sink.start();
    await waitFor(() => ticks >= 2, 10_000, 'two timer ticks with nothing to send');
    for (let i = 0; i < 5; i++) sink.enqueue(rec(i)); // fewer than a batch: only the timer sends them
    await waitFor(() => metrics.get('sinkPosted') >= 5, 10_000, 'the timer to post the five records');
    await sink.stop(GRACE_MS);
    expect(metrics.get('sinkPosted')).to.equal(5);
    expect(batches.flat().map((r) => r.ts)).to.deep.equal([0, 1, 2, 3, 4]);
  });

  // Review 2 finding 6: every record is either posted or counted as dropped.
  it('counts what stop() could not send (the batch in flight and the buffer) and what is enqueued after it', async () => {
    hang = true;
    const metrics = new Metrics();
    const sink = newSink({ url, batchSize: 2, flushMs: 10_000, retries: 3, bufferSize: 100, backoffBaseMs: 5, metrics, log: silentLogger });
    for (let i = 0; i < 5; i++) sink.enqueue(rec(i)); // a full batch goes out at once and hangs; three wait
    await waitFor(() => hung.length === 1, 2000, 'the first batch to reach the sink');
    expect(sink.buffered).to.equal(3);
    await sink.stop(20);
    expect(sink.buffered).to.equal(0);
    expect(metrics.get('sinkDropped')).to.equal(5);
    sink.enqueue(rec(5));
    sink.enqueue(rec(6));
    expect(sink.buffered).to.equal(0);
    expect([metrics.get('sinkPosted'), metrics.get('sinkDropped')]).to.deep.equal([0, 7]);
  });

  it('bounds its buffer, dropping the oldest and counting them', async () => {
    const metrics = new Metrics();
    const sink = newSink({ url, batchSize: 1000, flushMs: 10_000, retries: 0, bufferSize: 5, backoffBaseMs: 5, metrics, log: silentLogger });
    for (let i = 0; i < 8; i++) sink.enqueue(rec(i));
    expect(sink.buffered).to.equal(5);
    expect(metrics.get('sinkDropped')).to.equal(3);
    await sink.stop(GRACE_MS);
    expect(batches.flat().map((r) => r.ts)).to.deep.equal([3, 4, 5, 6, 7]);
  });
});

// Review 2 finding 5: a socket lost to another owner drops its waiting writes instead of draining them.
describe('agent: persister discard', () => {
  function persister(write: (data: unknown) => Promise<{ seq: number }>) {
    const writes: unknown[] = [];
    const dropped: string[] = [];
    const items = { write: (_t: string, data: unknown) => (writes.push(data), write(data)) } as unknown as ItemStore;
    const p = new Persister({
      items, topic: 't', maxEventBytes: 128 * 1024, queueSize: 100, retries: 5, backoffBaseMs: 10_000,
      onPersisted: () => {}, onDropped: (r) => dropped.push(r), onError: () => {}, log: silentLogger,
    });
    return { p, writes, dropped };
  }
  const frame = (i: number): DecodedFrame => ({ data: { i }, ts: i, bytes: 7 });

  it('drops and counts the waiting messages, lets the one in flight finish, and writes nothing more', async () => {
    let finish!: () => void;
    const { p, writes, dropped } = persister(() => new Promise((r) => (finish = () => r({ seq: 1 }))));
    for (let i = 0; i < 4; i++) p.enqueue(frame(i));
    expect(writes).to.have.length(1);
    const done = p.discard('lease lost');
    expect(dropped).to.deep.equal(['lease lost', 'lease lost', 'lease lost']);
    finish();
    await done;
    p.enqueue(frame(9));
    expect(writes).to.deep.equal([{ i: 0 }]);
    expect(p.pending).to.equal(0);
  });

  it('a write waiting in its retry backoff is not tried again', async () => {
    const { p, writes, dropped } = persister(async () => {
      throw new Error('ProvisionedThroughputExceededException');
    });
    p.enqueue(frame(0));
    await waitFor(() => writes.length === 1, 1000, 'the first attempt');
    await p.discard('lease lost'); // the backoff (≥ 5 s here) is cut short by the abort
    expect(writes).to.have.length(1);
    expect(dropped).to.have.length(1);
    expect(dropped[0]).to.match(/^persist failed/);
  });
});
