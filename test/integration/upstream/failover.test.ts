import { expect } from 'chai';
import type { ChildProcess } from 'node:child_process';
import { GetCommand, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { GuardFailedError, ItemStore } from '../../../lib/stores/items';
import { LeaseTable } from '../../../lib/upstream/leases';
import { createHandler } from '../../../functions/control';
import { invokeLambda } from '../../../local/lambda/invoke';
import { isHeartbeatKey } from '../../../lib/upstream/heartbeats';
import { httpEvent, spawnAgentProcess, startHarness, startUpstream, waitFor, type Harness, type UpstreamServer } from './harness';

/**
 * Two agents as real processes (`ec2-agent/main.ts`, configured only by environment, as on EC2).
 * One is killed with SIGKILL while it owns sockets: no cleanup runs, its heartbeat just stops
 * being renewed. The survivor must own every socket within one lease period plus one reconcile
 * interval, and at no sampled moment may a socket have two holders — neither in the table
 * (owner changes only from the dead agent to the survivor, after the kill) nor on the wire
 * (each upstream sees at most one open connection at a time).
 */

// A lease long enough that a live agent on a loaded host keeps its heartbeat (its local deadline
// is lease − renew = 3 s), so any move from A to B is a takeover after the kill. The bound on
// the takeover keeps SLACK_MS beside lease + reconcile for the claims and the sampler's scans,
// and stays under two leases, so a takeover a whole lease late still fails.
const LEASE_MS = 4000;
const RENEW_MS = 1000;
const RECONCILE_MS = 500;
const SLACK_MS = 1500;

describe('agent failover between processes (SIGKILL)', function () {
  this.timeout(60_000);
  let h: Harness;
  const children: ChildProcess[] = [];
  const servers: UpstreamServer[] = [];
  const output = new Map<string, string[]>();

  const spawnAgent = (agentId: string, capacity: number): ChildProcess =>
    spawnAgentProcess(
      h,
      agentId,
      {
        AGENT_CAPACITY: String(capacity),
        AGENT_LEASE_MS: String(LEASE_MS),
        AGENT_RENEW_MS: String(RENEW_MS),
        AGENT_RECONCILE_MS: String(RECONCILE_MS),
        AGENT_HEALTH_INTERVAL_MS: '5000',
      },
      { children, output },
    );

  const owners = async (): Promise<Map<string, string | undefined>> => {
    const r = await h.clients.doc.send(new ScanCommand({ TableName: h.tables.upstreams, ConsistentRead: true }));
    // Only socket rows: the agents' heartbeat rows share the table.
    const sockets = (r.Items ?? []).filter((i) => !isHeartbeatKey(String(i.socketId)));
    return new Map(sockets.map((i) => [String(i.socketId), i.owner as string | undefined]));
  };

  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await Promise.all(servers.map((s) => s.stop()));
    await h.stop();
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed') {
      for (const [id, lines] of output) process.stderr.write(`--- ${id} ---\n${lines.join('').slice(-4000)}\n`);
    }
  });

  it('the survivor owns every socket within lease + reconcile, never two holders, no write of the dead epoch lands after; SIGTERM releases and exits 0', async () => {
    const control = createHandler(h.deps('control'));
    const post = async (s: UpstreamServer, internalID: string) => {
      const r = await invokeLambda<{ statusCode: number; body: string }>(
        control as never,
        httpEvent('POST /websocket', { internalID, interWorkingInterface: s.url, platformID: 'acme', asapa_email: 'a@b.c', asapa_pass: 'pw' }),
        { functionName: 'control' },
      );
      expect(r.statusCode).to.equal(202);
      return JSON.parse(r.body).socketId as string;
    };
    for (let i = 0; i < 6; i++) servers.push(await startUpstream());
    const ids: string[] = [];

    // A takes three (its capacity); B, started later with room for all six, takes the rest.
    const a = spawnAgent('agent-A', 3);
    for (let i = 0; i < 3; i++) ids.push(await post(servers[i], `fo-${i}`));
    await waitFor(async () => [...(await owners()).values()].filter((o) => o === 'agent-A').length === 3, 20_000, 'agent-A to own three');
    const b = spawnAgent('agent-B', 6);
    for (let i = 3; i < 6; i++) ids.push(await post(servers[i], `fo-${i}`));
    await waitFor(async () => [...(await owners()).values()].filter((o) => o === 'agent-B').length === 3, 20_000, 'agent-B to own three');
    await waitFor(() => servers.every((s) => s.open.size === 1), 10_000, 'every upstream connected');

    // Sample ownership continuously from here on.
    const history = new Map<string, string[]>(ids.map((id) => [id, []]));
    let killedAt = 0;
    const violations: string[] = [];
    let sampling = true;
    const sample = async () => {
      const now = Date.now();
      const o = await owners();
      for (const id of ids) {
        const owner = o.get(id) ?? '-';
        const hist = history.get(id)!;
        if (hist[hist.length - 1] !== owner) {
          hist.push(owner);
          if (owner === 'agent-B' && hist.includes('agent-A') && !killedAt) violations.push(`${id} moved to B while A was alive`);
        }
      }
      servers.forEach((s, i) => {
        if (s.open.size > 1) violations.push(`upstream ${i} had ${s.open.size} connections at ${now}`);
      });
    };
    const sampler = (async () => {
      while (sampling) {
        await sample();
        await new Promise((r) => setTimeout(r, 25));
      }
    })();

    await new Promise((r) => setTimeout(r, 3 * RENEW_MS)); // a few renewals while both live
    // A's fence (owner + epoch) as its rows carry it: a write of that life arriving late must never land.
    const aRow = (await h.clients.doc.send(new GetCommand({ TableName: h.tables.upstreams, Key: { socketId: ids[0] }, ConsistentRead: true }))).Item!;
    const deadFence = { owner: 'agent-A', epoch: Number(aRow.leaseExpiresAt) };
    killedAt = Date.now();
    a.kill('SIGKILL');
    await waitFor(async () => [...(await owners()).values()].every((o) => o === 'agent-B'), LEASE_MS + RECONCILE_MS + 5000, 'agent-B to own all');
    const ownedAllAfter = Date.now() - killedAt;
    await waitFor(() => servers.every((s) => s.open.size === 1), 5000, 'every upstream reconnected');
    const connectedAllAfter = Date.now() - killedAt;
    sampling = false;
    await sampler;
    await sample(); // the state the waits above observed

    process.stdout.write(`      failover: B owned all ${ownedAllAfter} ms and reconnected all ${connectedAllAfter} ms after SIGKILL (bound ${LEASE_MS + RECONCILE_MS} ms + request slack)\n`);
    expect(violations).to.deep.equal([]);
    // No write of the dead agent's epoch lands after the claim: a message write (item + history,
    // guarded in its transaction) and a counter write, sent now with A's fence, as the agent.
    const agentDoc = h.deps('agent').clients.doc;
    const items = new ItemStore(agentDoc, { itemsTable: h.tables.items, historyTable: h.tables.history, historyTtlSeconds: 3600 });
    const leaseTable = new LeaseTable(agentDoc, h.tables.upstreams);
    const topic = String(aRow.topic);
    const historyBefore = (await h.clients.doc.send(new QueryCommand({ TableName: h.tables.history, KeyConditionExpression: 'topic = :t', ExpressionAttributeValues: { ':t': topic }, ConsistentRead: true }))).Items!.length;
    let late: unknown;
    await items.write(topic, { late: true }, { guard: leaseTable.ownerGuard(ids[0], deadFence) }).catch((e) => (late = e));
    expect(late).to.be.instanceOf(GuardFailedError);
    expect(await leaseTable.addCounters(ids[0], deadFence, { messagesIn: 1 })).to.equal('refused');
    const historyAfter = (await h.clients.doc.send(new QueryCommand({ TableName: h.tables.history, KeyConditionExpression: 'topic = :t', ExpressionAttributeValues: { ':t': topic }, ConsistentRead: true }))).Items!.length;
    expect(historyAfter).to.equal(historyBefore);
    // Slack on top of lease + reconcile: the reconcile pass, the claims and the sampler's period.
    expect(ownedAllAfter).to.be.at.most(LEASE_MS + RECONCILE_MS + SLACK_MS);
    expect(servers.every((s) => s.maxConcurrent === 1)).to.equal(true);
    for (const id of ids.slice(0, 3)) expect(history.get(id)).to.deep.equal(['agent-A', 'agent-B']);
    for (const id of ids.slice(3)) expect(history.get(id)).to.deep.equal(['agent-B']);

    // SIGTERM: B releases everything and exits 0.
    const exit = new Promise<number | null>((r) => b.once('exit', (code) => r(code)));
    b.kill('SIGTERM');
    expect(await exit).to.equal(0);
    const after = await owners();
    expect([...after.values()].every((o) => o === undefined)).to.equal(true);
    await waitFor(() => servers.every((s) => s.open.size === 0), 3000, 'upstreams closed');
    expect(servers.every((s) => s.closes.includes(1001))).to.equal(true);
  });
});
