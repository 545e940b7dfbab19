import { expect } from 'chai';
import http from 'node:http';
import type net from 'node:net';
import { createHandler } from '../../../functions/control';
import { startAgent, type AgentOptions, type RunningAgent } from '../../../ec2-agent/agent';
import { createClients, type AwsClients } from '../../../lib/aws/clients';
import { createLogger } from '../../../lib/log';
import { AGENT_PRINCIPAL, localCredentials } from '../../../local/iam/principals';
import { invokeLambda } from '../../../local/lambda/invoke';
import { FAST_AGENT, httpEvent, startHarness, startUpstream, waitFor, type Harness, type UpstreamServer } from './harness';

/**
 * The agent's heartbeat has a connection pool of its own: when every connection of the bulk
 * DynamoDB pool is busy with slow message writes, the heartbeat still renews on time and no
 * socket is cut. DynamoDB here is DynamoDB Local behind a loopback HTTP proxy that holds every
 * request naming the items table (the message writes) — a slow DynamoDB for those writes only;
 * the agent's bulk pool is shrunk to BULK_SOCKETS connections so a few busy sockets fill it.
 */

// A heartbeat later than lease − renew (2.7 s) after the last cuts every socket; the watch is
// longer than that, so a heartbeat stuck behind the held writes (a shared pool) fails the test,
// while a loaded host's slow but separate heartbeat has seconds to spare.
const LEASE_MS = 3000;
const RENEW_MS = 300;
const WATCH_MS = 4500;
const BULK_SOCKETS = 4;
const SOCKETS = 6;
const FAST: Partial<AgentOptions> = { ...FAST_AGENT, leaseMs: LEASE_MS, renewMs: RENEW_MS };

interface SlowWritesProxy {
  readonly url: string;
  /** While true, requests whose body names `slowTable` wait until `release()`. */
  hold: boolean;
  /** Requests held right now. */
  held: number;
  release(): void;
  stop(): Promise<void>;
}

async function startSlowWritesProxy(target: string, slowTable: string): Promise<SlowWritesProxy> {
  const to = new URL(target);
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks);
      if (p.hold && body.includes(`"${slowTable}"`)) {
        p.held++;
        await released;
        p.held--;
      }
      // Headers as sent (Host included: it is part of the request's signature).
      const out = http.request({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      out.on('error', () => res.destroy());
      out.end(body);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const p: SlowWritesProxy = {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    hold: false,
    held: 0,
    release: () => {
      p.hold = false;
      release();
    },
    stop: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
  return p;
}

describe('upstream agent: the heartbeat does not share a connection pool with the bulk writes', function () {
  this.timeout(40_000);
  let h: Harness;
  let proxy: SlowWritesProxy | undefined;
  let clients: AwsClients | undefined;
  let agent: RunningAgent | undefined;
  let up: UpstreamServer | undefined;
  let sender: NodeJS.Timeout | undefined;

  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => {
    clearInterval(sender);
    proxy?.release();
    await agent?.stop();
    clients?.destroy();
    await up?.stop();
    await proxy?.stop();
    agent = clients = up = proxy = undefined;
    await h.stop();
  });

  it('with every bulk connection held by slow message writes, the heartbeat still renews before its deadline and no socket is cut', async () => {
    proxy = await startSlowWritesProxy(h.iamEndpoint, h.tables.items);
    up = await startUpstream();
    // The agent's DynamoDB traffic (bulk and heartbeat pools alike) goes through the proxy.
    clients = createClients({
      region: 'us-east-1',
      credentials: localCredentials(AGENT_PRINCIPAL),
      endpoints: { dynamodb: proxy.url, dynamodbstreams: proxy.url, sqs: h.iamEndpoint, secretsmanager: h.iamEndpoint },
      maxSockets: BULK_SOCKETS,
    });
    agent = await startAgent({ config: h.config, clients, log: createLogger({ level: 'error' }), clock: Date.now }, FAST);
    const control = createHandler(h.deps('control'));
    for (let i = 0; i < SOCKETS; i++) {
      const ev = httpEvent('POST /websocket', { internalID: `veh-${i}`, interWorkingInterface: up.url, platformID: 'acme', asapa_email: 'e@acme.example', asapa_pass: 'pw' });
      expect((await invokeLambda<{ statusCode: number }>(control as never, ev, { functionName: 'control' })).statusCode).to.equal(202);
    }
    await waitFor(() => up!.open.size === SOCKETS, 10_000, 'every upstream connection');

    // A burst on every socket while DynamoDB is slow for message writes: each socket's persister
    // keeps one write in flight, more than the bulk pool has connections.
    proxy.hold = true;
    let n = 0;
    sender = setInterval(() => up!.send({ n: n++ }), 50);
    await waitFor(() => proxy!.held === BULK_SOCKETS, 5000, 'every bulk connection held by a message write');

    // Watch the heartbeat with the bulk pool full.
    const beats: number[] = [];
    let last = agent.metrics().heartbeats;
    const watchedFrom = Date.now();
    while (Date.now() - watchedFrom < WATCH_MS) {
      await new Promise((r) => setTimeout(r, 20));
      const now = agent.metrics().heartbeats;
      if (now !== last) beats.push(Date.now());
      last = now;
    }
    const heldAtEnd = proxy.held;
    clearInterval(sender);
    proxy.release();

    expect(heldAtEnd, 'the bulk pool stayed full').to.equal(BULK_SOCKETS);
    const gaps = [watchedFrom, ...beats, Date.now()].slice(1).map((t, i, a) => t - (i === 0 ? watchedFrom : a[i - 1]));
    process.stdout.write(`      heartbeat: ${beats.length} renewals in ${WATCH_MS} ms with all ${BULK_SOCKETS} bulk connections held, longest gap ${Math.max(...gaps)} ms (deadline ${LEASE_MS - RENEW_MS} ms)\n`);
    // A heartbeat later than this cuts every socket (the local deadline: lease − renew after the last).
    expect(Math.max(...gaps), `heartbeat gaps ${gaps.join(', ')} ms`).to.be.below(LEASE_MS - RENEW_MS);
    expect(beats.length).to.be.at.least(Math.floor(WATCH_MS / (LEASE_MS - RENEW_MS)));
    expect(agent.metrics()).to.include({ leasesLost: 0, openSockets: SOCKETS });
    expect(up.closes).to.deep.equal([]);
  });
});
