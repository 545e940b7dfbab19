import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import { ApiGatewayManagementApiClient, DeleteConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { connect, type RealtimeClient } from '../../../client/index';
import { startTestStack, type LocalStack } from '../../support/stack';
import { ADMIN_PRINCIPAL, localCredentials } from '../../../local/iam/principals';
import { NodeWebSocket, publish, range, waitFor } from './helpers';

/**
 * The SDK against the real local stack (API Gateway emulator + handlers + DynamoDB Local +
 * stream poller + fan-out): server-side kills while publishing, rotation before the maximum
 * connection duration, pings against the idle timeout, JWT in Sec-WebSocket-Protocol with refresh.
 */

const SECRET = randomBytes(32).toString('hex');

async function mint(sub: string): Promise<string> {
  return new SignJWT({ topics: ['*'], publish: ['*'] })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(new TextEncoder().encode(SECRET));
}

describe('client SDK against the local stack: kill mid-stream (jwt auth, token via Sec-WebSocket-Protocol)', function () {
  this.timeout(60_000);
  let stack: LocalStack;
  let mgmt: ApiGatewayManagementApiClient;
  let client: RealtimeClient | undefined;
  before(async () => {
    stack = await startTestStack({ env: { AUTH_MODE: 'jwt', JWT_HS256_SECRET: SECRET } });
    // Signed as the local admin principal: the stack authorises every @connections call.
    mgmt = new ApiGatewayManagementApiClient({ endpoint: stack.endpoints.managementUrl, region: 'us-east-1', credentials: localCredentials(ADMIN_PRINCIPAL) });
  });
  after(async () => {
    client?.close();
    mgmt?.destroy();
    await stack?.stop();
  });

  it('kills the connection twice (DELETE @connections) while publishing: every seq arrives exactly once, in order; the token is refreshed on each reconnect', async () => {
    const topic = `kill:${randomBytes(3).toString('hex')}`;
    const N = 60;
    let tokens = 0;
    const states: string[] = [];
    const snapshots: number[] = [];
    const events: number[] = [];
    const payloads: unknown[] = [];
    client = connect(stack.endpoints.websocketUrl, {
      WebSocket: NodeWebSocket,
      token: async () => {
        tokens += 1;
        return mint('alice');
      },
      backoff: { initialMs: 50, maxMs: 300 },
    });
    client.on('state', (s) => states.push(s.state));
    client.subscribe<{ i: number }>(
      topic,
      (_d, i) => snapshots.push(i.seq),
      (d, i) => {
        events.push(i.seq);
        payloads.push(d);
      },
    );
    await client.whenOpen();
    await waitFor(() => snapshots.length === 1, 5000, 'the first snapshot');
    expect(snapshots).to.deep.equal([0]);

    const kill = async () => {
      // After the first kill the client may still be reconnecting: wait for its new connection.
      await waitFor(() => stack.websocket.connectionIds().length === 1, 5000, 'one live connection to kill');
      const ids = stack.websocket.connectionIds();
      // The real SDK against the emulator's management API, as a backend would do it.
      await mgmt.send(new DeleteConnectionCommand({ ConnectionId: ids[0] }));
    };
    for (let i = 1; i <= N; i++) {
      const seq = await publish(stack.endpoints.httpUrl, topic, { i });
      expect(seq).to.equal(i);
      if (i === 15 || i === 40) await kill();
    }
    await waitFor(() => events.length >= N, 15_000, () => `all ${N} events (got ${events.length}: ${events.slice(-5)})`);
    await new Promise((r) => setTimeout(r, 200)); // late duplicates would show up here

    expect(events).to.deep.equal(range(1, N));
    expect(payloads.map((p) => (p as { i: number }).i)).to.deep.equal(range(1, N));
    expect(states.filter((s) => s === 'reconnecting').length, 'reconnects').to.be.at.least(2);
    expect(tokens, 'a fresh token per connect').to.equal(states.filter((s) => s === 'open').length);
    expect(tokens).to.be.at.least(3);
    expect(client.lastSeq(topic)).to.equal(N);
  });

  it('a bad token never opens: the client keeps retrying with backoff and reports nothing as delivered', async () => {
    const errors: string[] = [];
    const states: string[] = [];
    const c = connect(stack.endpoints.websocketUrl, {
      WebSocket: NodeWebSocket,
      token: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.AAAA',
      backoff: { initialMs: 20, maxMs: 50 },
      maxAttempts: 3,
    });
    c.on('error', (e) => errors.push(e.code));
    c.on('state', (s) => states.push(s.state));
    await c.whenOpen().then(
      () => expect.fail('must not open with a forged token'),
      (e) => expect(e.code).to.equal('closed'),
    );
    expect(states).to.not.include('open');
    expect(states.filter((s) => s === 'reconnecting')).to.have.length(2);
    expect(states.at(-1)).to.equal('closed');
  });
});

describe('client SDK against the local stack: API Gateway idle timeout (auth none)', function () {
  this.timeout(60_000);
  let stack: LocalStack;
  const clients: RealtimeClient[] = [];
  before(async () => {
    // Scaled-down idle timeout, 10 min → 2 s, and no maximum duration in the way: a client that
    // pings every 300 ms stays 1.7 s inside the timeout, so only a stall of seconds could cut it.
    stack = await startTestStack({ idleTimeoutMs: 2000 });
  });
  after(async () => {
    for (const c of clients) c.close();
    await stack?.stop();
  });

  it('pings below the idle timeout keep the connection up; without them the emulator cuts it', async () => {
    const pinged = connect(stack.endpoints.websocketUrl, { WebSocket: NodeWebSocket, userId: 'pinger', pingIntervalMs: 300, rotateAfterMs: 60_000, rotateJitterMs: 0 });
    const silent = connect(stack.endpoints.websocketUrl, { WebSocket: NodeWebSocket, userId: 'silent', pingIntervalMs: 60_000, rotateAfterMs: 60_000, rotateJitterMs: 0, backoff: { initialMs: 10_000 } });
    clients.push(pinged, silent);
    const pingedStates: string[] = [];
    const silentStates: string[] = [];
    const rtts: number[] = [];
    pinged.on('state', (s) => pingedStates.push(s.state));
    silent.on('state', (s) => silentStates.push(s.state));
    pinged.on('pong', (ms) => rtts.push(ms));
    await Promise.all([pinged.whenOpen(), silent.whenOpen()]);
    const opened = Date.now();
    await waitFor(() => silentStates.includes('reconnecting'), 10_000, 'control: the idle timeout cuts the silent client');
    // The pinging client has outlived 1.5 × the idle timeout.
    await new Promise((r) => setTimeout(r, Math.max(0, opened + 3000 - Date.now())));
    expect(pingedStates, 'pinged client').to.deep.equal(['open']);
    expect(rtts.length).to.be.at.least(5);
    pinged.close();
    silent.close();
  });
});

describe('client SDK against the local stack: API Gateway maximum connection duration (auth none)', function () {
  this.timeout(60_000);
  let stack: LocalStack;
  const clients: RealtimeClient[] = [];
  before(async () => {
    // Scaled-down maximum duration: 2 h → 2 s (the idle timeout stays API Gateway's 10 min).
    stack = await startTestStack({ maxDurationMs: 2000 });
  });
  after(async () => {
    for (const c of clients) c.close();
    await stack?.stop();
  });

  it('rotates before the maximum connection duration without an unplanned disconnect or a lost/doubled event', async () => {
    const topic = `rot:${randomBytes(3).toString('hex')}`;
    const states: string[] = [];
    const events: number[] = [];
    let rotations = 0;
    const c = connect(stack.endpoints.websocketUrl, {
      WebSocket: NodeWebSocket,
      userId: 'rotator',
      pingIntervalMs: 200,
      rotateAfterMs: 900,
      rotateJitterMs: 200,
      rotateOverlapMs: 1000,
    });
    clients.push(c);
    c.on('state', (s) => states.push(s.state));
    c.on('rotated', () => (rotations += 1));
    const snapshots: number[] = [];
    c.subscribe(topic, (_d, i) => snapshots.push(i.seq), (_d, i) => events.push(i.seq));
    await c.whenOpen();
    // Publish only after the snapshot: a change written before it would be part of it, not an event.
    await waitFor(() => snapshots.length === 1, 5000, 'the first snapshot');
    // Publish for > 1.5 × the emulator's maximum duration, and on until three rotations were made:
    // each takes rotateAfterMs plus an open and a resubscribe, so on a loaded machine three may
    // need longer than 3.5 s. The bound only stops a client that no longer rotates.
    const start = Date.now();
    const publishing = () => Date.now() - start < 3500 || (rotations < 3 && Date.now() - start < 20_000);
    let n = 0;
    while (publishing()) {
      n = await publish(stack.endpoints.httpUrl, topic, { n: n + 1 });
      await new Promise((r) => setTimeout(r, 15));
    }
    await waitFor(() => events.length >= n, 10_000, () => `all ${n} events (got ${events.length})`);
    await new Promise((r) => setTimeout(r, 200)); // late duplicates would show up here
    expect(snapshots).to.deep.equal([0]);
    expect(events).to.deep.equal(range(1, n));
    expect(rotations).to.be.at.least(3);
    expect(states.filter((s) => s === 'reconnecting'), 'no unplanned disconnects').to.deep.equal([]);
    c.close();
  });
});
