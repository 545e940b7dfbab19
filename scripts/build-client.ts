/**
 * Builds the client package `@realtime-gateway/client` into client/dist (`npm run build:client`):
 *   index.mjs / index.cjs         ESM and CommonJS for bundlers and Node (not minified: readable traces)
 *   realtime-client.min.js        one minified ESM file for browsers without a bundler (the dashboard)
 *   types/…, index.d.mts          declarations (tsc), the ESM entry re-exporting the CommonJS-mode tree
 * and prints the browser bundle's gzipped size, which must stay within BROWSER_BUDGET_BYTES.
 * Everything runs offline from node_modules (esbuild, typescript).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build, type BuildOptions } from 'esbuild';

export const CLIENT_DIR = fileURLToPath(new URL('../client/', import.meta.url));
export const DIST_DIR = path.join(CLIENT_DIR, 'dist');
export const BROWSER_BUNDLE = path.join(DIST_DIR, 'realtime-client.min.js');
/** ESM build: what the dashboard and Node ESM users load. */
export const ESM_BUNDLE = path.join(DIST_DIR, 'index.mjs');
/** Minified + gzipped browser bundle budget (issue 16): 8 KB. */
export const BROWSER_BUDGET_BYTES = 8 * 1024;

export interface ClientBuild {
  browserBytes: number;
  browserGzipBytes: number;
}

const common: BuildOptions = {
  entryPoints: [path.join(CLIENT_DIR, 'index.ts')],
  bundle: true,
  // The SDK runs in browsers and Node alike: nothing platform-specific may be pulled in.
  platform: 'neutral',
  target: ['es2020'],
  legalComments: 'none',
  logLevel: 'silent',
};

/** Writes through a temporary file, so a concurrent reader never sees half a bundle. */
function writeAtomic(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

async function bundle(opts: BuildOptions, file: string): Promise<Uint8Array> {
  const out = await build({ ...common, ...opts, write: false });
  const bytes = out.outputFiles![0]!.contents;
  writeAtomic(file, bytes);
  return bytes;
}

/** The JavaScript builds (about 100 ms). */
export async function buildClientJs(): Promise<ClientBuild> {
  fs.mkdirSync(DIST_DIR, { recursive: true });
  await bundle({ format: 'esm' }, ESM_BUNDLE);
  await bundle({ format: 'cjs' }, path.join(DIST_DIR, 'index.cjs'));
  const min = await bundle({ format: 'esm', platform: 'browser', minify: true }, BROWSER_BUNDLE);
  return { browserBytes: min.length, browserGzipBytes: gzipSync(min, { level: 9 }).length };
}

/** Declarations with tsc (a few seconds): needed for the tarball, not for the dashboard. */
export function buildClientTypes(): void {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(CLIENT_DIR, 'tsconfig.build.json')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`client declarations failed:\n${r.stdout}${r.stderr}`);
  // tsc mirrors the sources (client/ and the shared lib/protocol/) under types/. That tree is
  // CommonJS-mode (extensionless relative imports resolve there); the ESM entry re-exports it.
  writeAtomic(path.join(DIST_DIR, 'types', 'package.json'), '{ "type": "commonjs" }\n');
  writeAtomic(path.join(DIST_DIR, 'index.d.mts'), "export * from './types/client/index.js';\n");
}

export async function buildClient(): Promise<ClientBuild> {
  const sizes = await buildClientJs();
  buildClientTypes();
  return sizes;
}

let jsOnce: Promise<ClientBuild> | undefined;
/** buildClientJs once per process (the dashboard and tests share it). */
export function ensureClientJs(): Promise<ClientBuild> {
  jsOnce ??= buildClientJs();
  jsOnce.catch(() => (jsOnce = undefined));
  return jsOnce;
}

export function formatSize(b: ClientBuild): string {
  return `browser bundle ${path.relative(process.cwd(), BROWSER_BUNDLE)}: ${b.browserBytes} B minified, ${b.browserGzipBytes} B gzipped (budget ${BROWSER_BUDGET_BYTES} B)`;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const b = await buildClient();
  console.log(formatSize(b));
  if (b.browserGzipBytes > BROWSER_BUDGET_BYTES) {
    console.error(`the browser bundle is over its budget by ${b.browserGzipBytes - BROWSER_BUDGET_BYTES} B`);
    process.exit(1);
  }
}
