import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createBundler } from '../infra/bundle';
import { FUNCTIONS } from '../lib/functions';
import { median, round } from './lib/stats';
import { printTable } from './lib/table';

/**
 * Benchmark 4: each Lambda bundle, built exactly as the Pulumi program builds it (infra/bundle.ts),
 * its size, and the time a fresh Node process takes to load it (`require('<bundle>/index.js')`),
 * the part of a Lambda cold start our code controls (the runtime's own init is not ours).
 * Reported: median wall time of N fresh processes, minus the median of an empty `node -e ''`.
 */

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');

function spawnMs(code: string): number {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ['-e', code], { stdio: ['ignore', 'ignore', 'pipe'] });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`node -e failed (${r.status}): ${r.stderr.toString().slice(0, 500)}`);
  return ms;
}

export async function benchBundles(o: { quick: boolean }) {
  const n = o.quick ? 3 : 7;
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rtg-bench-bundles-'));
  try {
    const bundler = createBundler(root, outDir);
    const empty = median(Array.from({ length: n }, () => spawnMs('')));
    const rows = FUNCTIONS.map((f) => {
      const b = bundler.lambda(f.name);
      // Also proves the bundle loads and exports what the Lambda runtime calls.
      const code = `const m = require(${JSON.stringify(b.file)}); if (typeof m.handler !== 'function') process.exit(3);`;
      const times = Array.from({ length: n }, () => spawnMs(code));
      const load = median(times);
      return { function: f.name, bytes: b.bytes, loadMs: round(load, 1), loadMsOverNode: round(load - empty, 1), samplesMs: times.map((t) => round(t, 1)) };
    });
    printTable(
      `Lambda bundles (esbuild via infra/bundle.ts): size and load time in a fresh node process (median of ${n}; empty node: ${round(empty, 1)} ms)`,
      ['function', 'bytes', 'KiB', 'load ms', 'load ms over empty node'],
      rows.map((r) => [r.function, r.bytes, round(r.bytes / 1024, 1), r.loadMs, r.loadMsOverNode]),
    );
    return {
      emptyNodeMs: round(empty, 1),
      totalBytes: rows.reduce((s, r) => s + r.bytes, 0),
      maxLoadMsOverNode: Math.max(...rows.map((r) => r.loadMsOverNode)),
      functions: rows,
      reps: n,
    };
  } finally {
    fs.rmSync(outDir, { recursive: true, force: true });
  }
}
