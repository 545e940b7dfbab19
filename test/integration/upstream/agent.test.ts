import { expect } from 'chai';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { createHandler } from '../../../functions/control';
import { startAgent, type AgentOptions, type RunningAgent } from '../../../ec2-agent/agent';
import fs from 'node:fs';
import { encodeCommand } from '../../../lib/upstream/commands';
import { LocalSecretStore } from '../../../lib/upstream/secrets-local';
import { secretNameFor } from '../../../lib/upstream/secret-store';
import { socketIdOf } from '../../../lib/upstream/socket-id';
import { ItemStore } from '../../../lib/stores/items';
import { invokeLambda } from '../../../local/lambda/invoke';
import { FAST_AGENT, httpEvent, startHarness, startUpstream, waitFor, type Harness, type UpstreamServer } from './harness';
import { eventually } from '../../support/wait';

type Res = { statusCode: number; body: string };

/**
 * Short timers; the health check at FAST_AGENT's 60 s, out of the way: with a 150 ms ping
 * timeout a check on a loaded host can miss its pong and redial, which these tests would see as
 * an extra connection or close. The test about health checks sets its own.
 */
const FAST: Partial<AgentOptions> = { ...FAST_AGENT };

describe('upstream agent against DynamoDB Local + SQS + real upstream servers', function () {
  this.timeout(30_000);
  let h: Harness;
  let control: ReturnType<typeof createHandler>;
  const agents: RunningAgent[] = [];
  const servers: UpstreamServer[] = [];
  const creds = { asapa_email: 'feed@acme.example', asapa_pass: 's3cr3t:with-colon' };
  const basic = `Basic ${Buffer.from(`${creds.asapa_email}:${creds.asapa_pass}`).toString('base64')}`;

  const call = async (routeKey: string, headers: Record<string, string>) => {
    const r = await invokeLambda<Res>(control as never, httpEvent(routeKey, headers), { functionName: 'control' });
    return { status: r.statusCode, body: JSON.parse(r.body) };
  };
  const agent = async (opts: Partial<AgentOptions> = {}) => {
    const a = await startAgent(h.deps('agent'), { ...FAST, ...opts });
    agents.push(a);
    return a;
  };
  const upstream = async (opts: Parameters<typeof startUpstream>[0] = {}) => {
    const s = await startUpstream({ requireAuth: basic, ...opts });
    servers.push(s);
    return s;
  };
  const headersFor = (s: UpstreamServer, internalID: string) => ({ internalID, interWorkingInterface: s.url, platformID: 'acme' });
  const state = async (s: UpstreamServer, internalID: string) => (await call('GET /websocket', headersFor(s, internalID))).body;

  // A fresh table set per test: sockets left desired-open by one test must not occupy the next
  // test's agents.
  beforeEach(async () => {
    h = await startHarness();
    control = createHandler(h.deps('control'));
  });
  afterEach(async function () {
    // What the agents did, for a failure seen only on a loaded machine.
    if (this.currentTest?.state === 'failed') process.stderr.write(`--- agent log ---\n${h.logLines.slice(-60).join('\n')}\n`);
    await Promise.all(agents.splice(0).map((a) => a.stop()));
    await Promise.all(servers.splice(0).map((s) => s.stop()));
    await h.stop();
  });

  it('POST → the agent connects with Basic auth, persists every message to the topic, GET reports active; DELETE → the upstream sees the close', async () => {
    const up = await upstream();
    const a = await agent();
    const p = await call('POST /websocket', { ...headersFor(up, 'veh-1'), ...creds });
    expect(p.status).to.equal(202);
    await waitFor(() => up.open.size === 1, 10_000, 'the upstream connection');
    expect(up.auths).to.deep.equal([basic]);
    await waitFor(async () => (await state(up, 'veh-1')).isActive === true, 5000, 'GET isActive');
    const s1 = await state(up, 'veh-1');
    expect(s1).to.include({ status: 'open', owner: a.agentId, desired: 'open' });

    for (let i = 1; i <= 5; i++) up.send({ timestamp: 1_700_000_000_000 + i, n: i });
    up.send('plain text');
    // Beyond 2^53: the document client refuses the parsed number, so the text is stored instead.
    up.send('{"id":12345678901234567890}');
    const items = new ItemStore(h.clients.doc, { itemsTable: h.tables.items, historyTable: h.tables.history, historyTtlSeconds: 3600 });
    await waitFor(async () => ((await items.get(p.body.topic))?.seq ?? 0) >= 7, 5000, 'seven persisted messages');
    const hist = await items.historySince(p.body.topic, 0, 100);
    expect(hist.map((r) => r.data)).to.deep.equal(
      [1, 2, 3, 4, 5].map((n) => ({ timestamp: 1_700_000_000_000 + n, n })).concat(['plain text', '{"id":12345678901234567890}'] as never[]),
    );
    expect(hist[0].ts).to.equal(1_700_000_000_001);
    // Counters reach the row with the next lease renewal.
    await waitFor(async () => (await state(up, 'veh-1')).counters.messagesPersisted === 7, 5000, 'counters in the row');
    expect(a.metrics()).to.include({ openSockets: 1, messagesIn: 7, messagesPersisted: 7, messagesDropped: 0 });

    const d = await call('DELETE /websocket', headersFor(up, 'veh-1'));
    expect(d.status).to.equal(202);
    await waitFor(() => up.closes.length === 1, 5000, 'the upstream to see the close');
    expect(up.closes).to.deep.equal([1000]);
    await waitFor(async () => (await state(up, 'veh-1')).status === 'closed', 5000, 'status closed');
    const s2 = await state(up, 'veh-1');
    expect(s2).to.include({ isActive: false, owner: null, desired: 'closed' });
    expect(a.metrics().openSockets).to.equal(0);
    // Credentials never reach the logs.
    expect(h.logLines.join('\n')).to.not.include(creds.asapa_pass).and.not.include(basic.slice(6));
  });

  it('duplicate and reordered commands end in the desired state', async () => {
    const up = await upstream();
    const a = await agent();
    const send = (type: 'open' | 'close', socketId: string) =>
      h.clients.sqs.send(new SendMessageCommand({ QueueUrl: h.queueUrls.commands, MessageBody: encodeCommand(type, socketId, Date.now()) }));

    // Desired open; commands close, open, open arrive (close before open, open twice).
    const open = await call('POST /websocket', { ...headersFor(up, 'veh-open'), ...creds });
    await send('close', open.body.socketId);
    await send('open', open.body.socketId);
    await send('open', open.body.socketId);
    // Desired closed; stale opens arrive after the close.
    const closed = await call('POST /websocket', { ...headersFor(up, 'veh-closed'), ...creds });
    await call('DELETE /websocket', headersFor(up, 'veh-closed'));
    await send('open', closed.body.socketId);
    await send('open', closed.body.socketId);

    await waitFor(() => a.metrics().commandsHandled >= 8, 15_000, 'all eight commands');
    await waitFor(async () => (await state(up, 'veh-open')).isActive === true, 5000, 'veh-open active');
    // A few more reconcile rounds: nothing changes.
    await new Promise((r) => setTimeout(r, 3 * FAST.reconcileMs!));
    expect(up.open.size).to.equal(1);
    expect(up.maxConcurrent).to.equal(1);
    expect(up.connections).to.equal(1);
    expect(await state(up, 'veh-closed')).to.include({ status: 'closed', isActive: false, desired: 'closed' });
    expect(a.metrics().commandsFailed).to.equal(0);
  });

  it('an upstream that stops answering pings goes through countErr 1, 2, 3 and ends failed', async () => {
    const up = await upstream({ autoPong: false });
    await agent({ healthIntervalMs: 400, pingTimeoutMs: 100 });
    await call('POST /websocket', { ...headersFor(up, 'veh-mute'), ...creds });
    await waitFor(async () => (await state(up, 'veh-mute')).status === 'failed', 15_000, 'status failed');
    // Every countErr the row held, as each failed check's write returned it: polling GET could
    // miss one when a read takes longer than a check period (400 ms) on a loaded host.
    const recorded = h.logLines
      .map((l) => JSON.parse(l))
      .filter((l) => l.msg === 'upstream unhealthy' && l.socketId === socketIdOf(headersFor(up, 'veh-mute')))
      .map((l) => l.countErr as number);
    expect(recorded).to.deep.equal([1, 2, 3]);
    const s = await state(up, 'veh-mute');
    expect(s).to.include({ status: 'failed', isActive: false, countErr: 3, owner: null, desired: 'open' });
    expect(s.lastError).to.match(/no pong/);
    // Failed means no more dialling: nobody reconnects it.
    await waitFor(() => up.open.size === 0, 3000, 'the agent to close it');
    const dials = up.connections;
    await new Promise((r) => setTimeout(r, 4 * FAST.reconcileMs!));
    expect(up.connections).to.equal(dials);
    // A new POST revives it.
    const again = await call('POST /websocket', { ...headersFor(up, 'veh-mute'), ...creds });
    expect(again.body.status).to.equal('pending');
    await waitFor(() => up.connections > dials, 5000, 'a new connection after revival');
  });

  it('an upstream that drops and comes back is reconnected with backoff; no message lost after it is back', async () => {
    let up = await upstream();
    const a = await agent();
    const p = await call('POST /websocket', { ...headersFor(up, 'veh-flaky'), ...creds });
    await waitFor(() => up.open.size === 1, 10_000, 'first connection');
    for (let i = 1; i <= 3; i++) up.send({ n: i });
    const items = new ItemStore(h.clients.doc, { itemsTable: h.tables.items, historyTable: h.tables.history, historyTtlSeconds: 3600 });
    await waitFor(async () => ((await items.get(p.body.topic))?.seq ?? 0) === 3, 5000, 'three persisted');

    const port = up.port;
    await up.stop();
    servers.splice(servers.indexOf(up), 1);
    await waitFor(async () => (await state(up, 'veh-flaky')).status === 'reconnecting', 5000, 'status reconnecting');
    const redials = () =>
      h.logLines
        .map((l) => JSON.parse(l))
        .filter((l) => l.msg === 'upstream down; redialling' && l.socketId === p.body.socketId)
        .map((l) => l.retryInMs as number);
    // Three failed dials, so the backoff has grown (the third waits 100–200 ms, over the base).
    await waitFor(() => redials().length >= 3, 10_000, 'three redials');
    up = await upstream({ port });
    await waitFor(() => up.open.size === 1, 10_000, 'reconnection');
    await waitFor(async () => (await state(up, 'veh-flaky')).status === 'open', 5000, 'status open again');
    for (let i = 4; i <= 10; i++) up.send({ n: i });
    await waitFor(async () => ((await items.get(p.body.topic))?.seq ?? 0) === 10, 5000, 'ten persisted');
    const hist = await items.historySince(p.body.topic, 0, 100);
    expect(hist.map((r) => (r.data as { n: number }).n)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);

    expect(a.metrics().reconnects).to.be.at.least(2);
    // The redial delays grew (equal jitter: attempt n waits between base·2ⁿ⁻¹ and base·2ⁿ, capped).
    const delays = redials();
    expect(delays.length).to.be.at.least(3);
    expect(Math.max(...delays)).to.be.greaterThan(FAST.backoffBaseMs!);
    expect(delays.every((d) => d <= FAST.backoffMaxMs!)).to.equal(true);
  });

  it('a socket\'s status writes land in the order they were made: a slow "reconnecting" from the drop never overwrites the reconnection\'s "open"', async () => {
    let up = await upstream();
    // The agent's DynamoDB client with the drop's status writes held until released: a slow or
    // retried write (throttling, a slow node), still in flight when the reconnection is recorded.
    let holding = true;
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let held = 0;
    let landed = 0;
    /** "connected" status writes answered. */
    let connectedLanded = 0;
    const d = h.deps('agent');
    const doc = new Proxy(d.clients.doc, {
      get(target, prop, receiver) {
        if (prop !== 'send') return Reflect.get(target, prop, receiver);
        const send = (cmd: unknown, opts?: unknown) => (target.send as (c: unknown, o?: unknown) => Promise<unknown>)(cmd, opts);
        return (cmd: unknown, opts?: unknown) => {
          if (!(cmd instanceof UpdateCommand)) return send(cmd, opts);
          if (cmd.input.UpdateExpression?.includes('connectedAt = :now')) return send(cmd, opts).finally(() => connectedLanded++);
          if (!holding || cmd.input.ExpressionAttributeValues?.[':re'] !== 'reconnecting') return send(cmd, opts);
          held++;
          return released.then(() => send(cmd, opts)).finally(() => landed++);
        };
      },
    });
    const a = await startAgent({ ...d, clients: { ...d.clients, doc } }, FAST);
    agents.push(a);
    await call('POST /websocket', { ...headersFor(up, 'veh-order'), ...creds });
    await waitFor(async () => (await state(up, 'veh-order')).status === 'open', 10_000, 'status open');
    const connectedBefore = connectedLanded;
    const port = up.port;
    await up.stop();
    servers.splice(servers.indexOf(up), 1);
    await waitFor(() => held >= 1, 5000, 'the drop recorded (held)');
    up = await upstream({ port });
    await waitFor(() => up.open.size === 1, 10_000, 'the reconnection');
    // Unordered, the reconnection's "connected" write is answered now, before the held ones;
    // ordered behind them, it is not even sent until they are released.
    await eventually(() => connectedLanded > connectedBefore, 2000);
    holding = false;
    release();
    await waitFor(() => landed === held, 5000, 'the held writes answered');
    // The row ends as the socket is: connected (nothing else writes its status for 60 s).
    await waitFor(async () => (await state(up, 'veh-order')).status === 'open', 5000, 'status open after every write');
    expect(await state(up, 'veh-order')).to.include({ status: 'open', isActive: true, owner: a.agentId });
    expect(up.open.size).to.equal(1);
  });

  it('a socket whose secret fails authentication is marked failed once, not re-claimed forever', async () => {
    const up = await upstream();
    await call('POST /websocket', { ...headersFor(up, 'corrupt'), ...creds });
    // The agent reads the sealed files directly, so the tampered file reaches it as it is.
    const sealed = new LocalSecretStore({ dir: h.env.LOCAL_SECRETS_DIR, keyHex: h.env.LOCAL_SECRETS_KEY });
    const file = sealed.fileFor(secretNameFor(h.config.upstream.secretPrefix, socketIdOf(headersFor(up, 'corrupt'))));
    const s = JSON.parse(fs.readFileSync(file, 'utf8'));
    const ct = Buffer.from(s.ct, 'base64');
    ct[0] ^= 1;
    fs.writeFileSync(file, JSON.stringify({ ...s, ct: ct.toString('base64') }));
    const d = h.deps('agent');
    const local = { ...d.config.upstream, secretsBackend: 'local' as const, localSecretsDir: h.env.LOCAL_SECRETS_DIR, localSecretsKey: h.env.LOCAL_SECRETS_KEY };
    const a = await startAgent({ ...d, config: { ...d.config, upstream: local } }, FAST);
    agents.push(a);
    await waitFor(async () => (await state(up, 'corrupt')).status === 'failed', 5000, 'the socket to be marked failed');
    await new Promise((r) => setTimeout(r, 3 * FAST.reconcileMs!));
    expect(await state(up, 'corrupt')).to.include({ status: 'failed', owner: null });
    expect(a.metrics().leasesClaimed).to.equal(1);
    expect(up.connections).to.equal(0);
  });

  it('respects its capacity; a second agent takes what the first cannot', async () => {
    const up = await upstream();
    const a1 = await agent({ capacity: 1 });
    await call('POST /websocket', { ...headersFor(up, 'cap-1'), ...creds });
    await call('POST /websocket', { ...headersFor(up, 'cap-2'), ...creds });
    await waitFor(() => up.open.size === 1, 5000, 'one connection');
    await new Promise((r) => setTimeout(r, 3 * FAST.reconcileMs!));
    expect(up.open.size).to.equal(1);
    expect(a1.metrics().openSockets).to.equal(1);
    const a2 = await agent({ capacity: 1 });
    await waitFor(() => up.open.size === 2, 5000, 'the second agent to take the other socket');
    const owners = [(await state(up, 'cap-1')).owner, (await state(up, 'cap-2')).owner].sort();
    expect(owners).to.deep.equal([a1.agentId, a2.agentId].sort());
  });

  it('stop() closes its sockets (1001) and releases the leases so another agent takes them at once', async () => {
    const up = await upstream();
    // No health check before stop() (FAST's 60 s): one failing under load would redial (the
    // upstream would see that close, 1006, first), and this test is about stop().
    const a1 = await agent({ leaseMs: 20_000, renewMs: 2000 });
    await call('POST /websocket', { ...headersFor(up, 'handover'), ...creds });
    await waitFor(async () => (await state(up, 'handover')).owner === a1.agentId, 5000, 'a1 to own it');
    // Owning the lease comes before the dial completes; a close frame needs an open socket.
    await waitFor(() => up.open.size === 1, 5000, 'the upstream connection to be open');
    await a1.stop();
    await waitFor(() => up.closes.length === 1, 5000, 'the upstream to see the close');
    expect(up.closes).to.deep.equal([1001]);
    expect(await state(up, 'handover')).to.include({ owner: null, status: 'pending', isActive: false });
    const a2 = await agent({ leaseMs: 20_000, renewMs: 2000 });
    // Well under the 20 s lease: the release made it claimable immediately.
    await waitFor(async () => (await state(up, 'handover')).owner === a2.agentId, 8000, 'a2 to own it');
  });
});
