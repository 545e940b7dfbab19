import { expect } from 'chai';
import { GetCommand, QueryCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { createHandler } from '../../../functions/control';
import { startAgent, type AgentOptions, type RunningAgent } from '../../../ec2-agent/agent';
import { INDEX } from '../../../lib/schema';
import { UpstreamStore } from '../../../lib/upstream/store';
import { invokeLambda } from '../../../local/lambda/invoke';
import { FAST_AGENT, httpEvent, startHarness, startUpstream, waitFor, type Harness, type UpstreamServer } from './harness';

/**
 * The ownership audit (ec2-agent/audit.ts) against DynamoDB Local and a real upstream: an idle
 * socket writes nothing and ownership is renewed per agent, so without the audit a socket whose
 * DELETE command was lost, or that another agent took over, would stay open here. The health
 * check (whose write is fenced too) is pushed out of the way, so only the audit can notice.
 */

// The bounds below are one period plus as much again for the pass itself (a Query, a read, a
// close handshake): 1.5 s of slack for a loaded host. Without the audit nothing closes it at all.
const AUDIT_MS = 1500;
const FAST: Partial<AgentOptions> = { ...FAST_AGENT, auditMs: AUDIT_MS };

/**
 * An injected fault: the byDesiredLease index answers without the `hidden` sockets, as it does
 * for a socket claimed a moment before the Query (the index is eventually consistent).
 */
function laggingIndexDoc(doc: DynamoDBDocumentClient, hidden: Set<string>, seen: { hidden: number }): DynamoDBDocumentClient {
  return new Proxy(doc, {
    get(target, prop, receiver) {
      if (prop !== 'send') return Reflect.get(target, prop, receiver);
      return async (cmd: unknown, opts?: unknown) => {
        const r = (await (target.send as (c: unknown, o?: unknown) => Promise<{ Items?: Record<string, unknown>[] }>)(cmd, opts));
        if (!(cmd instanceof QueryCommand) || cmd.input.IndexName !== INDEX.upstreamsByDesiredLease || !r.Items) return r;
        const items = r.Items.filter((it) => !hidden.has(String(it.socketId)));
        seen.hidden += r.Items.length - items.length;
        return { ...r, Items: items };
      };
    },
  });
}

describe('upstream agent: the ownership audit closes what is no longer its own, reading only', function () {
  this.timeout(30_000);
  let h: Harness;
  let control: ReturnType<typeof createHandler>;
  let agent: RunningAgent | undefined;
  let up: UpstreamServer | undefined;
  let hidden: Set<string>;
  let seen: { hidden: number };
  const creds = { asapa_email: 'feed@acme.example', asapa_pass: 'pw' };

  const row = async (socketId: string) =>
    (await h.clients.doc.send(new GetCommand({ TableName: h.tables.upstreams, Key: { socketId }, ConsistentRead: true }))).Item!;

  /** An agent holding one idle socket, connected and recorded open. */
  const open = async (internalID: string) => {
    up = await startUpstream();
    const deps = h.deps('agent');
    agent = await startAgent({ ...deps, clients: { ...deps.clients, doc: laggingIndexDoc(deps.clients.doc, hidden, seen) } }, FAST);
    const ev = httpEvent('POST /websocket', { internalID, interWorkingInterface: up.url, platformID: 'acme', ...creds });
    const r = await invokeLambda<{ statusCode: number; body: string }>(control as never, ev, { functionName: 'control' });
    expect(r.statusCode).to.equal(202);
    const socketId = JSON.parse(r.body).socketId as string;
    await waitFor(() => up!.open.size === 1, 10_000, 'the upstream connection');
    await waitFor(async () => (await row(socketId)).status === 'open', 5000, 'the row recorded open');
    // The POST's open command too (the reconcile may have claimed the socket first).
    await waitFor(() => agent!.metrics().commandsHandled === 1, 5000, 'the open command handled');
    return socketId;
  };

  beforeEach(async () => {
    h = await startHarness();
    control = createHandler(h.deps('control'));
    hidden = new Set();
    seen = { hidden: 0 };
  });
  afterEach(async () => {
    await agent?.stop();
    await up?.stop();
    agent = undefined;
    up = undefined;
    await h.stop();
  });

  it('an idle socket deleted while its close command never arrives gets a clean close within one audit period, released as closed', async () => {
    const socketId = await open('veh-idle');
    const commands = agent!.metrics().commandsHandled;
    // What DELETE writes to the table; the close command that should follow is never sent.
    const deletedAt = Date.now();
    await new UpstreamStore(h.clients.doc, h.tables.upstreams).requestClose(socketId, deletedAt);
    await waitFor(() => up!.closes.length > 0, 3 * AUDIT_MS + 2000, 'the upstream to see the close');
    const closedAfter = up!.closedAt[0] - deletedAt;
    process.stdout.write(`      audit: lost DELETE → upstream closed ${closedAfter} ms later (audit period ${AUDIT_MS} ms)\n`);
    // One period, plus the pass itself (a Query and a read) on a loaded host.
    expect(closedAfter).to.be.below(2 * AUDIT_MS);
    expect(up!.closes).to.deep.equal([1000]);
    await waitFor(async () => (await row(socketId)).status === 'closed', 3000, 'the row released as closed');
    const r = await row(socketId);
    expect(r).to.include({ desired: 'closed', status: 'closed', isActive: false, leaseExpiresAt: 0 });
    expect(r).to.not.have.property('owner');
    expect(agent!.metrics()).to.include({ auditClosed: 1, openSockets: 0, commandsHandled: commands });
  });

  it('a socket the index does not show yet (claimed a moment before) is confirmed by a consistent read and kept open', async () => {
    const socketId = await open('veh-fresh');
    hidden.add(socketId);
    const passes = agent!.metrics().audits;
    // (An audit that closed it would have nothing left to audit: stop waiting then too.)
    await waitFor(() => agent!.metrics().audits >= passes + 2 || up!.closes.length > 0, 4 * AUDIT_MS + 2000, 'two audit passes');
    expect(up!.closes).to.deep.equal([]);
    expect(seen.hidden).to.be.at.least(2); // both passes' Query left it out
    expect(up!.open.size).to.equal(1);
    expect(up!.connections).to.equal(1);
    expect(agent!.metrics()).to.include({ auditClosed: 0, openSockets: 1 });
    expect(await row(socketId)).to.include({ owner: agent!.agentId, desired: 'open', status: 'open' });
  });

  it('a socket another agent took over is cut by the audit, and the row is left to the new owner', async () => {
    const socketId = await open('veh-taken');
    const epoch = Date.now() * 1000 + 7;
    // What a takeover writes (another owner and its epoch).
    await h.clients.doc.send(
      new UpdateCommand({
        TableName: h.tables.upstreams,
        Key: { socketId },
        UpdateExpression: 'SET #o = :other, leaseExpiresAt = :epoch',
        ExpressionAttributeNames: { '#o': 'owner' },
        ExpressionAttributeValues: { ':other': 'agent-other', ':epoch': epoch },
      }),
    );
    const takenAt = Date.now();
    await waitFor(() => up!.closes.length > 0, 3 * AUDIT_MS + 2000, 'the upstream to see the socket cut');
    expect(up!.closedAt[0] - takenAt).to.be.below(2 * AUDIT_MS);
    // Cut, not closed: the new owner may already be connected.
    expect(up!.closes).to.deep.equal([1006]);
    expect(agent!.metrics()).to.include({ auditClosed: 1, openSockets: 0 });
    // Nothing of this agent's lands on the row afterwards.
    await new Promise((r) => setTimeout(r, 500));
    expect(await row(socketId)).to.include({ owner: 'agent-other', leaseExpiresAt: epoch, desired: 'open' });
  });
});
