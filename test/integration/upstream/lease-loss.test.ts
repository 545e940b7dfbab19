import { expect } from 'chai';
import { GetCommand, QueryCommand, TransactWriteCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { createHandler } from '../../../functions/control';
import { startAgent, type AgentOptions, type RunningAgent } from '../../../ec2-agent/agent';
import { invokeLambda } from '../../../local/lambda/invoke';
import { HeartbeatTable, heartbeatKey } from '../../../lib/upstream/heartbeats';
import { FAST_AGENT, httpEvent, startHarness, startUpstream, waitFor, type Harness, type UpstreamServer } from './harness';

/**
 * An agent must stop using its sockets once it can no longer prove its heartbeat, whatever
 * DynamoDB does, and a socket that is not its own any more must be cut at once. The agent runs against DynamoDB Local through a document client that
 * can be told to hang chosen calls (never settle, ignore the abort signal): what a half-open
 * connection does to an SDK client without request timeouts.
 */

// The margin between the agent's local deadline and its heartbeat's expiry in the table is one
// renew period: a second here, so a loaded host's late timers cannot eat it (at 300 ms it could).
// The health check stays at FAST_AGENT's 60 s: a ping missed under load would redial the socket,
// and these tests are about leases.
const LEASE_MS = 3500;
const RENEW_MS = 1000;
const FAST: Partial<AgentOptions> = { ...FAST_AGENT, leaseMs: LEASE_MS, renewMs: RENEW_MS };

interface Gate {
  /** Every DynamoDB call hangs until `heal()`: a partitioned agent. */
  hangAll: boolean;
  heal(): void;
  readonly healed: Promise<void>;
  hangGet: boolean;
  /** Gets that hung (`hangGet`). */
  hungGets: number;
  /** Holds item writes (ItemStore's TransactWrite) until `releaseItems()`: a slow DynamoDB. */
  holdItems: boolean;
  heldItems: number;
  readonly released: Promise<void>;
  releaseItems(): void;
}

function newGate(): Gate {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let heal!: () => void;
  const healed = new Promise<void>((r) => (heal = r));
  return { heal, healed, hangAll: false, hangGet: false, hungGets: 0, holdItems: false, heldItems: 0, released, releaseItems: () => release() };
}

function gatedDoc(doc: DynamoDBDocumentClient, gate: Gate): DynamoDBDocumentClient {
  return new Proxy(doc, {
    get(target, prop, receiver) {
      if (prop !== 'send') return Reflect.get(target, prop, receiver);
      return (cmd: unknown, opts?: unknown) => {
        if (gate.hangAll) return gate.healed.then(() => (target.send as (c: unknown, o?: unknown) => Promise<unknown>)(cmd, opts));
        if (gate.hangGet && cmd instanceof GetCommand) {
          gate.hungGets++;
          return new Promise(() => {});
        }
        if (gate.holdItems && cmd instanceof TransactWriteCommand) {
          gate.heldItems++;
          return gate.released.then(() => (target.send as (c: unknown, o?: unknown) => Promise<unknown>)(cmd, opts));
        }
        return (target.send as (c: unknown, o?: unknown) => Promise<unknown>)(cmd, opts);
      };
    },
  });
}

describe('upstream agent: losing its sockets (partition, refusals) and DELETE without per-socket renewals', function () {
  this.timeout(30_000);
  let h: Harness;
  let control: ReturnType<typeof createHandler>;
  let gate: Gate;
  let agent: RunningAgent | undefined;
  let up: UpstreamServer | undefined;
  const creds = { asapa_email: 'feed@acme.example', asapa_pass: 'pw' };

  const open = async (internalID: string) => {
    up = await startUpstream();
    const ev = httpEvent('POST /websocket', { internalID, interWorkingInterface: up.url, platformID: 'acme', ...creds });
    const r = await invokeLambda<{ statusCode: number; body: string }>(control as never, ev, { functionName: 'control' });
    expect(r.statusCode).to.equal(202);
    const socketId = JSON.parse(r.body).socketId as string;
    const deps = h.deps('agent');
    // The heartbeat's own pool (dedicatedDoc) is behind the same gate: a partition cuts both.
    const clients = { ...deps.clients, doc: gatedDoc(deps.clients.doc, gate), dedicatedDoc: (name: string, n: number) => gatedDoc(deps.clients.dedicatedDoc(name, n), gate) };
    agent = await startAgent({ ...deps, clients }, FAST);
    await waitFor(() => up!.open.size === 1, 10_000, 'the upstream connection');
    return socketId;
  };
  const setRow = (socketId: string, expr: string, values: Record<string, unknown>, names?: Record<string, string>) =>
    h.clients.doc.send(new UpdateCommand({ TableName: h.tables.upstreams, Key: { socketId }, UpdateExpression: expr, ExpressionAttributeValues: values, ExpressionAttributeNames: names }));

  beforeEach(async () => {
    h = await startHarness();
    control = createHandler(h.deps('control'));
    gate = newGate();
  });
  afterEach(async () => {
    gate.hangAll = false;
    gate.heal();
    gate.hangGet = false;
    gate.releaseItems();
    await agent?.stop();
    await up?.stop();
    agent = undefined;
    up = undefined;
    await h.stop();
  });

  it('a partitioned agent (every DynamoDB call hangs) cuts its sockets before its heartbeat could expire in the table', async () => {
    const socketId = await open('veh-hung');
    gate.hangAll = true;
    await waitFor(() => up!.closes.length > 0, 3 * LEASE_MS, 'the upstream to see the socket dropped');
    // The heartbeat as the table holds it: the last one that landed before the partition. Until
    // its leaseExpiresAt no other agent may claim the socket; the agent cut it before that.
    const epoch = Number((await h.clients.doc.send(new GetCommand({ TableName: h.tables.upstreams, Key: { socketId }, ConsistentRead: true }))).Item!.leaseExpiresAt);
    const beat = (await h.clients.doc.send(new GetCommand({ TableName: h.tables.upstreams, Key: { socketId: heartbeatKey(epoch) }, ConsistentRead: true }))).Item!;
    expect(up!.closedAt[0]).to.be.below(Number(beat.leaseExpiresAt));
    expect(up!.closes[0]).to.equal(1006); // cut, not closed: another agent may own it by now
    expect(agent!.metrics().leasesLost).to.be.at.least(1);
    // Once the partition heals, the calls stuck in it settle and the agent stops promptly.
    gate.hangAll = false;
    gate.heal();
    const t = Date.now();
    await agent!.stop();
    // Under the SDK's 3 s connection timeout: nothing waits for a timeout to give up.
    expect(Date.now() - t).to.be.below(2500);
  });

  it('a refused counter write cuts the socket first, even when the follow-up read hangs', async () => {
    const socketId = await open('veh-stolen');
    gate.hangGet = true;
    // Another agent took the socket (e.g. after a pause longer than the heartbeat lease).
    await setRow(socketId, 'SET #o = :other, leaseExpiresAt = :epoch', { ':other': 'intruder', ':epoch': Date.now() * 1000 }, { '#o': 'owner' });
    up!.send({ after: 'stolen' }); // traffic, so the next counter flush writes (and is refused)
    const t = Date.now();
    await waitFor(() => up!.closes.length > 0, 10_000, 'the upstream to see the socket dropped');
    // At the next counter flush or so; nothing else could cut it this soon (health check and
    // audit every 60 s, and the heartbeat was never lost).
    expect(up!.closedAt[0] - t).to.be.below(2 * FAST.counterFlushMs! + 2000);
    expect(agent!.metrics().leasesLost).to.equal(0);
    expect(up!.closes).to.deep.equal([1006]);
    // The read that follows the cut was made, and hangs: the cut did not wait for it.
    await waitFor(() => gate.hungGets > 0, 5000, 'the follow-up read');
    const row = (await h.clients.doc.send(new GetCommand({ TableName: h.tables.upstreams, Key: { socketId } }))).Item!;
    expect(row.owner).to.equal('intruder');
  });

  it('a refused counter write drops the messages still waiting to be persisted instead of writing them after the new owner', async () => {
    const socketId = await open('veh-backlog');
    const topic = 'platform:acme:veh-backlog';
    // DynamoDB is slow: the first item write is in flight, the other four wait in the queue.
    gate.holdItems = true;
    for (let i = 0; i < 5; i++) up!.send({ i, ts: Date.now() });
    await waitFor(() => gate.heldItems === 1 && agent!.metrics().messagesIn === 5, 10_000, 'one write in flight and four queued');
    // Another agent takes the socket; from here on it writes the topic's newer messages.
    await setRow(socketId, 'SET #o = :other, leaseExpiresAt = :epoch', { ':other': 'intruder', ':epoch': Date.now() * 1000 }, { '#o': 'owner' });
    await waitFor(() => up!.closes.length > 0, 10_000, 'the upstream to see the socket dropped');
    gate.releaseItems();
    // Every message is accounted for: the waiting ones are dropped, and even the write that was in
    // flight is refused — its transaction checks that this agent still owns the socket.
    await waitFor(() => agent!.metrics().messagesPersisted + agent!.metrics().messagesDropped === 5, 5000, 'the persister to settle');
    expect(agent!.metrics()).to.include({ messagesPersisted: 0, messagesDropped: 5 });
    const history = await h.clients.doc.send(
      new QueryCommand({ TableName: h.tables.history, KeyConditionExpression: 'topic = :t', ExpressionAttributeValues: { ':t': topic }, ConsistentRead: true }),
    );
    expect(history.Items!.map((it) => (it.data as { i: number }).i)).to.deep.equal([]);
  });

  it('a DELETE whose close command another agent received reaches the owner through its heartbeat: a clean close within one heartbeat period, released as closed', async () => {
    const socketId = await open('veh-deleted');
    for (let i = 0; i < 3; i++) up!.send({ i, ts: Date.now() });
    await waitFor(() => agent!.metrics().messagesPersisted === 3, 5000, 'the messages persisted');
    // Their counters on the row too: with none left to write, no counter flush can find the
    // DELETE (it would close the socket the same way); only the hint can.
    await waitFor(
      async () => (await h.clients.doc.send(new GetCommand({ TableName: h.tables.upstreams, Key: { socketId }, ConsistentRead: true }))).Item!.messagesPersisted === 3,
      5000,
      'the counters on the row',
    );
    // What DELETE writes; then what the agent that received the close command does with a socket
    // another agent owns (SocketSupervisor.ensureClosed): a hint on the owner's heartbeat row.
    await setRow(socketId, 'SET desired = :closed', { ':closed': 'closed' });
    const epoch = Number((await h.clients.doc.send(new GetCommand({ TableName: h.tables.upstreams, Key: { socketId }, ConsistentRead: true }))).Item!.leaseExpiresAt);
    const hintedAt = Date.now();
    await new HeartbeatTable(h.clients.doc, h.tables.upstreams).hint(epoch, socketId);
    await waitFor(() => up!.closes.length > 0, 3 * RENEW_MS + 5000, 'the upstream to see the close');
    // The next heartbeat, its answer and the closing handshake; the audit (60 s) is far off.
    expect(up!.closedAt[0] - hintedAt).to.be.below(RENEW_MS + 1500);
    expect(agent!.metrics()).to.include({ auditClosed: 0, leasesLost: 0 });
    expect(up!.closes).to.deep.equal([1000]);
    await waitFor(
      async () => (await h.clients.doc.send(new GetCommand({ TableName: h.tables.upstreams, Key: { socketId }, ConsistentRead: true }))).Item!.status === 'closed',
      3000,
      'the row released as closed',
    );
    const row = (await h.clients.doc.send(new GetCommand({ TableName: h.tables.upstreams, Key: { socketId }, ConsistentRead: true }))).Item!;
    expect(row).to.include({ status: 'closed', desired: 'closed', isActive: false, leaseExpiresAt: 0, messagesIn: 3, messagesPersisted: 3 });
    expect(row).to.not.have.property('owner');
  });
});
