import { randomBytes } from 'node:crypto';
import { startDemoPlatform, type DemoPlatform, type DemoStream } from './platform';

/**
 * `npm run demo` / `npm start -- --demo`: starts the sample upstream platform and asks the local
 * stack to connect to it through the upstream control API, exactly as a real integrator would
 * (seed 000): one `POST /websocket` per stream with the headers `internalID`,
 * `interWorkingInterface`, `platformID`, `asapa_email`, `asapa_pass` (and `topic`). The agent then
 * opens the sockets and every message lands on its topic, live for subscribers and the dashboard.
 */

export interface DemoOptions {
  /** The local stack's HTTP API (control API + publish). */
  httpUrl: string;
  /** Platform port; 0 (default) picks a free one. */
  port?: number;
  intervalMs?: number;
  batteries?: number;
  vehicles?: number;
  /** Extra headers for the control API (e.g. an Authorization header when it requires one). */
  headers?: Record<string, string>;
  fetch?: typeof fetch;
}

export interface Demo {
  readonly topics: string[];
  readonly platform: DemoPlatform;
  /** Control API socket ids, one per stream. */
  readonly socketIds: string[];
  stop(): Promise<void>;
}

export class DemoError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'DemoError';
  }
}

const PLATFORM_ID = { battery: 'demo-bess', vehicle: 'demo-fleet' } as const;

function controlHeaders(platformUrl: string, s: DemoStream, creds: { email: string; pass: string }): Record<string, string> {
  return {
    internalID: `${s.kind}-${s.index}`,
    interWorkingInterface: `${platformUrl}${s.path}`,
    platformID: PLATFORM_ID[s.kind],
    asapa_email: creds.email,
    asapa_pass: creds.pass,
    topic: s.topic,
  };
}

export async function startDemo(opts: DemoOptions): Promise<Demo> {
  const doFetch = opts.fetch ?? fetch;
  // Fresh credentials every run: the platform only accepts these, and they travel to the stack
  // only in the POST headers (the control API seals them in the secret store).
  const creds = { email: 'demo@example.com', pass: randomBytes(12).toString('hex') };
  const platform = await startDemoPlatform({
    port: opts.port,
    intervalMs: opts.intervalMs,
    batteries: opts.batteries,
    vehicles: opts.vehicles,
    credentials: creds,
  });
  const base = opts.httpUrl.replace(/\/+$/, '');
  const opened: { socketId: string; headers: Record<string, string> }[] = [];
  const closeAll = async () => {
    await Promise.all(
      opened.map(async (o) => {
        try {
          const r = await doFetch(`${base}/websocket?socketId=${o.socketId}`, { method: 'DELETE', headers: opts.headers });
          await r.body?.cancel();
        } catch {
          /* the stack may already be gone */
        }
      }),
    );
  };
  try {
    for (const s of platform.streams) {
      const headers = { ...(opts.headers ?? {}), ...controlHeaders(platform.url, s, creds) };
      const res = await doFetch(`${base}/websocket`, { method: 'POST', headers });
      const body = (await res.json().catch(() => ({}))) as { socketId?: string; code?: string; message?: string };
      if (!res.ok || !body.socketId) {
        throw new DemoError(
          'open_failed',
          `POST ${base}/websocket for ${s.topic} answered ${res.status}: ${body.code ?? ''} ${body.message ?? ''}`.trim(),
        );
      }
      opened.push({ socketId: body.socketId, headers });
    }
  } catch (err) {
    await closeAll();
    await platform.stop();
    throw err;
  }
  let stopped = false;
  return {
    topics: platform.streams.map((s) => s.topic),
    platform,
    socketIds: opened.map((o) => o.socketId),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await closeAll();
      await platform.stop();
    },
  };
}
