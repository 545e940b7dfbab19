import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { INDEX } from '../lib/schema';
import { queryAll } from '../lib/stores/dynamo';
import { slotRowId } from '../lib/upstream/socket-id';
import type { AgentOptions } from '../ec2-agent/config';
import { DEFAULTS } from '../ec2-agent/config';
import { basicAuthorization } from '../ec2-agent/upstream-connection';
import { BENCH_UPSTREAM_CREDS, seedUpstreams, setupAgentBench, type AgentBench } from './agent/setup';
import { dynamoDbFloor } from './agent/dynamodb-floor';
import { Child, cpuSeconds } from './lib/child';
import { round } from './lib/stats';
import { printTable } from './lib/table';

/**
 * Agent failover at the DEFAULT heartbeat, lease and reconcile periods (only capacity is raised):
 *
 * 1. claim rate: N desired-open rows seeded with no agent running, then one agent started;
 *    `claimRatePerSecond` is N ÷ the time from its start until it holds all N claims (the
 *    ownership moved: read from the table's index, `ownedInTable`), `claimConnectRatePerSecond` N ÷ the time until the
 *    upstream server also has N authenticated connections (secret read, dial, handshake);
 * 2. `failoverSeconds1k`: a second agent joins, the first (holding all N) is SIGKILLed; the
 *    time until the survivor holds N and the server has N connections again (and the CPU the
 *    survivor spent meanwhile);
 * 3. the floor: the same N claims made by DynamoDB Local alone from this process (also once
 *    before 1, to warm its JVM up), to tell the agent's share from the emulator's;
 * 4. loss through a kill: K plain and K redundant (`redundancy: 2`, `dedupe-path: $.id`) sockets
 *    over two agents, the upstream sending numbered messages at a steady rate, one agent
 *    SIGKILLed mid-stream. Once the stream ends, the survivor's persist queues are left to drain
 *    (every message it received persisted, deduplicated or dropped, and the history rows not
 *    moving for a while); then the history table is read: numbers never persisted are lost,
 *    numbers persisted twice are duplicates. After the kill each redundant socket keeps ONE slot
 *    (the survivor's); its other slot waits, unowned, for a second agent: counted as
 *    `redundantSlotsWaiting`, not as a failure.
 */

