import { expect } from 'chai';
import { GetCommand, TransactWriteCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { createHandler } from '../../../functions/control';
import { startAgent, type AgentOptions, type RunningAgent } from '../../../ec2-agent/agent';
import { invokeLambda } from '../../../local/lambda/invoke';
import { FAST_AGENT, httpEvent, startHarness, startUpstream, waitFor, type Harness, type UpstreamServer } from './harness';

/**
 * Orphans against DynamoDB Local and real upstreams: a claim that committed but whose answer
 * never came back leaves a socket owned by the agent's live epoch in the table and run nowhere.
 * No other agent may claim it while the heartbeat lives, and the agent does not know it holds it:
 * the ownership audit adopts it (ec2-agent/audit.ts).
 */

const AUDIT_MS = 500;
const FAST: Partial<AgentOptions> = { ...FAST_AGENT, auditMs: AUDIT_MS };
/** An audit period that leaves a test time to fill the agent before the orphan is found (two passes). */
const SLOW_AUDIT_MS = 3000;

/** A claim write (UpdateItem or a transaction that sets the owner) of one of `targets`. */
function isClaimOf(cmd: unknown, targets: Set<string>): boolean {
  const claims = (u: { UpdateExpression?: string; Key?: Record<string, unknown> } | undefined) =>
    !!u && /^SET #owner = :me\b/.test(u.UpdateExpression ?? '') && targets.has(String(u.Key?.socketId));
  if (cmd instanceof UpdateCommand) return claims(cmd.input);
  if (cmd instanceof TransactWriteCommand) return (cmd.input.TransactItems ?? []).some((it) => claims(it.Update));
  return false;
}

/**
 * An injected fault: claims of the sockets in `lose` are written, then answered with a timeout,
 * as when the connection drops after DynamoDB committed (each socket once).
 */
function losingClaimAnswers(doc: DynamoDBDocumentClient, lose: Set<string>, lost: string[]): DynamoDBDocumentClient {
  return new Proxy(doc, {
    get(target, prop, receiver) {
      if (prop !== 'send') return Reflect.get(target, prop, receiver);
      return async (cmd: unknown, opts?: unknown) => {
        const r = await (target.send as (c: unknown, o?: unknown) => Promise<unknown>)(cmd, opts);
        if (!isClaimOf(cmd, lose)) return r;
        const ids = [...lose].filter((id) => isClaimOf(cmd, new Set([id])));
        ids.forEach((id) => lose.delete(id));
        lost.push(...ids);
        throw Object.assign(new Error('Connection timed out after the request was sent'), { name: 'TimeoutError' });
      };
    },
  });
}

describe('upstream agent: a socket claimed in the table but run nowhere (a lost claim answer) is adopted', function () {
  this.timeout(30_000);
  let h: Harness;
  let control: ReturnType<typeof createHandler>;
  const agents: RunningAgent[] = [];
  const upstreams: UpstreamServer[] = [];
  const creds = { asapa_email: 'feed@acme.example', asapa_pass: 'pw' };

  const row = async (socketId: string) =>
    (await h.clients.doc.send(new GetCommand({ TableName: h.tables.upstreams, Key: { socketId }, ConsistentRead: true }))).Item!;

  /** An agent whose claims of the sockets in `lose` commit but are answered with a timeout. */
  const agentLosing = async (lose: Set<string>, lost: string[], opts: Partial<AgentOptions> = {}) => {
    const deps = h.deps('agent');
    const agent = await startAgent({ ...deps, clients: { ...deps.clients, doc: losingClaimAnswers(deps.clients.doc, lose, lost) } }, { ...FAST, ...opts });
    agents.push(agent);
    return agent;
  };

  /** POST /websocket for a fresh upstream; the socket id is derived from platformID and internalID. */
  const post = async (internalID: string) => {
    const up = await startUpstream();
    upstreams.push(up);
    const ev = httpEvent('POST /websocket', { internalID, interWorkingInterface: up.url, platformID: 'acme', ...creds });
    const r = await invokeLambda<{ statusCode: number; body: string }>(control as never, ev, { functionName: 'control' });
    expect(r.statusCode).to.equal(202);
    return { up, socketId: JSON.parse(r.body).socketId as string };
  };

  beforeEach(async () => {
    h = await startHarness();
    control = createHandler(h.deps('control'));
  });
  afterEach(async () => {
    await Promise.all(agents.splice(0).map((a) => a.stop()));
    await Promise.all(upstreams.splice(0).map((u) => u.stop()));
    await h.stop();
  });

  it('the audit finds the socket owned by this agent and not running here, and dials it within two passes', async () => {
    const lost: string[] = [];
    const { up, socketId: orphan } = await post('veh-orphan');
    const lose = new Set([orphan]);
    const agent = await agentLosing(lose, lost);
    await waitFor(() => lost.length === 1, 10_000, 'the orphan claimed with its answer lost');
    const lostAt = Date.now();
    expect(await row(orphan)).to.include({ owner: agent.agentId, desired: 'open' });
    await waitFor(() => up.open.size === 1, 2 * AUDIT_MS + 8000, 'the orphan dialled');
    const adoptedAfter = Date.now() - lostAt;
    process.stdout.write(`      orphan: claim answer lost → dialled ${adoptedAfter} ms later (audit period ${AUDIT_MS} ms)\n`);
    await waitFor(async () => (await row(orphan)).status === 'open', 5000, 'the row recorded open');
    expect(await row(orphan)).to.include({ owner: agent.agentId, desired: 'open', status: 'open' });
    expect(agent.metrics()).to.include({ auditAdopted: 1, openSockets: 1 });
    expect(up.connections).to.equal(1);
  });

  it('an orphan the agent has no room for is released, and another agent opens it', async () => {
    const lose = new Set<string>();
    const lost: string[] = [];
    const orphan = await post('veh-orphan-full');
    lose.add(orphan.socketId);
    // A slower audit, so the only room left surely goes to another socket first.
    const full = await agentLosing(lose, lost, { capacity: 1, auditMs: SLOW_AUDIT_MS });
    await waitFor(() => lost.length === 1, 10_000, 'the orphan claimed with its answer lost');
    const other = await post('veh-fills');
    await waitFor(() => other.up.open.size === 1, 10_000, 'the agent full with the other socket');
    expect(full.metrics().openSockets).to.equal(1);
    const second = await agentLosing(new Set(), []);
    await waitFor(async () => (await row(orphan.socketId)).owner === second.agentId, 2 * SLOW_AUDIT_MS + 8000, 'the orphan released and claimed by the second agent');
    await waitFor(() => orphan.up.open.size === 1, 10_000, 'the orphan dialled by the second agent');
    expect(orphan.up.connections).to.equal(1);
    expect(full.metrics()).to.include({ auditAdopted: 1, openSockets: 1 });
    expect(second.metrics().openSockets).to.equal(1);
  });
});
