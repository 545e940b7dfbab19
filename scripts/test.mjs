#!/usr/bin/env node
// The test command: type check, then the mocha groups, then one closing line that CI reads:
// "N passed, N failed, N skipped". Infra tests run in their own process because Pulumi's
// mock runtime is process-global state.
//
// `node scripts/test.mjs [path ...]` runs only the named test files or folders (no type check).
// Every way a run can go wrong without a failing test counts as a failure and says why: a path
// that names no test, a mocha process that ends without its summary, or one that exits non-zero
// after a run with no failed test (an error after the last test).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

const require = createRequire(import.meta.url);
// Run the local binaries with this node directly: `npx` costs more than a second per process.
const mochaBin = require.resolve('mocha/bin/mocha.js');
const tscBin = require.resolve('typescript/bin/tsc');

const groups = [
  { name: 'unit + integration + e2e', roots: ['test/unit', 'test/integration', 'test/e2e'], suffix: '.test.ts' },
  { name: 'infra (Pulumi mocks)', roots: ['test/infra'], suffix: '.test.ts', env: { TEST_NO_DYNAMODB: '1' } },
  // Deliberately bad runs that the runner's own tests feed it: never part of a full run.
  { name: 'runner fixtures', roots: ['test/fixtures/runner'], suffix: '.fixture.ts', env: { TEST_NO_DYNAMODB: '1' }, byPathOnly: true },
];

/** Longest a mocha group may run; a full run of the largest group takes about 5 minutes. */
const GROUP_TIMEOUT_MS = Number(process.env.TEST_GROUP_TIMEOUT_MS ?? 20 * 60_000);

let passed = 0;
let failed = 0;
let skipped = 0;
const failures = [];

function close() {
  if (failures.length > 0) {
    console.log(`\n# failed (${failures.length})`);
    for (const f of failures) console.log(`- ${f.title}${f.file ? ` [${f.file}]` : ''}: ${f.error}`);
  }
  console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
  process.exit(failed === 0 ? 0 : 1);
}

function refuse(why) {
  process.stderr.write(`\n# test command refused: ${why}\n`);
  failed += 1;
  close();
}

// Files named like tests under dir, so a folder argument runs exactly what a full run would.
function hasTests(dir, suffix) {
  if (!fs.existsSync(dir)) return false;
  return fs.readdirSync(dir, { withFileTypes: true }).some((e) =>
    e.isDirectory() ? hasTests(path.join(dir, e.name), suffix) : e.name.endsWith(suffix),
  );
}

// Each path argument becomes a mocha spec of the one group whose root holds it, or the run is refused.
function specsFromArgs(args) {
  const unknown = args.filter((a) => a.startsWith('-'));
  if (unknown.length > 0) refuse(`unknown option ${unknown.join(' ')}: the test command takes only test file or folder paths`);
  const byGroup = new Map();
  for (const arg of args) {
    const rel = path.relative(process.cwd(), path.resolve(arg)).split(path.sep).join('/');
    const group = groups.find((g) => g.roots.some((r) => rel === r || rel.startsWith(`${r}/`)));
    if (!group) {
      const roots = groups.flatMap((g) => g.roots).join(', ');
      refuse(`${arg} is in no test group: test files live under ${roots}`);
    }
    if (!fs.existsSync(rel)) refuse(`${arg}: no such file or folder`);
    let spec = rel;
    if (fs.statSync(rel).isDirectory()) {
      if (!hasTests(rel, group.suffix)) refuse(`${arg} holds no test file (*${group.suffix})`);
      spec = `${rel}/**/*${group.suffix}`;
    } else if (!rel.endsWith(group.suffix)) {
      refuse(`${arg} is not a test file: test files of ${group.roots.join(', ')} end in ${group.suffix}`);
    }
    byGroup.set(group, [...(byGroup.get(group) ?? []), spec]);
  }
  return byGroup;
}

function fullRunSpecs() {
  const byGroup = new Map();
  for (const g of groups) {
    if (g.byPathOnly) continue;
    const specs = g.roots.filter((r) => hasTests(r, g.suffix)).map((r) => `${r}/**/*${g.suffix}`);
    if (specs.length > 0) byGroup.set(g, specs);
  }
  return byGroup;
}

// Counts one mocha process into the totals; anything but a summary that matches the exit code fails.
async function runGroup(g, specs) {
  const summary = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'rtg-test-')), 'summary.json');
  process.stdout.write(`\n# ${g.name}\n`);
  // Its own process group: mocha runs the tests in a child node (for tsx's loader), and a hung run
  // is killed whole; killing only mocha's launcher would leave the child holding our output open.
  const child = spawn(process.execPath, [mochaBin, ...specs], {
    stdio: 'inherit',
    detached: true,
    env: { ...process.env, ...(g.env ?? {}), TEST_SUMMARY_FILE: summary },
  });
  // A test that leaves a timer or socket open keeps mocha from exiting: bounded, it is one
  // failure with its reason, not a CI job that runs until it is cancelled.
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    process.stderr.write(`\n# ${g.name}: mocha had not exited after ${GROUP_TIMEOUT_MS / 60_000} min (a test left a timer or socket open?): killed, counted as a failure\n`);
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }, GROUP_TIMEOUT_MS);
  // Detached, the group no longer gets the terminal's Ctrl-C: pass it (and a CI cancel) on.
  const forward = (sig) => {
    try {
      process.kill(-child.pid, sig);
    } catch {
      // already gone
    }
    process.exit(130);
  };
  process.once('SIGINT', forward);
  process.once('SIGTERM', forward);
  const r = await new Promise((resolve) => {
    child.on('error', (error) => resolve({ status: null, signal: null, error }));
    child.on('exit', (status, signal) => resolve({ status, signal }));
  });
  clearTimeout(timer);
  process.off('SIGINT', forward);
  process.off('SIGTERM', forward);
  if (timedOut && fs.existsSync(summary)) failed += 1; // the run itself may have passed
  const exit = r.status ?? r.signal ?? r.error?.message;
  if (!fs.existsSync(summary)) {
    // E.g. a process.exit() in code under test, a file that does not load, or a killed process.
    process.stderr.write(`\n# ${g.name}: mocha ended (exit ${exit}) without writing its summary: counted as a failure\n`);
    failed += 1;
    return;
  }
  const s = JSON.parse(fs.readFileSync(summary, 'utf8'));
  passed += s.passed;
  failed += s.failed;
  skipped += s.skipped;
  failures.push(...(s.failures ?? []));
  if (r.status !== 0 && s.failed === 0 && !timedOut) {
    process.stderr.write(`\n# ${g.name}: mocha exited ${exit} after a run with no failed test (an error after the last test?): counted as a failure\n`);
    failed += 1;
  }
}

const args = process.argv.slice(2);
const plan = args.length > 0 ? specsFromArgs(args) : fullRunSpecs();
if (args.length === 0) {
  process.stdout.write('\n# type check (tsc --noEmit, strict)\n');
  const tsc = spawnSync(process.execPath, [tscBin, '--noEmit', '-p', 'tsconfig.json'], { stdio: 'inherit' });
  if (tsc.status === 0) passed += 1;
  else failed += 1;
}
if (plan.size === 0) refuse('found no test files');
for (const [g, specs] of plan) await runGroup(g, specs);
close();