const AGENT_CHILD = fileURLToPath(new URL('./agent/agent-child.ts', import.meta.url));
const UPSTREAM_CHILD = fileURLToPath(new URL('./agent/upstream-child.ts', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
type Metrics = Record<string, number>;

async function until(what: string, ms: number, ok: () => Promise<boolean>): Promise<void> {
  const deadline = performance.now() + ms;
  while (!(await ok())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** The agentId of each agent child started here. */
const agentIds = new WeakMap<Child, string>();

async function startAgentChild(name: string, b: AgentBench, options: Partial<AgentOptions>): Promise<Child> {
  const c = await Child.start(name, AGENT_CHILD);
  const { agentId } = await c.call<{ agentId: string }>('start', { env: b.env, endpoints: b.endpoints, options });
  agentIds.set(c, agentId);
  return c;
}

/**
 * Desired-open sockets that some agent life owns, read from the table's index (an owned row's
 * leaseExpiresAt is its owner's epoch, above any clock value). The claim phase is timed by
 * this, not by asking the agent: once the claims are answered the agent is busy dialling, and
 * its answer to a metrics call was seen to lag the table by up to a second.
 */
async function ownedInTable(b: AgentBench): Promise<number> {
  const rows = await queryAll(b.clients.doc, {
    TableName: b.config.tables.upstreams,
    IndexName: INDEX.upstreamsByDesiredLease,
    KeyConditionExpression: 'desired = :open AND leaseExpiresAt > :clock',
    ExpressionAttributeValues: { ':open': 'open', ':clock': Date.now() * 10 },
  });
  return rows.length;
}

function sigkill(c: Child): Promise<unknown> {
  c.proc.kill('SIGKILL');
  return c.exit;
}

export async function benchAgentFailover(o: { dynamodbEndpoint: string; quick: boolean; loss?: boolean }) {
  const N = Number(process.env.BENCH_FAILOVER_SOCKETS ?? 1000);
  const capacity = 2 * N;
  const loss = { plain: o.quick ? 5 : 10, redundant: o.quick ? 5 : 10, rate: 10, seconds: 20, killAfterMs: 3000 };
  const children: Child[] = [];
  // Warm-up: DynamoDB Local's JVM compiles its hot paths in the first seconds of use; measured
  // cold, the agent's claims took up to twice as long. The floor is measured again afterwards.
  const wb = await setupAgentBench(o.dynamodbEndpoint, 'agent-warm');
  const coldFloor = await dynamoDbFloor(wb, N).finally(() => wb.cleanup());
  const b = await setupAgentBench(o.dynamodbEndpoint, 'agent-fo');
  try {
    const upstream = await Child.start('agent-upstream', UPSTREAM_CHILD);
    children.push(upstream);
    const { wsUrl } = await upstream.call<{ wsUrl: string }>('listen', { authorization: basicAuthorization(BENCH_UPSTREAM_CREDS) });
    const connections = async () => (await upstream.call<{ connections: number }>('stats')).connections;

    // 1. Claim rate.
    await seedUpstreams(b.control, { from: 0, to: N, url: () => wsUrl, tag: 'fo' });
    const a = await startAgentChild('agent-a', b, { capacity });
    children.push(a);
    const c0 = performance.now();
    let claimSeconds = NaN;
    await until(`${N} upstream connections`, 120_000, async () => {
      if (Number.isNaN(claimSeconds) && (await ownedInTable(b)) >= N) claimSeconds = (performance.now() - c0) / 1000;
      return !Number.isNaN(claimSeconds) && (await connections()) >= N;
    });
    const claimConnectSeconds = (performance.now() - c0) / 1000;

    // 2. Failover of N sockets.
    const s = await startAgentChild('agent-b', b, { capacity });
    children.push(s);
    await sleep(1000);
    const cpu0 = cpuSeconds(s.pid);
    await sigkill(a);
    const k0 = performance.now();
    await until(`the survivor to reopen ${N} sockets`, 120_000, async () => (await s.call<Metrics>('metrics')).openSockets >= N && (await connections()) >= N);
    const failoverSeconds = (performance.now() - k0) / 1000;
    const survivorCpuSeconds = cpuSeconds(s.pid) - cpu0;
    await s.stop(20_000);
    process.stdout.write(`agent failover: ${N} sockets claimed in ${round(claimSeconds, 2)} s, connected in ${round(claimConnectSeconds, 2)} s; SIGKILL → reopened in ${round(failoverSeconds, 2)} s\n`);

    // 3. The floor: what DynamoDB Local alone does for the same claims, from this process.
    const fb = await setupAgentBench(o.dynamodbEndpoint, 'agent-floor');
    const floor = await dynamoDbFloor(fb, N).finally(() => fb.cleanup());

    // 4. Messages lost through a kill, without and with redundant homing.
    // Fresh tables: the N sockets above are still desired open and would be claimed again.
    const lb = o.loss === false ? undefined : await setupAgentBench(o.dynamodbEndpoint, 'agent-loss');
    const lossRun = !lb ? { lostWithoutRedundancy: NaN, lostWithRedundancy: NaN, duplicatesWithRedundancy: NaN, redundantSlotsWaiting: NaN } : await lossThroughKill(lb, upstream, wsUrl, loss, children).finally(() => lb.cleanup());

    printTable(
      `Agent failover at the default periods (lease ${DEFAULTS.leaseMs} ms, heartbeat ${DEFAULTS.renewMs} ms, reconcile ${DEFAULTS.reconcileMs} ms); ${os.cpus()[0]?.model} × ${os.cpus().length}`,
      ['measure', 'value'],
      [
        [`claim ${N} sockets, s`, round(claimSeconds, 2)],
        ['claim rate /s', Math.round(N / claimSeconds)],
        [`claim+connect ${N} sockets, s`, round(claimConnectSeconds, 2)],
        [`DynamoDB Local alone: claims/s (transactions of 100, ${N} rows)`, floor.txClaimsPerSecond],
        ['DynamoDB Local alone: conditional UpdateItem/s (32 in flight)', floor.conditionalUpdatesPerSecond],
        [`SIGKILL → ${N} reopened, s`, round(failoverSeconds, 2)],
        ['survivor CPU meanwhile, s', round(survivorCpuSeconds, 2)],
        [`lost without redundancy (${loss.plain} sockets × ${loss.rate}/s)`, lossRun.lostWithoutRedundancy],
        [`lost with redundancy (${loss.redundant} sockets)`, lossRun.lostWithRedundancy],
        ['duplicates with redundancy', lossRun.duplicatesWithRedundancy],
        ['redundant slots waiting for a second agent after the kill', lossRun.redundantSlotsWaiting],
      ],
    );
    return {
      cpuModel: os.cpus()[0]?.model,
      failoverSockets: N,
      claimRatePerSecond: Math.round(N / claimSeconds),
      claimConnectRatePerSecond: Math.round(N / claimConnectSeconds),
      failoverSeconds1k: round(failoverSeconds, 2),
      failoverSurvivorCpuSeconds: round(survivorCpuSeconds, 2),
      dynamodbLocalFloor: floor,
      dynamodbLocalFloorColdWarmUp: coldFloor,
      failoverSettings: { leaseMs: DEFAULTS.leaseMs, renewMs: DEFAULTS.renewMs, reconcileMs: DEFAULTS.reconcileMs },
      ...lossRun,
    };
  } finally {
    for (const c of children.reverse()) await c.stop(10_000).catch(() => undefined);
    await b.cleanup();
  }
}

async function lossThroughKill(
  b: AgentBench,
  upstream: Child,
  wsUrl: string,
  o: { plain: number; redundant: number; rate: number; seconds: number; killAfterMs: number },
  children: Child[],
) {
  const url = (i: number) => `${wsUrl}/loss-${i}`;
  const plain = await seedUpstreams(b.control, { from: 0, to: o.plain, url, tag: 'plain' });
  const redundant = await seedUpstreams(b.control, { from: o.plain, to: o.plain + o.redundant, url, tag: 'red', headers: { redundancy: '2', 'dedupe-path': '$.id' } });
  const paths = (from: number, n: number) => Array.from({ length: n }, (_, i) => new URL(url(from + i)).pathname);
  const plainPaths = paths(0, o.plain);
  const redPaths = paths(o.plain, o.redundant);
  const x = await startAgentChild('agent-x', b, { capacity: 1000 });
  const y = await startAgentChild('agent-y', b, { capacity: 1000 });
  children.push(x, y);
  await until('every plain socket once and every redundant one twice', 60_000, async () => {
    const [p, r] = [await upstream.call<number[]>('connectionsByPath', { paths: plainPaths }), await upstream.call<number[]>('connectionsByPath', { paths: redPaths })];
    return p.every((n) => n === 1) && r.every((n) => n === 2);
  });
  // The victim: the agent holding more plain sockets (they are what a kill can lose).
  const [mx, my] = [await x.call<Metrics>('metrics'), await y.call<Metrics>('metrics')];
  const [victim, survivor] = mx.openSockets >= my.openSockets ? [x, y] : [y, x];
  const streaming = upstream.call<{ perPath: number }>('stream', { paths: [...plainPaths, ...redPaths], rate: o.rate, seconds: o.seconds });
  await sleep(o.killAfterMs);
  await sigkill(victim);
  const { perPath } = await streaming;

  const topics = [...plain, ...redundant].map((s) => s.topic);
  const historyRows = async () => {
    let n = 0;
    for (const topic of topics) n += (await numbersOf(b, topic)).length;
    return n;
  };
  // Drained: every message the survivor received is persisted, deduplicated or dropped, and the
  // history rows have stopped moving for QUIET_MS (a generous bound: a loaded host may be slow).
  const QUIET_MS = 3000;
  let last = -1;
  let stableSince = performance.now();
  await until('the survivor to drain its persist queues', 120_000, async () => {
    const m = await survivor.call<Metrics>('metrics');
    const settled = m.messagesIn <= m.messagesPersisted + (m.messagesDeduped ?? 0) + m.messagesDropped;
    const rows = await historyRows();
    if (rows !== last) [last, stableSince] = [rows, performance.now()];
    return settled && performance.now() - stableSince >= QUIET_MS;
  });

  const count = async (list: { topic: string }[]) => {
    let lost = 0;
    let dup = 0;
    for (const { topic } of list) {
      const ns = await numbersOf(b, topic);
      const distinct = new Set(ns);
      lost += perPath - [...distinct].filter((n) => n >= 0 && n < perPath).length;
      dup += ns.length - distinct.size;
    }
    return { lost, dup };
  };
  const p = await count(plain);
  const r = await count(redundant);
  // Each redundant socket keeps one slot on the survivor; the other waits for a second agent.
  let redundantSlotsWaiting = 0;
  for (const s of redundant) {
    for (const id of [s.socketId, slotRowId(s.socketId)]) {
      const row = (await b.clients.doc.send(new GetCommand({ TableName: b.config.tables.upstreams, Key: { socketId: id }, ConsistentRead: true }))).Item;
      if (row?.owner !== agentIds.get(survivor)) redundantSlotsWaiting++;
    }
  }
  return {
    lossSettings: { ...o, killed: 'the agent holding more plain sockets' },
    lostWithoutRedundancy: p.lost,
    duplicatesWithoutRedundancy: p.dup,
    lostWithRedundancy: r.lost,
    duplicatesWithRedundancy: r.dup,
    redundantSlotsWaiting,
    messagesSentPerSocket: perPath,
  };
}

/** The numbers (`n`) of every history row of `topic`. */
async function numbersOf(b: AgentBench, topic: string): Promise<number[]> {
  const ns: number[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const r = await b.clients.doc.send(new QueryCommand({ TableName: b.config.tables.history, KeyConditionExpression: 'topic = :t', ExpressionAttributeValues: { ':t': topic }, ExclusiveStartKey: start, ConsistentRead: true }));
    for (const it of r.Items ?? []) ns.push(Number((it.data as { n?: number })?.n));
    start = r.LastEvaluatedKey;
  } while (start);
  return ns;
}
