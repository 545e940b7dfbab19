#!/usr/bin/env node
// The test command: type check, then the mocha groups, then one closing line that CI reads:
// "N passed, N failed, N skipped". Infra tests run in their own process because Pulumi's
// mock runtime is process-global state.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const args = process.argv.slice(2);
const only = args.find((a) => !a.startsWith('-'));
const groups = [
  { name: 'unit + integration + e2e', spec: ['test/unit/**/*.test.ts', 'test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts'] },
  { name: 'infra (Pulumi mocks)', spec: ['test/infra/**/*.test.ts'], env: { TEST_NO_DYNAMODB: '1' } },
];

let passed = 0;
let failed = 0;
let skipped = 0;

if (!only) {
  process.stdout.write('\n# type check (tsc --noEmit, strict)\n');
  const tsc = spawnSync('npx', ['tsc', '--noEmit', '-p', 'tsconfig.json'], { stdio: 'inherit' });
  if (tsc.status === 0) passed += 1;
  else failed += 1;
}

// Test files under a group's roots, so an empty group is skipped rather than failing mocha.
function hasTests(dir) {
  if (!fs.existsSync(dir)) return false;
  return fs.readdirSync(dir, { withFileTypes: true }).some((e) =>
    e.isDirectory() ? hasTests(path.join(dir, e.name)) : e.name.endsWith('.test.ts'),
  );
}

for (const g of groups) {
  const roots = g.spec.map((s) => s.split('/**')[0]);
  if (only && !roots.some((r) => only.startsWith(r))) continue;
  const specs = only ? [only] : g.spec.filter((s, i) => hasTests(roots[i]));
  if (specs.length === 0) continue;
  const summary = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'rtg-test-')), 'summary.json');
  process.stdout.write(`\n# ${g.name}\n`);
  const r = spawnSync('npx', ['mocha', ...specs], {
    stdio: 'inherit',
    env: { ...process.env, ...(g.env ?? {}), TEST_SUMMARY_FILE: summary },
  });
  if (fs.existsSync(summary)) {
    const s = JSON.parse(fs.readFileSync(summary, 'utf8'));
    passed += s.passed;
    failed += s.failed;
    skipped += s.skipped;
    if (r.status !== 0 && s.failed === 0) failed += 1; // crashed after the run ended
  } else if (r.status !== 0) {
    // Mocha died before reporting (e.g. a file that does not load): count it as a failure.
    failed += 1;
  }
}

console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed === 0 ? 0 : 1);
