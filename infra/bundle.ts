import { buildSync, type BuildOptions } from 'esbuild';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/**
 * esbuild bundling, run synchronously inside the Pulumi program (no closure serialisation: a
 * Lambda is the file `functions/<name>.ts`, exactly what the local stack runs).
 *
 * Decisions:
 * - Everything is bundled, `@aws-sdk/*` included. The Node.js Lambda runtime ships an SDK v3,
 *   but at whatever version AWS last rolled out; bundling pins the versions package-lock.json
 *   tested (lib/ mixes @aws-sdk clients with @smithy/node-http-handler). It costs ~1 MB of
 *   bundle and a few ms of cold start.
 * - Lambda bundles are CommonJS `index.js` exporting `handler` (`index.handler`), target node20
 *   (runs unchanged on the nodejs22.x runtime). The agent bundle is ESM (`agent.mjs`) because
 *   it is a long-running program that may use top-level await.
 * - Minified, no source maps: a stack trace in a minified bundle is still readable thanks to
 *   `keepNames`, and maps would double the upload.
 */

export class BundleError extends Error {
  readonly code = 'bundle_failed';
  constructor(
    readonly entry: string,
    message: string,
  ) {
    super(message);
    this.name = 'BundleError';
  }
}

export interface Bundle {
  /** Source entry point (absolute). */
  readonly entry: string;
  /** The bundle file (absolute). */
  readonly file: string;
  /** Directory holding only the bundle: what a Lambda FileArchive zips. */
  readonly dir: string;
  readonly bytes: number;
  /** sha256 (hex) of the bundle; changes exactly when the code does. */
  readonly sha256: string;
}

const COMMON: BuildOptions = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  minify: true,
  keepNames: true,
  legalComments: 'none',
  logLevel: 'silent',
  write: true,
};

/** `functions/<name>.ts` under the repository root. */
export function handlerEntry(root: string, fn: string): string {
  return path.join(root, 'functions', `${fn}.ts`);
}

export function agentEntry(root: string): string {
  return path.join(root, 'ec2-agent', 'main.ts');
}

function build(entry: string, outfile: string, options: BuildOptions, what: string): Bundle {
  if (!fs.existsSync(entry)) {
    throw new BundleError(entry, `${what}: ${entry} does not exist; it must exist (and export its entry point) before the stack can be built`);
  }
  fs.rmSync(path.dirname(outfile), { recursive: true, force: true });
  fs.mkdirSync(path.dirname(outfile), { recursive: true });
  try {
    buildSync({ ...COMMON, ...options, entryPoints: [entry], outfile });
  } catch (err) {
    const errors = (err as { errors?: { text: string; location?: { file: string; line: number } | null }[] }).errors ?? [];
    const detail = errors.map((e) => `${e.location ? `${e.location.file}:${e.location.line}: ` : ''}${e.text}`).join('\n  ');
    throw new BundleError(entry, `${what}: esbuild failed for ${entry}\n  ${detail || (err as Error).message}`);
  }
  const content = fs.readFileSync(outfile);
  if (content.length === 0) throw new BundleError(entry, `${what}: ${outfile} is empty`);
  return { entry, file: outfile, dir: path.dirname(outfile), bytes: content.length, sha256: createHash('sha256').update(content).digest('hex') };
}

/** Bundles one Lambda handler file to `<outDir>/lambda/<fn>/index.js`. */
export function bundleLambda(entry: string, outDir: string, fn: string): Bundle {
  return build(entry, path.join(outDir, 'lambda', fn, 'index.js'), { format: 'cjs' }, `function ${fn}`);
}

/** Bundles the upstream agent to `<outDir>/agent/agent.mjs`. */
export function bundleAgent(entry: string, outDir: string): Bundle {
  return build(
    entry,
    path.join(outDir, 'agent', 'agent.mjs'),
    {
      format: 'esm',
      // CommonJS dependencies bundled into ESM (ws, the SDK's) call require() for Node
      // built-ins; ESM has no require, so give the bundle one.
      banner: { js: "import { createRequire as __rtgCreateRequire } from 'node:module'; const require = __rtgCreateRequire(import.meta.url);" },
    },
    'agent',
  );
}

/** What the program needs from a bundler; tests of the program pass the real one. */
export interface Bundler {
  lambda(fn: string): Bundle;
  agent(): Bundle;
}

/**
 * Where one stack's bundles go: `<root>/.build/<stack>`. Per stack because every build first
 * empties its output directory, so `pulumi up --stack prod` running beside a dev preview would
 * otherwise delete (or replace) the bundles the other run is hashing and uploading.
 */
export function stackBuildDir(root: string, stack: string): string {
  if (!/^[A-Za-z0-9_.-]+$/.test(stack) || stack === '.' || stack === '..') throw new Error(`stack name "${stack}" cannot name a build directory`);
  return path.join(root, '.build', stack);
}

/** The real bundler: sources under `root`, output under `outDir` (default `<root>/.build`). */
export function createBundler(root: string, outDir = path.join(root, '.build')): Bundler {
  const cache = new Map<string, Bundle>();
  const once = (k: string, f: () => Bundle) => {
    let b = cache.get(k);
    if (!b) cache.set(k, (b = f()));
    return b;
  };
  return {
    lambda: (fn) => once(`lambda:${fn}`, () => bundleLambda(handlerEntry(root, fn), outDir, fn)),
    agent: () => once('agent', () => bundleAgent(agentEntry(root), outDir)),
  };
}
