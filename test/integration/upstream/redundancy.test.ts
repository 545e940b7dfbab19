import { expect } from 'chai';
import type { ChildProcess } from 'node:child_process';
import { GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { startAgent, type RunningAgent } from '../../../ec2-agent/agent';
import { createHandler } from '../../../functions/control';
import { HeartbeatTable } from '../../../lib/upstream/heartbeats';
import { LeaseTable } from '../../../lib/upstream/leases';
import { invokeLambda } from '../../../local/lambda/invoke';
import { slotRowId } from '../../../lib/upstream/socket-id';
import { httpEvent, spawnAgentProcess, startHarness, startUpstream, waitFor, type Harness, type UpstreamServer } from './harness';

/**
 * Redundant homing (`redundancy: 2`): two agent processes keep the same upstream open, one per
 * slot; every message is persisted once (by the platform's id at `dedupe-path`, or by content),
 * and a SIGKILL of either agent loses none, because the other was already receiving them.
 */


describe('upstream redundant homing', function () {
  this.timeout(90_000);
  let h: Harness;
  const children: ChildProcess[] = [];
  const servers: UpstreamServer[] = [];
  const output = new Map<string, string[]>();
  const agents: RunningAgent[] = [];

  const spawnAgent = (agentId: string): ChildProcess =>
    spawnAgentProcess(
      h,
      agentId,
      {
        AGENT_LEASE_MS: '6000',
        // Long enough to hold on a loaded machine; the kill below waits past lease + reconcile.
        AGENT_RENEW_MS: '1500',
        AGENT_RECONCILE_MS: '500',
        // The "agent metrics" log line comes every min(60 s, health interval).
        AGENT_HEALTH_INTERVAL_MS: '1000',
      },
      { children, output },
    );

  const post = async (headers: Record<string, string>) => {
    const control = createHandler(h.deps('control'));
    return invokeLambda<{ statusCode: number; body: string }>(control as never, httpEvent('POST /websocket', { platformID: 'acme', asapa_email: 'a@b.c', asapa_pass: 'pw', ...headers }), {
      functionName: 'control',
    });
  };

  /** The `n` of every history row of `topic`, in seq order. */
  const persisted = async (topic: string): Promise<number[]> => {
    const out: number[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const r = await h.clients.doc.send(new QueryCommand({ TableName: h.tables.history, KeyConditionExpression: 'topic = :t', ExpressionAttributeValues: { ':t': topic }, ExclusiveStartKey: start, ConsistentRead: true }));
      for (const it of r.Items ?? []) out.push(Number((it.data as { n: number }).n));
      start = r.LastEvaluatedKey;
    } while (start);
    return out;
  };

  const ownerOf = async (socketId: string) => (await h.clients.doc.send(new GetCommand({ TableName: h.tables.upstreams, Key: { socketId }, ConsistentRead: true }))).Item?.owner as string | undefined;

  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await Promise.all(servers.map((s) => s.stop()));
    await h.stop();
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed') {
      for (const [id, lines] of output) process.stderr.write(`--- ${id} ---\n${lines.join('').split('\n').filter((l) => !l.includes('"agent metrics"')).join('\n').slice(-6000)}\n`);
    }
  });

  it('refuses a redundancy other than 1 or 2, and a dedupe-path that is malformed or without redundancy 2, naming the header', async () => {
    const base = { internalID: 'bad', interWorkingInterface: 'ws://127.0.0.1:9/x' };
    for (const [headers, named] of [
      [{ redundancy: '3' }, 'redundancy must be 1 or 2'],
      [{ redundancy: 'two' }, 'redundancy must be 1 or 2'],
      [{ 'dedupe-path': '$.id' }, 'dedupe-path only applies with redundancy: 2'],
      [{ redundancy: '2', 'dedupe-path': 'id' }, 'dedupe-path must be a JSON path'],
      [{ redundancy: '2', 'dedupe-path': '$..id' }, 'dedupe-path must be a JSON path'],
    ] as const) {
      const r = await post({ ...base, ...headers });
      expect(r.statusCode, JSON.stringify(headers)).to.equal(400);
      expect(JSON.parse(r.body).message).to.include(named);
    }
  });

  it('two agents both receive; each numbered message is persisted exactly once; a SIGKILL of one loses none', async () => {
    const byId = await startUpstream();
    const byContent = await startUpstream();
    servers.push(byId, byContent);
    const a = spawnAgent('agent-A');
    const b = spawnAgent('agent-B');
    const open = async (s: UpstreamServer, internalID: string, extra: Record<string, string>) => {
      const r = await post({ internalID, interWorkingInterface: s.url, redundancy: '2', ...extra });
      expect(r.statusCode).to.equal(202);
      return JSON.parse(r.body) as { socketId: string; topic: string };
    };
    const s1 = await open(byId, 'red-id', { 'dedupe-path': '$.meta.id' });
    const s2 = await open(byContent, 'red-hash', {});
    await waitFor(() => byId.open.size === 2 && byContent.open.size === 2, 30_000, 'both slots of both sockets connected');
    // Never both slots on one agent.
    for (const s of [s1, s2]) {
      const [o1, o2] = [await ownerOf(s.socketId), await ownerOf(slotRowId(s.socketId))];
      expect(o1).to.be.oneOf(['agent-A', 'agent-B']);
      expect(o2).to.be.oneOf(['agent-A', 'agent-B']);
      expect(o1).to.not.equal(o2);
    }

    // A platform that does not replay: a numbered message every 20 ms to whatever is connected.
    let n = 0;
    let streaming = true;
    const stream = (async () => {
      while (streaming) {
        byId.send({ meta: { id: `m-${n}` }, n, pad: n % 7 });
        byContent.send({ n });
        n++;
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    await new Promise((r) => setTimeout(r, 1500));
    a.kill('SIGKILL');
    // Past the dead agent's lease and a reconcile: its slots are being taken over meanwhile.
    await new Promise((r) => setTimeout(r, 8000));
    streaming = false;
    await stream;
    const sent = n;
    for (const s of [s1, s2]) {
      // Waits for the persist queues to drain; what is still missing after that is reported below.
      await waitFor(async () => (await persisted(s.topic)).length >= sent, 30_000, 'drain').catch(() => undefined);
      await new Promise((r) => setTimeout(r, 500)); // nothing more arrives late
      const ns = await persisted(s.topic);
      const counts = new Map<number, number>();
      for (const x of ns) counts.set(x, (counts.get(x) ?? 0) + 1);
      const missing = Array.from({ length: sent }, (_, i) => i).filter((i) => !counts.has(i));
      const twice = [...counts].filter(([, c]) => c > 1).map(([x]) => x);
      expect({ topic: s.topic, missing, twice }).to.deep.equal({ topic: s.topic, missing: [], twice: [] });
    }
    // Both agents received: the survivor saw every message of both sockets, and each message both
    // agents had before the kill was persisted by one and deduplicated by the other (which one wins
    // that race varies, so the dedupes are counted over both; the killed agent reported every 1 s).
    const metricsOf = (id: string): Record<string, number> => {
      const lines = output.get(id)!.join('').split('\n').filter((l) => l.includes('"agent metrics"'));
      return lines.length ? (JSON.parse(lines[lines.length - 1]) as Record<string, number>) : {};
    };
    await waitFor(() => (metricsOf('agent-B').messagesIn ?? 0) >= 2 * sent, 10_000, 'the survivor to report every message in');
    expect(metricsOf('agent-A').messagesIn ?? 0, 'the killed agent received before the kill').to.be.greaterThan(0);
    expect((metricsOf('agent-A').messagesDeduped ?? 0) + (metricsOf('agent-B').messagesDeduped ?? 0)).to.be.greaterThan(0);
    b.kill('SIGTERM');
  });

  it('when one of two agents dies, the survivor keeps one slot of each redundant socket; the other waits unowned, GET says degraded, until a third agent takes it', async () => {
    const [u1, u2] = [await startUpstream(), await startUpstream()];
    servers.push(u1, u2);
    const open = async (s: UpstreamServer, internalID: string) => {
      const r = await post({ internalID, interWorkingInterface: s.url, redundancy: '2' });
      expect(r.statusCode).to.equal(202);
      return JSON.parse(r.body).socketId as string;
    };
    const [x1, x2] = [await open(u1, 'deg-1'), await open(u2, 'deg-2')];
    // An agent that holds slot 1 of the first socket and slot 2 of the second, then dies: its
    // heartbeat is simply never renewed (what a SIGKILL leaves behind).
    const leaseTable = new LeaseTable(h.clients.doc, h.tables.upstreams);
    const beats = new HeartbeatTable(h.clients.doc, h.tables.upstreams);
    const deadLeaseMs = 2500;
    const dead = { owner: 'agent-dead', epoch: await beats.register('agent-dead', Date.now(), deadLeaseMs) };
    expect(await leaseTable.claim(x1, dead, Date.now())).to.include({ owner: 'agent-dead' });
    expect(await leaseTable.claim(slotRowId(x2), dead, Date.now())).to.include({ owner: 'agent-dead' });
    const opts = { leaseMs: 3000, renewMs: 500, reconcileMs: 200, commandWaitSeconds: 1, backoffBaseMs: 50, backoffMaxMs: 500, healthIntervalMs: 60_000 };
    const b = await startAgent(h.deps('agent'), { ...opts, agentId: 'agent-B' });
    agents.push(b);
    const gets = async (id: string) => {
      const r = await invokeLambda<{ statusCode: number; body: string }>(createHandler(h.deps('control')) as never, httpEvent('GET /websocket', {}, { socketId: id }), { functionName: 'control' });
      return JSON.parse(r.body) as { degraded: boolean; slots: { slot: number; owner: string | null; status: string }[] };
    };
    const slotOwners = async () => Promise.all([x1, slotRowId(x1), x2, slotRowId(x2)].map(ownerOf));
    // Never both slots of one socket on one agent: sampled all along.
    const violations: string[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const [a1, a2, b1, b2] = await slotOwners();
        if (a1 && a1 === a2) violations.push(`${x1}: both slots on ${a1}`);
        if (b1 && b1 === b2) violations.push(`${x2}: both slots on ${b1}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    try {
      // B takes the two free slots at once; once the dead agent's heartbeat expires, its slots go
      // back to the pool (pending, no owner) instead of to B, which holds their twins.
      await waitFor(async () => (await slotOwners()).slice(1, 3).join() === 'agent-B,agent-B', 10_000, 'B to hold the free slots');
      await waitFor(async () => (await slotOwners()).join() === [undefined, 'agent-B', 'agent-B', undefined].join(), deadLeaseMs + 5000, 'the dead agent\'s slots handed back');
      expect((await h.clients.doc.send(new GetCommand({ TableName: h.tables.upstreams, Key: { socketId: x1 }, ConsistentRead: true }))).Item).to.include({ status: 'pending', leaseExpiresAt: 0 });
      // B's slot of each socket connected: slot 2 of the first, slot 1 of the second.
      await waitFor(async () => (await gets(x1)).slots[1].status === 'open' && (await gets(x2)).slots[0].status === 'open', 5000, 'B connected');
      const g1 = await gets(x1);
      expect(g1.degraded).to.equal(true);
      expect(g1.slots.map((x) => [x.slot, x.owner, x.status])).to.deep.equal([
        [1, null, 'pending'],
        [2, 'agent-B', 'open'],
      ]);
      expect((await gets(x2)).degraded).to.equal(true);
      await waitFor(() => b.metrics().redundantSlotsWaiting === 2, 10_000, 'B to report two slots waiting');
      // The upstreams keep one connection each meanwhile (B's): still received, not redundant.
      expect([u1.open.size, u2.open.size]).to.deep.equal([1, 1]);
      await new Promise((r) => setTimeout(r, 1000)); // more reconcile passes: B still never takes them
      expect(await slotOwners()).to.deep.equal([undefined, 'agent-B', 'agent-B', undefined]);

      // A second live agent takes the waiting slots: redundant again.
      const c = await startAgent(h.deps('agent'), { ...opts, agentId: 'agent-C' });
      agents.push(c);
      await waitFor(async () => (await slotOwners()).join() === ['agent-C', 'agent-B', 'agent-B', 'agent-C'].join(), 10_000, 'C to take the waiting slots');
      await waitFor(() => u1.open.size === 2 && u2.open.size === 2, 10_000, 'both slots connected again');
      expect((await gets(x1)).degraded).to.equal(false);
      expect((await gets(x2)).degraded).to.equal(false);
      await waitFor(() => b.metrics().redundantSlotsWaiting === 0, 5000, 'B to report none waiting');
    } finally {
      sampling = false;
      await sampler;
    }
    expect(violations).to.deep.equal([]);
  });
});
