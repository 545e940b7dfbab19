import fs from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BROWSER_BUNDLE, ensureClientJs } from '../../scripts/build-client';

/**
 * The live dashboard, served by the local stack's HTTP API server under `/dashboard/`:
 *   /dashboard/             the page (index.html); `?topic=NAME` watches NAME at once
 *   /dashboard/app.js       the page script and the chart library (uPlot), bundled by esbuild on first request
 *   /dashboard/realtime-client.js  the client package's built browser bundle (npm run build:client,
 *                           rebuilt once per process so it never lags the sources)
 *   /dashboard/uPlot.min.css the chart library's stylesheet, from node_modules (no CDN)
 *   /dashboard/config.json  where the page connects: websocketUrl, httpUrl, userId, token
 * The bundle is built once per process and kept in memory (~30 ms to build).
 */

export const DASHBOARD_PATH = '/dashboard/';

export interface DashboardConfig {
  websocketUrl: string;
  /** The HTTP API (publish, control API); defaults to the page's own origin. */
  httpUrl?: string;
  /** Auth mode none: the dashboard's user id. Default `dashboard`. */
  userId?: string;
  /** Auth mode jwt: mints a token for the page; called on every config.json request. */
  token?: () => string | Promise<string>;
}

export type DashboardHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));

const require = createRequire(import.meta.url);

let bundle: Promise<string> | undefined;

/** The page script with the chart library, for browsers (ES2020, one ESM file). Cached per process. */
export function dashboardBundle(): Promise<string> {
  bundle ??= (async () => {
    const esbuild = await import('esbuild');
    const out = await esbuild.build({
      entryPoints: [here('./app.ts')],
      bundle: true,
      // The client comes from the built package, loaded by the browser beside app.js.
      external: ['./realtime-client.js'],
      write: false,
      format: 'esm',
      platform: 'browser',
      target: ['es2020'],
      legalComments: 'none',
      logLevel: 'silent',
    });
    return out.outputFiles[0].text;
  })();
  bundle.catch(() => {
    bundle = undefined; // let the next request retry after a failed build
  });
  return bundle;
}

function origin(u: string): string {
  try {
    return new URL(u).origin;
  } catch {
    return '';
  }
}

function securityHeaders(cfg: DashboardConfig): Record<string, string> {
  // The page may only talk to its own origin and the two stack endpoints.
  const connect = ["'self'", origin(cfg.websocketUrl).replace(/^http/, 'ws'), cfg.httpUrl ? origin(cfg.httpUrl) : ''].filter(Boolean).join(' ');
  return {
    'content-security-policy': `default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src ${connect}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-store',
  };
}

/**
 * A request handler for the HTTP server: returns true when it handled the request (any path
 * under /dashboard), false otherwise. `config` may be a function, because the stack knows its
 * URLs only after its servers listen.
 */
export function createDashboardHandler(config: DashboardConfig | (() => DashboardConfig)): DashboardHandler {
  const cfg = () => (typeof config === 'function' ? config() : config);
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://local');
    if (url.pathname !== '/dashboard' && !url.pathname.startsWith(DASHBOARD_PATH)) return false;
    void respond(req, res, url, cfg()).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`dashboard error: ${err instanceof Error ? err.message : String(err)}\n`);
    });
    return true;
  };
}

async function respond(req: IncomingMessage, res: ServerResponse, url: URL, cfg: DashboardConfig): Promise<void> {
  const method = (req.method ?? 'GET').toUpperCase();
  if (method !== 'GET' && method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
    return;
  }
  const headers = securityHeaders(cfg);
  const send = (status: number, type: string, body: string) => {
    res.writeHead(status, { ...headers, 'content-type': type, 'content-length': Buffer.byteLength(body) });
    res.end(method === 'HEAD' ? undefined : body);
  };
  switch (url.pathname) {
    case '/dashboard':
      // Relative asset URLs need the trailing slash.
      res.writeHead(301, { location: `${DASHBOARD_PATH}${url.search}` }).end();
      return;
    case DASHBOARD_PATH:
    case `${DASHBOARD_PATH}index.html`:
      return send(200, 'text/html; charset=utf-8', fs.readFileSync(here('./index.html'), 'utf8'));
    case `${DASHBOARD_PATH}app.js`:
      return send(200, 'text/javascript; charset=utf-8', await dashboardBundle());
    case `${DASHBOARD_PATH}realtime-client.js`:
      await ensureClientJs();
      return send(200, 'text/javascript; charset=utf-8', fs.readFileSync(BROWSER_BUNDLE, 'utf8'));
    case `${DASHBOARD_PATH}uPlot.min.css`:
      return send(200, 'text/css; charset=utf-8', fs.readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8'));
    case `${DASHBOARD_PATH}config.json`: {
      const token = cfg.token ? await cfg.token() : undefined;
      const body = {
        websocketUrl: cfg.websocketUrl,
        httpUrl: cfg.httpUrl ?? null,
        userId: token ? null : (cfg.userId ?? 'dashboard'),
        token: token ?? null,
      };
      return send(200, 'application/json', JSON.stringify(body));
    }
    default:
      return send(404, 'text/plain; charset=utf-8', 'not found\n');
  }
}

/** Convenience for servers that mount one handler: serves from the given config. */
export function serveDashboard(req: IncomingMessage, res: ServerResponse, config: DashboardConfig): boolean {
  return createDashboardHandler(config)(req, res);
}
