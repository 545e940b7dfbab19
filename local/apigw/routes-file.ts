import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { AnyHandler } from '../lambda/invoke';
import { EmulatorOptionError } from './errors';
import type { RouteTarget, WebSocketEmulatorOptions } from './websocket-emulator';

/**
 * `routes.json` for `npm run emulate`: any project's handlers mounted on the emulator.
 *
 *   {
 *     "routeSelectionExpression": "$request.body.action",
 *     "routes": {
 *       "$connect": "./onconnect/app.js#handler",
 *       "sendmessage": "./sendmessage/app.mjs#handler",
 *       "echo": { "handler": "./echo.js", "returnResponse": true, "timeoutMs": 5000 }
 *     },
 *     "authorizer": { "handler": "./auth.js#handler", "identitySource": ["route.request.querystring.token"] }
 *   }
 *
 * Handler paths are relative to the routes file; `#name` picks the export (default `handler`).
 * CommonJS and ESM both load (through `import()`, so `module.exports.handler` is found either as a
 * named export or on `default`); async and callback handlers both run (see lambda/invoke.ts).
 */

export type RoutesFileOptions = Pick<WebSocketEmulatorOptions, 'routes' | 'routeSelectionExpression' | 'authorizer'>;

const ROUTE_KEYS = new Set(['handler', 'returnResponse', 'timeoutMs']);
const AUTHORIZER_KEYS = new Set(['handler', 'identitySource', 'timeoutMs']);

function fail(file: string, where: string, message: string): never {
  throw new EmulatorOptionError(`${file}: ${where}`, message);
}

/** Imports `./dir/file.js#name` relative to `baseDir` and returns that export, which must be a function. */
export async function loadHandler(spec: string, baseDir: string, file: string, where: string): Promise<AnyHandler> {
  if (typeof spec !== 'string' || !spec) fail(file, where, 'expected "./path/to/file.js#exportName"');
  const hash = spec.lastIndexOf('#');
  const modPath = hash >= 0 ? spec.slice(0, hash) : spec;
  const name = hash >= 0 ? spec.slice(hash + 1) : 'handler';
  const abs = path.resolve(baseDir, modPath);
  if (!fs.existsSync(abs)) fail(file, where, `handler file ${abs} does not exist`);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(abs).href)) as Record<string, unknown>;
  } catch (err) {
    fail(file, where, `could not load ${abs}: ${(err as Error).message}`);
  }
  const fromDefault = mod.default && typeof mod.default === 'object' ? (mod.default as Record<string, unknown>)[name] : undefined;
  const fn = typeof mod[name] === 'function' ? mod[name] : fromDefault;
  if (typeof fn !== 'function') {
    fail(file, where, `${abs} has no exported function "${name}" (exports: ${Object.keys(mod).join(', ') || 'none'})`);
  }
  return fn as AnyHandler;
}

/** Reads and validates a routes file and loads every handler it names. */
export async function loadRoutesFile(file: string): Promise<RoutesFileOptions> {
  const abs = path.resolve(file);
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(abs, 'utf8'));
  } catch (err) {
    throw new EmulatorOptionError(`--routes ${file}`, `cannot read it as JSON: ${(err as Error).message}`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) fail(file, '(top level)', 'expected an object with "routes"');
  const doc = raw as Record<string, unknown>;
  for (const k of Object.keys(doc)) {
    if (!['routeSelectionExpression', 'routes', 'authorizer'].includes(k)) fail(file, k, 'unknown key; expected routeSelectionExpression, routes, authorizer');
  }
  const base = path.dirname(abs);
  if (!doc.routes || typeof doc.routes !== 'object' || Array.isArray(doc.routes)) fail(file, 'routes', 'expected an object of route key → "./file.js#export"');
  const routes: Record<string, RouteTarget> = {};
  for (const [key, value] of Object.entries(doc.routes as Record<string, unknown>)) {
    const where = `routes.${key}`;
    const target = typeof value === 'string' ? { handler: value } : value;
    if (!target || typeof target !== 'object' || Array.isArray(target)) fail(file, where, 'expected "./file.js#export" or { handler, returnResponse?, timeoutMs? }');
    const t = target as Record<string, unknown>;
    for (const k of Object.keys(t)) if (!ROUTE_KEYS.has(k)) fail(file, `${where}.${k}`, 'unknown key; expected handler, returnResponse, timeoutMs');
    if (t.returnResponse !== undefined && typeof t.returnResponse !== 'boolean') fail(file, `${where}.returnResponse`, 'expected true or false');
    if (t.timeoutMs !== undefined && typeof t.timeoutMs !== 'number') fail(file, `${where}.timeoutMs`, 'expected a number of milliseconds');
    routes[key] = {
      handler: await loadHandler(t.handler as string, base, file, `${where}.handler`),
      functionName: key.replace(/^\$/, ''),
      ...(t.returnResponse !== undefined ? { returnResponse: t.returnResponse as boolean } : {}),
      ...(t.timeoutMs !== undefined ? { timeoutMs: t.timeoutMs as number } : {}),
    };
  }
  let authorizer: WebSocketEmulatorOptions['authorizer'];
  if (doc.authorizer !== undefined) {
    const a = doc.authorizer as Record<string, unknown>;
    if (!a || typeof a !== 'object' || Array.isArray(a)) fail(file, 'authorizer', 'expected { handler, identitySource?, timeoutMs? }');
    for (const k of Object.keys(a)) if (!AUTHORIZER_KEYS.has(k)) fail(file, `authorizer.${k}`, 'unknown key; expected handler, identitySource, timeoutMs');
    if (a.timeoutMs !== undefined && typeof a.timeoutMs !== 'number') fail(file, 'authorizer.timeoutMs', 'expected a number of milliseconds');
    authorizer = {
      handler: await loadHandler(a.handler as string, base, file, 'authorizer.handler'),
      functionName: 'authorizer',
      ...(a.identitySource !== undefined ? { identitySource: a.identitySource as string[] } : {}),
      ...(a.timeoutMs !== undefined ? { timeoutMs: a.timeoutMs as number } : {}),
    };
  }
  if (doc.routeSelectionExpression !== undefined && typeof doc.routeSelectionExpression !== 'string') {
    fail(file, 'routeSelectionExpression', 'expected a string such as "$request.body.action"');
  }
  return {
    routes,
    ...(doc.routeSelectionExpression !== undefined ? { routeSelectionExpression: doc.routeSelectionExpression as string } : {}),
    ...(authorizer ? { authorizer } : {}),
  };
}
