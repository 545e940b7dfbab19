import { expect } from 'chai';
import { spawn, spawnSync, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { eventually } from '../support/wait';

/**
 * `npm start` as a user runs it: the real entry point in a child process, until "ready", then
 * Ctrl-C (SIGINT) — and, harder, SIGKILL, which runs no cleanup at all. Either way no process
 * of the stack (the DynamoDB Local JVM above all) may outlive it.
 */

const ROOT = path.resolve(import.meta.dirname, '../..');

function descendants(pid: number): number[] {
  let out: string;
  try {
    out = execFileSync('ps', ['-e', '-o', 'pid=,ppid='], { encoding: 'utf8' });
  } catch {
    return [];
  }
  const children = new Map<number, number[]>();
  for (const line of out.trim().split('\n')) {
    const [p, pp] = line.trim().split(/\s+/).map(Number);
    children.set(pp, [...(children.get(pp) ?? []), p]);
  }
  const all: number[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      all.push(c);
      walk(c);
    }
  };
  walk(pid);
  return all;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};


async function startStack(endpointsFile: string, extraArgs: readonly string[] = []): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'local/start.ts', '--ws-port', '0', '--http-port', '0', '--endpoints-file', endpointsFile, ...extraArgs],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'warn' } },
  );
  let out = '';
  child.stdout!.on('data', (b) => (out += b));
  child.stderr!.on('data', (b) => (out += b));
  const ready = await eventually(() => /local stack ready/.test(out) || child.exitCode !== null, 60_000);
  if (!ready || child.exitCode !== null) {
    child.kill('SIGKILL');
    throw new Error(`npm start did not become ready:\n${out}`);
  }
  return { child, output: () => out };
}

/** A CloudWatch EMF document: `_aws.CloudWatchMetrics` names the metrics, values are top-level fields. */
interface Emf {
  _aws: { CloudWatchMetrics: { Namespace: string; Metrics: { Name: string }[] }[] };
  [key: string]: unknown;
}

/** The EMF lines among the output (each one JSON document on a line of its own). */
function emfLines(output: string): Emf[] {
  return output
    .split('\n')
    .filter((l) => l.startsWith('{') && l.includes('"_aws"'))
    .map((l) => JSON.parse(l) as Emf);
}

/** Publishes `data` to `topic` through the HTTP API and resolves once a subscriber got the event. */
async function publishAndReceive(endpoints: { websocketUrl: string; httpUrl: string }, topic: string): Promise<void> {
  const ws = new WebSocket(`${endpoints.websocketUrl}?userId=metrics-watcher`);
  await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)));
  const frames: any[] = [];
  ws.on('message', (m) => frames.push(JSON.parse(String(m))));
  ws.send(JSON.stringify({ action: 'subscribe', topic }));
  expect(await eventually(() => frames.some((f) => f.type === 'snapshot'), 10_000), 'the snapshot').to.equal(true);
  const r = await fetch(`${endpoints.httpUrl}/publish`, { method: 'POST', body: JSON.stringify({ topic, data: { v: 1 } }) });
  expect(r.status, await r.text()).to.equal(202);
  expect(await eventually(() => frames.some((f) => f.type === 'event' && f.topic === topic), 10_000), 'the event').to.equal(true);
  ws.close();
}

describe('npm start (local/start.ts)', function () {
  this.timeout(120_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rtg-start-'));
  const started: ChildProcess[] = [];
  const startTracked = async (file: string, extraArgs: readonly string[] = []) => {
    const s = await startStack(file, extraArgs);
    started.push(s.child);
    return s;
  };
  // A test that failed or timed out before its own Ctrl-C must not leave a stack running: its
  // pipes would keep this process (and the run) alive. SIGKILL: the stack's JVM goes with it
  // (the last test shows that).
  afterEach(() => {
    for (const child of started.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reaches ready, writes the endpoints, serves a WebSocket client, and Ctrl-C leaves no process behind', async () => {
    const file = path.join(dir, 'endpoints.json');
    const { child, output } = await startTracked(file);
    const endpoints = JSON.parse(fs.readFileSync(file, 'utf8'));
    expect(endpoints.websocketUrl).to.match(/^ws:\/\/127\.0\.0\.1:\d+\/local$/);
    expect(endpoints.httpUrl).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(endpoints.managementUrl).to.match(/^http:\/\/127\.0\.0\.1:\d+\/local$/);
    expect(output()).to.contain(endpoints.websocketUrl);

    // A real client through the real handlers: subscribe and get a snapshot.
    const ws = new WebSocket(`${endpoints.websocketUrl}?userId=alice`);
    await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)));
    const reply = new Promise<any>((resolve) => ws.once('message', (m) => resolve(JSON.parse(String(m)))));
    ws.send(JSON.stringify({ action: 'subscribe', topic: 'vehicle:3' }));
    expect(await reply).to.include({ type: 'snapshot', topic: 'vehicle:3', seq: 0 });
    ws.close();

    // A publish and its fan-out write metrics only when asked (--metrics): nothing extra by default.
    await publishAndReceive(endpoints, 'quiet:1');
    await new Promise((r) => setTimeout(r, 500)); // the fan-out's batch flushes just after its posts
    expect(emfLines(output())).to.deep.equal([]);

    // `npm run redrive` finds the running stack through the endpoints file (an empty DLQ here).
    const redrive = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/redrive.ts', '--endpoints', file], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(redrive.status, redrive.stderr).to.equal(0);
    expect(JSON.parse(redrive.stdout.trim().split('\n').at(-1)!)).to.include({ messages: 0, kept: 0 });

    const tree = descendants(child.pid!);
    expect(tree.length, 'the stack runs DynamoDB Local as a child').to.be.greaterThan(0);
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGINT');
    expect(await exited).to.equal(0);
    expect(await eventually(() => tree.every((p) => !alive(p)), 10_000), `left behind: ${tree.filter(alive)}`).to.equal(true);
  });

  it('with --metrics prints the EMF lines of publish and fan-out (namespace RealtimeGateway/local) in its output', async () => {
    const file = path.join(dir, 'endpoints-metrics.json');
    const { child, output } = await startTracked(file, ['--metrics']);
    try {
      expect(output()).to.match(/Metrics +CloudWatch EMF lines \(namespace RealtimeGateway\/local\)/);
      await publishAndReceive(JSON.parse(fs.readFileSync(file, 'utf8')), 'loud:1');
      const names = () => new Set(emfLines(output()).flatMap((d) => d._aws.CloudWatchMetrics.flatMap((c) => c.Metrics.map((m) => m.Name))));
      expect(await eventually(() => ['published', 'records', 'deliveries', 'latencyMs'].every((n) => names().has(n)), 10_000), `metrics seen: ${[...names()]}`).to.equal(true);
      for (const d of emfLines(output())) expect(d._aws.CloudWatchMetrics[0]!.Namespace).to.equal('RealtimeGateway/local');
    } finally {
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      child.kill('SIGINT');
      expect(await exited).to.equal(0);
    }
  });

  it('leaves no JVM behind even when killed with SIGKILL (no cleanup runs)', async () => {
    const { child } = await startTracked(path.join(dir, 'endpoints2.json'));
    const tree = descendants(child.pid!);
    expect(tree.length).to.be.greaterThan(0);
    child.kill('SIGKILL');
    expect(await eventually(() => tree.every((p) => !alive(p)), 15_000), `left behind: ${tree.filter(alive)}`).to.equal(true);
  });
});
