import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { buildClient } from '../../../scripts/build-client';
import { startTestStack, type LocalStack } from '../../support/stack';
import { publish } from './helpers';

/**
 * The client as a user gets it: `npm pack ./client`, installed offline into a fresh project,
 * then used from an ES module and from a CommonJS script (plain Node, `ws` as the WebSocket)
 * against the local stack, and type-checked from both module systems (tsc, nodenext).
 */

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../../..');
const require = createRequire(import.meta.url);

// Subscribes, prints the snapshot, publishes from the socket, prints the event it gets back. The
// publish's answer and the event come by independent paths (the handler's reply, fan-out), in
// either order: it closes once it has both.
const consumer = (importLine: string) => `${importLine}
const [url, topic] = process.argv.slice(2);
const client = connect(url, { WebSocket, userId: 'pkg-user' });
const out = (o) => console.log(JSON.stringify(o));
const timer = setTimeout(() => { out({ error: 'timeout' }); process.exit(2); }, 15000);
let waiting = 2;
const got = () => {
  if (--waiting > 0) return;
  clearTimeout(timer);
  client.close();
};
client.subscribe(topic, (data, info) => {
  out({ snapshot: data, seq: info.seq });
  client.publish(topic, { from: 'the package' }).then((r) => (out({ published: r.seq }), got()), (e) => out({ error: e.code }));
}, (data, info) => {
  out({ event: data, seq: info.seq });
  got();
});
`;

const typeCheck = (importLine: string) => `${importLine}
import { WebSocket } from 'ws';
const c: RealtimeClient = connect('ws://127.0.0.1:1/', { WebSocket, maxAttempts: 1 });
const sub = c.subscribe<{ v: number }>('t', (d, info) => d.v + info.seq, (d, info) => d.v + (info.latencyMs ?? 0));
c.on('state', (s) => s.state);
c.on('error', (e: RealtimeError) => e.code);
sub.unsubscribe();
// @ts-expect-error a typo in an option is a type error
connect('ws://x/', { pingIntervalMS: 1 });
`;

describe('client package: npm pack, install offline, use from ESM and CommonJS', function () {
  this.timeout(120_000);
  let stack: LocalStack;
  let dir: string;

  before(async () => {
    await buildClient();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rt-client-pkg-'));
    const packed = await run('npm', ['pack', './client', '--pack-destination', dir, '--json'], { cwd: ROOT });
    const [{ filename }] = JSON.parse(packed.stdout) as { filename: string }[];
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, version: '1.0.0' }));
    await run('npm', ['install', `./${filename}`, '--offline', '--no-audit', '--no-fund', '--ignore-scripts'], { cwd: dir });
    // ws is an optional peer dependency: the repo's copy stands in for the user's.
    fs.symlinkSync(path.dirname(require.resolve('ws/package.json')), path.join(dir, 'node_modules', 'ws'), 'dir');
    fs.symlinkSync(path.join(ROOT, 'node_modules', '@types'), path.join(dir, 'node_modules', '@types'), 'dir');
    stack = await startTestStack();
  });
  after(async () => {
    await stack?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the tarball holds the builds, declarations and a README, not the sources', () => {
    const pkg = path.join(dir, 'node_modules', '@realtime-gateway', 'client');
    const files = fs.readdirSync(path.join(pkg, 'dist'));
    expect(files).to.include.members(['index.mjs', 'index.cjs', 'index.d.mts', 'realtime-client.min.js', 'types']);
    expect(fs.existsSync(path.join(pkg, 'client.ts'))).to.equal(false);
    expect(fs.existsSync(path.join(pkg, 'dist', 'types', 'client', 'index.d.ts'))).to.equal(true);
    expect(fs.readFileSync(path.join(pkg, 'README.md'), 'utf8')).to.include('npm install @realtime-gateway/client');
  });

  for (const [kind, file, importLine] of [
    ['an ES module', 'esm.mjs', "import { connect } from '@realtime-gateway/client';\nimport { WebSocket } from 'ws';"],
    ['CommonJS', 'cjs.cjs', "const { connect } = require('@realtime-gateway/client');\nconst { WebSocket } = require('ws');"],
  ] as const) {
    it(`from ${kind}: the installed package subscribes, gets the snapshot, publishes and receives the event`, async () => {
      const topic = `pkg:${randomBytes(3).toString('hex')}`;
      expect(await publish(stack.endpoints.httpUrl, topic, { n: 1 })).to.equal(1);
      fs.writeFileSync(path.join(dir, file), consumer(importLine));
      const { stdout } = await run(process.execPath, [file, stack.endpoints.websocketUrl, topic], { cwd: dir, timeout: 30_000 });
      const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines).to.deep.include({ snapshot: { n: 1 }, seq: 1 });
      expect(lines).to.deep.include({ published: 2 });
      expect(lines).to.deep.include({ event: { from: 'the package' }, seq: 2 });
    });
  }

  it('its declarations type-check a consumer from ESM and from CommonJS (tsc, module nodenext)', async () => {
    fs.writeFileSync(path.join(dir, 'check.mts'), typeCheck("import { connect, type RealtimeClient, type RealtimeError } from '@realtime-gateway/client';"));
    fs.writeFileSync(path.join(dir, 'check.cts'), typeCheck("import { connect, type RealtimeClient, type RealtimeError } from '@realtime-gateway/client';"));
    const tsc = require.resolve('typescript/bin/tsc');
    const args = [tsc, '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--types', 'node', '--skipLibCheck', 'check.mts', 'check.cts'];
    const r = await run(process.execPath, args, { cwd: dir }).catch((e: { stdout: string }) => ({ stdout: e.stdout, failed: true }));
    expect(r.stdout).to.equal('');
  });
});
