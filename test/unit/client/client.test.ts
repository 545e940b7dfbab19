import { expect } from 'chai';
import { connect, type RealtimeClient } from '../../../client/client';
import { RealtimeError } from '../../../client/errors';
import type { ConnectOptions, StateChange } from '../../../client/types';
import { FakeSocket, ManualTimers, flush } from './fakes';

/**
 * The connection state machine against a scripted socket and hand-driven time. Behaviour against
 * the real server is in test/integration/client/.
 */
describe('client connection state machine (fake socket, manual timers)', () => {
  let timers: ManualTimers;
  let client: RealtimeClient | undefined;
  const open = (opts: ConnectOptions = {}) => {
    client = connect('ws://127.0.0.1:1/ws', { WebSocket: FakeSocket, timers, random: () => 0.5, ...opts });
    return client;
  };
  /** Subscribes `t`, takes a snapshot at seq 2, drops the socket (1006) and opens the reconnected one. */
  const reconnectedAfterSnapshot = async (c: RealtimeClient, onSeq: (seq: number) => void = () => {}) => {
    c.subscribe('t', (_d, i) => onSeq(i.seq), (_d, i) => onSeq(i.seq));
    await flush();
    FakeSocket.last().open();
    FakeSocket.last().receive({ type: 'snapshot', topic: 't', seq: 2, data: null });
    FakeSocket.last().drop(1006);
    timers.advance(60_000); // reconnect
    await flush();
    const s = FakeSocket.last();
    s.open();
    return s;
  };
  beforeEach(() => {
    FakeSocket.reset();
    timers = new ManualTimers();
  });
  afterEach(() => {
    client?.close();
    client = undefined;
    expect(timers.pending, 'timers left after close()').to.equal(0);
  });

  it('connects with ?userId= and subscribes the connect-time topics once open', async () => {
    const c = open({ userId: 'alice', topics: ['a', 'b'], params: { vehicleId: '3' } });
    await flush();
    const s = FakeSocket.last();
    const u = new URL(s.url);
    expect(u.searchParams.get('userId')).to.equal('alice');
    expect(u.searchParams.get('vehicleId')).to.equal('3');
    expect(s.protocols).to.equal(undefined);
    expect(c.state).to.equal('connecting');
    s.open();
    expect(c.state).to.equal('open');
    expect(s.sentActions()).to.deep.equal(['subscribe a', 'subscribe b']);
  });

  it('offers the token as Sec-WebSocket-Protocol ["bearer", token], refreshed on every reconnect', async () => {
    let n = 0;
    open({ token: async () => `tok${++n}` });
    await flush();
    expect(FakeSocket.last().protocols).to.deep.equal(['bearer', 'tok1']);
    FakeSocket.last().open('bearer');
    FakeSocket.last().drop(1001);
    timers.advance(1000);
    await flush();
    expect(FakeSocket.instances).to.have.length(2);
    expect(FakeSocket.last().protocols).to.deep.equal(['bearer', 'tok2']);
  });

  it('tokenIn "query" sends ?token= instead; a token a subprotocol cannot carry is refused with token_failed', async () => {
    open({ token: 'a.b.c', tokenIn: 'query' });
    await flush();
    expect(new URL(FakeSocket.last().url).searchParams.get('token')).to.equal('a.b.c');
    client!.close();
    FakeSocket.reset();
    const errors: RealtimeError[] = [];
    const c = open({ token: 'has space=' });
    c.on('error', (e) => errors.push(e));
    await flush();
    expect(FakeSocket.instances).to.have.length(0);
    expect(errors.map((e) => e.code)).to.include('token_failed');
    expect(c.state).to.equal('reconnecting');
  });

  it('delivers snapshot then events, and after a drop resubscribes with sinceSeq = last seq delivered', async () => {
    const c = open({ userId: 'u', backoff: { initialMs: 1000 } });
    const got: string[] = [];
    c.subscribe('t', (d, i) => got.push(`S${i.seq}:${JSON.stringify(d)}`), (_d, i) => got.push(`E${i.seq}/${i.latencyMs}`));
    const states: StateChange[] = [];
    c.on('state', (s) => states.push(s));
    await flush();
    const s1 = FakeSocket.last();
    s1.open();
    s1.receive({ type: 'snapshot', topic: 't', seq: 3, data: { v: 1 }, ts: 5 });
    s1.receive({ type: 'event', topic: 't', seq: 4, data: {}, ts: 6, latencyMs: 7 });
    s1.drop(1006);
    expect(c.state).to.equal('reconnecting');
    // Full jitter with random()=0.5 over a 1000 ms first window.
    expect(states.at(-1)).to.include({ state: 'reconnecting', attempt: 1, delayMs: 500 });
    timers.advance(499);
    await flush();
    expect(FakeSocket.instances).to.have.length(1);
    timers.advance(1);
    await flush();
    const s2 = FakeSocket.last();
    expect(s2).to.not.equal(s1);
    s2.open();
    expect(s2.sentActions()).to.deep.equal(['subscribe t since 4']);
    s2.receive({ type: 'event', topic: 't', seq: 4, data: {}, ts: 6 }); // duplicate from the replay
    s2.receive({ type: 'event', topic: 't', seq: 5, data: {}, ts: 8, latencyMs: 1 });
    expect(got).to.deep.equal(['S3:{"v":1}', 'E4/7', 'E5/1']);
    expect(c.duplicates('t')).to.equal(1);
  });

  it('widens the backoff window on consecutive failures and resets it after a successful open', async () => {
    const c = open({ userId: 'u', backoff: { initialMs: 100, maxMs: 1000 }, random: () => 0.999 });
    const delays: number[] = [];
    c.on('state', (s) => s.delayMs !== undefined && delays.push(s.delayMs));
    await flush();
    for (let i = 0; i < 6; i++) {
      FakeSocket.last().drop(1006); // never opened
      timers.advance(2000);
      await flush();
    }
    expect(delays).to.deep.equal([99, 199, 399, 799, 999, 999]);
    FakeSocket.last().open();
    FakeSocket.last().drop(1001);
    expect(delays.at(-1)).to.equal(99);
  });

  it('gives up after maxAttempts consecutive failures', async () => {
    const c = open({ userId: 'u', maxAttempts: 2 });
    const errors: string[] = [];
    c.on('error', (e) => errors.push(e.code));
    await flush();
    FakeSocket.last().drop();
    timers.advance(60_000);
    await flush();
    FakeSocket.last().drop();
    expect(c.state).to.equal('closed');
    expect(errors).to.include('closed');
    await c.whenOpen().then(
      () => expect.fail('should reject'),
      (e) => expect(e.code).to.equal('closed'),
    );
  });

  it('re-requests a gap that stays open past gapTimeoutMs with subscribe sinceSeq', async () => {
    const c = open({ userId: 'u', gapTimeoutMs: 300 });
    const got: number[] = [];
    c.subscribe('t', (_d, i) => got.push(i.seq), (_d, i) => got.push(i.seq));
    await flush();
    const s = FakeSocket.last();
    s.open();
    s.receive({ type: 'snapshot', topic: 't', seq: 1, data: null });
    s.receive({ type: 'event', topic: 't', seq: 3, data: null });
    timers.advance(299);
    expect(s.sentActions()).to.deep.equal(['subscribe t']);
    timers.advance(1);
    expect(s.sentActions()).to.deep.equal(['subscribe t', 'subscribe t since 1']);
    s.receive({ type: 'event', topic: 't', seq: 2, data: null });
    expect(got).to.deep.equal([1, 2, 3]);
    timers.advance(1000);
    expect(s.sent).to.have.length(2); // gap closed: no more resyncs
  });

  it('delivers a truncated event (item over the message limit) with data null and truncated: true; the seq counts, no resync', async () => {
    const c = open({ userId: 'u', gapTimeoutMs: 300 });
    const got: [string, unknown, Record<string, unknown>][] = [];
    c.subscribe('t', (d, i) => got.push(['S', d, { ...i }]), (d, i) => got.push(['E', d, { ...i }]));
    await flush();
    const s = FakeSocket.last();
    s.open();
    s.receive({ type: 'snapshot', topic: 't', seq: 4, data: null, ts: 1, truncated: true });
    // A server that left `data` in still yields null: the flag decides.
    s.receive({ type: 'event', topic: 't', seq: 5, data: 'ignored', ts: 2, latencyMs: 3, truncated: true });
    s.receive({ type: 'event', topic: 't', seq: 6, data: { v: 6 }, ts: 3, latencyMs: 1 });
    expect(got.map(([k, d, i]) => [k, i.seq, d, i.truncated])).to.deep.equal([
      ['S', 4, null, true],
      ['E', 5, null, true],
      ['E', 6, { v: 6 }, undefined],
    ]);
    expect(got[1][2]).to.include({ latencyMs: 3, ts: 2 });
    expect(c.lastSeq('t')).to.equal(6);
    timers.advance(1000);
    expect(s.sentActions()).to.deep.equal(['subscribe t']); // no gap, so no resync
  });

  it('pings every pingIntervalMs and replaces a socket that stops answering', async () => {
    const c = open({ userId: 'u', pingIntervalMs: 1000, pongTimeoutMs: 200 });
    const rtts: number[] = [];
    c.on('pong', (ms) => rtts.push(ms));
    await flush();
    const s = FakeSocket.last();
    s.open();
    timers.advance(1000);
    expect(s.sentActions()).to.deep.equal(['ping']);
    timers.advance(50);
    s.receive({ type: 'pong', ts: 1 });
    expect(rtts).to.deep.equal([50]);
    timers.advance(950);
    expect(s.sentActions()).to.deep.equal(['ping', 'ping']);
    timers.advance(200); // no pong
    expect(s.closedWith).to.not.equal(undefined);
    expect(c.state).to.equal('reconnecting');
  });

  it('rotates before the maximum connection duration: new socket resubscribes, old one closes once confirmed, nothing lost or doubled', async () => {
    const c = open({ userId: 'u', rotateAfterMs: 10_000, rotateJitterMs: 2000, pingIntervalMs: 60_000 });
    const got: string[] = [];
    const rotated: number[] = [];
    c.on('rotated', () => rotated.push(1));
    c.subscribe('t', (_d, i) => got.push(`S${i.seq}`), (_d, i) => got.push(`E${i.seq}`));
    await flush();
    const old = FakeSocket.last();
    old.open();
    old.receive({ type: 'snapshot', topic: 't', seq: 1, data: null });
    // random()=0.5 → rotation at 10 000 − 1000 ms.
    timers.advance(8999);
    await flush();
    expect(FakeSocket.instances).to.have.length(1);
    timers.advance(1);
    await flush();
    const fresh = FakeSocket.last();
    expect(fresh).to.not.equal(old);
    old.receive({ type: 'event', topic: 't', seq: 2, data: null }); // old keeps delivering meanwhile
    fresh.open();
    expect(c.state).to.equal('open');
    expect(fresh.sentActions()).to.deep.equal(['subscribe t since 2']);
    expect(old.closedWith).to.equal(undefined);
    old.receive({ type: 'event', topic: 't', seq: 3, data: null });
    fresh.receive({ type: 'event', topic: 't', seq: 3, data: null }); // confirmation (and a duplicate)
    expect(old.closedWith?.code).to.equal(1000);
    expect(rotated).to.have.length(1);
    fresh.receive({ type: 'event', topic: 't', seq: 4, data: null });
    expect(got).to.deep.equal(['S1', 'E2', 'E3', 'E4']);
  });

  it('closes the old socket after rotateOverlapMs when the new one stays silent', async () => {
    const c = open({ userId: 'u', rotateAfterMs: 1000, rotateJitterMs: 0, rotateOverlapMs: 500 });
    c.subscribe('t');
    await flush();
    const old = FakeSocket.last();
    old.open();
    timers.advance(1000);
    await flush();
    FakeSocket.last().open();
    timers.advance(499);
    expect(old.closedWith).to.equal(undefined);
    timers.advance(1);
    expect(old.closedWith).to.not.equal(undefined);
  });

  it('reports server errors with their code to the topic and to the client', async () => {
    const c = open({ userId: 'u' });
    const topicErrs: string[] = [];
    const all: string[] = [];
    c.on('error', (e) => all.push(`${e.code}:${e.topic}`));
    c.subscribe('secret', undefined, undefined, { onError: (e) => topicErrs.push(e.code) });
    await flush();
    FakeSocket.last().open();
    FakeSocket.last().receive({ type: 'error', code: 'forbidden', message: 'no', topic: 'secret' });
    FakeSocket.last().receive('not json');
    expect(topicErrs).to.deep.equal(['forbidden']);
    expect(all).to.deep.equal(['forbidden:secret', 'protocol_error:undefined']);
  });

  it('sends a subscribe again when its answer is lost, with backoff, until the snapshot arrives', async () => {
    // random 0.5 → backoff delays of 250, 500, 1000 ms (windows 500, 1000, 2000).
    const c = open({ userId: 'u', subscribeTimeoutMs: 1000 });
    const snaps: number[] = [];
    const retries: string[] = [];
    c.on('error', (e) => retries.push(e.code));
    c.subscribe('quiet', (_d, i) => snaps.push(i.seq));
    await flush();
    const s = FakeSocket.last();
    s.open();
    expect(s.sentActions()).to.deep.equal(['subscribe quiet']);
    timers.advance(1000 + 249);
    expect(s.sentActions()).to.have.length(1);
    timers.advance(1);
    expect(s.sentActions()).to.deep.equal(['subscribe quiet', 'subscribe quiet']);
    timers.advance(1000 + 500);
    expect(s.sentActions()).to.have.length(3);
    s.receive({ type: 'snapshot', topic: 'quiet', seq: 4, data: 'x' });
    timers.advance(60_000);
    expect(s.sentActions()).to.have.length(3);
    expect(snaps).to.deep.equal([4]);
    expect(retries).to.deep.equal(['subscribe_retry', 'subscribe_retry']);
  });

  it('re-sends a lost resubscribe with sinceSeq, and a replay in progress keeps the wait alive', async () => {
    const c = open({ userId: 'u', subscribeTimeoutMs: 1000 });
    const got: number[] = [];
    const s = await reconnectedAfterSnapshot(c, (seq) => got.push(seq));
    expect(s.sentActions()).to.deep.equal(['subscribe t since 2']);
    timers.advance(1000 + 250);
    expect(s.sentActions()).to.deep.equal(['subscribe t since 2', 'subscribe t since 2']);
    // A long replay: each event restarts the wait, so no re-send while it progresses.
    for (let seq = 3; seq <= 6; seq++) {
      timers.advance(900);
      s.receive({ type: 'event', topic: 't', seq, data: null, replay: true });
    }
    s.receive({ type: 'subscribed', topic: 't', seq: 6, replayed: 4 });
    timers.advance(60_000);
    expect(s.sentActions()).to.have.length(2);
    expect(got).to.deep.equal([2, 3, 4, 5, 6]);
  });

  it('while a resubscribe is being answered, live events ahead of its replay do not trigger a second subscribe', async () => {
    const c = open({ userId: 'u', gapTimeoutMs: 300, subscribeTimeoutMs: 5000 });
    const got: number[] = [];
    const s = await reconnectedAfterSnapshot(c, (seq) => got.push(seq));
    expect(s.sentActions()).to.deep.equal(['subscribe t since 2']);
    // Live events overtake the replay (3..) in progress: a gap stays open for a while.
    s.receive({ type: 'event', topic: 't', seq: 9, data: null });
    for (let seq = 3; seq <= 8; seq++) {
      timers.advance(200);
      s.receive({ type: 'event', topic: 't', seq, data: null, replay: true });
    }
    s.receive({ type: 'subscribed', topic: 't', seq: 8, replayed: 6 });
    expect(s.sentActions(), 'the replay fills the gap; no second subscribe').to.deep.equal(['subscribe t since 2']);
    expect(got).to.deep.equal([2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('a resubscribe whose replay stalls part-way is re-requested after gapTimeoutMs', async () => {
    const c = open({ userId: 'u', gapTimeoutMs: 300, subscribeTimeoutMs: 5000 });
    const s = await reconnectedAfterSnapshot(c);
    s.receive({ type: 'event', topic: 't', seq: 3, data: null, replay: true });
    s.receive({ type: 'event', topic: 't', seq: 9, data: null });
    // The replay stops after seq 3 (failed, its error frame lost): no 5 s wait for the timeout.
    timers.advance(350);
    expect(s.sentActions()).to.deep.equal(['subscribe t since 2', 'subscribe t since 3']);
  });

  it('a gap left open after the resubscribe was answered is re-requested after gapTimeoutMs', async () => {
    const c = open({ userId: 'u', gapTimeoutMs: 300 });
    c.subscribe('t', () => {}, () => {});
    await flush();
    const s = FakeSocket.last();
    s.open();
    s.receive({ type: 'snapshot', topic: 't', seq: 1, data: null });
    s.receive({ type: 'event', topic: 't', seq: 3, data: null });
    timers.advance(300);
    expect(s.sentActions()).to.deep.equal(['subscribe t', 'subscribe t since 1']);
    // The answer says seq 1 is current (seq 2 not yet in history); the gap to 3 is still open.
    s.receive({ type: 'subscribed', topic: 't', seq: 1, replayed: 0 });
    timers.advance(300);
    expect(s.sentActions()).to.deep.equal(['subscribe t', 'subscribe t since 1', 'subscribe t since 1']);
  });

  it('re-sends a subscribe answered with a retryable error; a final error goes to the topic and stops', async () => {
    const c = open({ userId: 'u', subscribeTimeoutMs: 1000 });
    const topicErrs: string[] = [];
    c.subscribe('busy', () => {}, undefined, { onError: (e) => topicErrs.push(e.code) });
    c.subscribe('secret', () => {}, undefined, { onError: (e) => topicErrs.push(e.code) });
    await flush();
    const s = FakeSocket.last();
    s.open();
    s.receive({ type: 'error', code: 'internal_error', message: 'retry', topic: 'busy', action: 'subscribe' });
    s.receive({ type: 'error', code: 'forbidden', message: 'no', topic: 'secret', action: 'subscribe' });
    timers.advance(250);
    expect(s.sentActions()).to.deep.equal(['subscribe busy', 'subscribe secret', 'subscribe busy']);
    s.receive({ type: 'snapshot', topic: 'busy', seq: 0, data: null });
    timers.advance(60_000);
    expect(s.sentActions()).to.have.length(3);
    expect(topicErrs).to.deep.equal(['forbidden']);
  });

  it('replaces the socket when the server says not_connected; the new one resubscribes', async () => {
    const c = open({ userId: 'u' });
    c.subscribe('t', () => {});
    await flush();
    const first = FakeSocket.last();
    first.open();
    first.receive({ type: 'error', code: 'not_connected', message: 'gone', topic: 't' });
    expect(first.closedWith).to.not.equal(undefined);
    timers.advance(1000);
    await flush();
    const second = FakeSocket.last();
    expect(second).to.not.equal(first);
    second.open();
    expect(second.sentActions()).to.deep.equal(['subscribe t']);
  });

  it('refuses a topic with a lone UTF-16 surrogate at once; an emoji is fine', () => {
    const c = open({ userId: 'u' });
    expect(() => c.subscribe('vehicle:\ud800')).to.throw(RealtimeError).with.property('code', 'invalid_topic');
    expect(() => c.subscribe('vehicle:\u{1F697}')).to.not.throw();
  });

  it('delivers send-to-user frames as "message" events, never as protocol errors', async () => {
    const c = open({ userId: 'u' });
    const messages: [unknown, unknown][] = [];
    const errors: string[] = [];
    c.on('message', (data, info) => messages.push([data, info]));
    c.on('error', (e) => errors.push(`${e.code}: ${e.message}`));
    await flush();
    const s = FakeSocket.last();
    s.open();
    s.receive({ type: 'message', data: { text: 'private note for u' }, ts: 123 });
    s.receive({ type: 'message', data: null });
    expect(messages).to.deep.equal([
      [{ text: 'private note for u' }, { ts: 123, receivedAt: timers.now() }],
      [null, { receivedAt: timers.now() }],
    ]);
    expect(errors).to.deep.equal([]);
  });

  it('reports a frame it cannot parse without quoting it (it may be private)', async () => {
    const c = open({ userId: 'u' });
    const errors: string[] = [];
    c.on('error', (e) => errors.push(`${e.code}: ${e.message}`));
    await flush();
    FakeSocket.last().open();
    FakeSocket.last().receive({ type: 'future-frame', secret: 'card 4111-1111' });
    expect(errors).to.have.length(1);
    expect(errors[0]).to.match(/^protocol_error: /);
    expect(errors[0]).to.not.include('4111');
  });

  it('a throwing application callback is reported and does not stop later deliveries', async () => {
    const c = open({ userId: 'u' });
    const errs: string[] = [];
    const got: number[] = [];
    c.on('error', (e) => errs.push(e.code));
    c.subscribe('t', () => {
      throw new Error('boom');
    }, (_d, i) => got.push(i.seq));
    await flush();
    FakeSocket.last().open();
    FakeSocket.last().receive({ type: 'snapshot', topic: 't', seq: 1, data: null });
    FakeSocket.last().receive({ type: 'event', topic: 't', seq: 2, data: null });
    expect(errs).to.deep.equal(['handler_error']);
    expect(got).to.deep.equal([2]);
  });

  it('unsubscribe stops deliveries at once and is not resubscribed on reconnect', async () => {
    const c = open({ userId: 'u' });
    const got: number[] = [];
    const sub = c.subscribe('t', undefined, (_d, i) => got.push(i.seq));
    c.subscribe('u');
    await flush();
    const s = FakeSocket.last();
    s.open();
    s.receive({ type: 'snapshot', topic: 't', seq: 0, data: null });
    sub.unsubscribe();
    s.receive({ type: 'event', topic: 't', seq: 1, data: null });
    expect(got).to.deep.equal([]);
    expect(s.sentActions()).to.deep.equal(['subscribe t', 'subscribe u', 'unsubscribe t']);
    expect(() => c.subscribe('u')).to.throw(RealtimeError).with.property('code', 'already_subscribed');
    s.drop();
    timers.advance(60_000);
    await flush();
    FakeSocket.last().open();
    expect(FakeSocket.last().sentActions()).to.deep.equal(['subscribe u']);
  });

  it('rejects bad options with invalid_option / no_websocket, naming the option', () => {
    const bad = (o: ConnectOptions, url = 'ws://x/') => () => connect(url, { WebSocket: FakeSocket, timers, ...o });
    expect(bad({}, 'http://x/')).to.throw(/ws:\/\/ or wss:\/\//);
    expect(bad({ pingIntervalMs: 0 })).to.throw(/pingIntervalMs/);
    expect(bad({ rotateAfterMs: 1000, rotateJitterMs: 1000 })).to.throw(/rotateJitterMs/);
    expect(bad({ backoff: { initialMs: -1 } })).to.throw(/initialMs/);
    expect(bad({ tokenIn: 'header' as never })).to.throw(/tokenIn/);
    try {
      connect('ws://x/', { WebSocket: FakeSocket, pingIntervalMs: -5 });
      expect.fail('should throw');
    } catch (e) {
      expect((e as RealtimeError).code).to.equal('invalid_option');
    }
    // Node 20 has no global WebSocket.
    const g = globalThis as { WebSocket?: unknown };
    const saved = g.WebSocket;
    delete g.WebSocket;
    try {
      expect(() => connect('ws://x/')).to.throw(RealtimeError).with.property('code', 'no_websocket');
    } finally {
      if (saved) g.WebSocket = saved;
    }
  });

  it('close() stops reconnecting, closes sockets and leaves no timer behind', async () => {
    const c = open({ userId: 'u' });
    c.subscribe('t');
    await flush();
    const s = FakeSocket.last();
    s.open();
    c.close();
    expect(c.state).to.equal('closed');
    expect(s.closedWith?.code).to.equal(1000);
    s.drop();
    timers.advance(3_600_000);
    await flush();
    expect(FakeSocket.instances).to.have.length(1);
  });

  it('re-sends an unanswered publish with the same id on the next socket and resolves with the seq answered there', async () => {
    const c = open({ userId: 'alice' });
    await flush();
    FakeSocket.last().open();
    const p = c.publish('chat:1', { text: 'hi' });
    const first = FakeSocket.last().sent.find((m) => m.action === 'publish');
    expect(first).to.deep.include({ action: 'publish', topic: 'chat:1', data: { text: 'hi' } });
    expect(first.id).to.be.a('string').and.not.empty;
    FakeSocket.last().drop(1006); // the answer is lost with the socket
    timers.advance(1000);
    await flush();
    FakeSocket.last().open();
    const again = FakeSocket.last().sent.filter((m) => m.action === 'publish');
    expect(again).to.deep.equal([first]);
    FakeSocket.last().receive({ type: 'published', topic: 'chat:1', seq: 7, id: first.id });
    expect(await p).to.deep.equal({ seq: 7 });
  });

  it('send() resolves on accepted; an error with the request id rejects that call with its code and retryAfterMs', async () => {
    const c = open({ userId: 'alice' });
    await flush();
    FakeSocket.last().open();
    const ok = c.send('chat.ask', 1, { id: 'q1' });
    const limited = c.publish('chat:1', 2, { id: 'p1' });
    FakeSocket.last().receive({ type: 'accepted', action: 'chat.ask', id: 'q1' });
    FakeSocket.last().receive({ type: 'error', code: 'rate_limited', message: 'slow down', action: 'publish', topic: 'chat:1', id: 'p1', retryAfterMs: 250 });
    await ok;
    const err = await limited.then(() => undefined, (e: RealtimeError) => e);
    expect(err).to.be.instanceOf(RealtimeError);
    expect(err).to.include({ code: 'rate_limited', retryAfterMs: 250 });
    await c.send('subscribe', 1).then(
      () => expect.fail('a built-in action is not an application action'),
      (e: RealtimeError) => expect(e.code).to.equal('invalid_action'),
    );
  });

  it('close() rejects publishes still waiting for their answer', async () => {
    const c = open({ userId: 'alice' });
    await flush();
    FakeSocket.last().open();
    const p = c.publish('chat:1', 1);
    c.close();
    const err = await p.then(() => undefined, (e: RealtimeError) => e);
    expect(err?.code).to.equal('closed');
  });
});
