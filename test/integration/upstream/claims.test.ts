import { expect } from 'chai';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { encodeCommand } from '../../../lib/upstream/commands';
import { startAgent, type RunningAgent } from '../../../ec2-agent/agent';
import { secretNameFor } from '../../../lib/upstream/secret-store';
import { LocalSecretStore } from '../../../lib/upstream/secrets-local';
import { socketIdOf } from '../../../lib/upstream/socket-id';
import { UpstreamStore } from '../../../lib/upstream/store';
import { startHarness, startUpstream, waitFor, type Harness, type UpstreamServer } from './harness';

/**
 * Parallel claims by the reconcile loop: many desired-open sockets at once, claimed with bounded
 * concurrency, never more than the agent's capacity (claims in flight count as used).
 */
describe('upstream agent: parallel claims', function () {
  this.timeout(60_000);
  let h: Harness;
  let up: UpstreamServer;
  const agents: RunningAgent[] = [];

  before(async () => {
    h = await startHarness();
    up = await startUpstream();
  });
  after(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    await up.stop();
    await h.stop();
  });

  it('claims many sockets in parallel and never holds more than its capacity; a second agent takes the rest', async () => {
    const SOCKETS = 150;
    const CAPACITY = 100;
    const store = new UpstreamStore(h.clients.doc, h.tables.upstreams);
    const secrets = new LocalSecretStore({ dir: h.env.LOCAL_SECRETS_DIR, keyHex: h.env.LOCAL_SECRETS_KEY });
    await Promise.all(
      Array.from({ length: SOCKETS }, async (_, i) => {
        const p = { internalID: `par-${i}`, interWorkingInterface: up.url, platformID: 'acme' };
        const id = socketIdOf(p);
        const secretRef = secretNameFor(h.config.upstream.secretPrefix, id);
        await secrets.put(secretRef, { email: 'a@b.c', pass: 'pw' });
        await store.requestOpen(id, { ...p, topic: `platform:acme:par-${i}`, secretRef }, Date.now());
        // An open command for each too, as POST sends: commands and reconcile claim side by side.
        await h.clients.sqs.send(new SendMessageCommand({ QueueUrl: h.queueUrls.commands, MessageBody: encodeCommand('open', id, Date.now()) }));
      }),
    );
    const opts = { capacity: CAPACITY, claimConcurrency: 32, reconcileMs: 200, leaseMs: 6000, renewMs: 1500, commandWaitSeconds: 1, backoffBaseMs: 50, backoffMaxMs: 500 };
    const started = Date.now();
    const a = await startAgent(h.deps('agent'), opts);
    agents.push(a);
    await waitFor(() => a.metrics().leasesClaimed >= CAPACITY, 30_000, 'the agent to fill its capacity');
    const claimMs = Date.now() - started;
    // Claims do not wait for dials: the claimed sockets are dialled meanwhile (secret reads first).
    await waitFor(() => a.metrics().openSockets === CAPACITY, 10_000, 'every claimed socket dialled');
    await new Promise((r) => setTimeout(r, 1000)); // more reconcile passes: still at capacity
    expect(a.metrics().leasesClaimed).to.equal(CAPACITY);
    expect(a.metrics().openSockets).to.equal(CAPACITY);
    await waitFor(() => up.open.size === CAPACITY, 10_000, 'every claimed socket connected');
    expect(up.maxConcurrent).to.equal(CAPACITY);
    process.stdout.write(`      parallel claims: ${CAPACITY} sockets claimed in ${claimMs} ms (${Math.round((CAPACITY * 1000) / claimMs)}/s incl. start-up)\n`);
    const b = await startAgent(h.deps('agent'), opts);
    agents.push(b);
    await waitFor(() => up.open.size === SOCKETS, 20_000, 'the second agent to take the rest');
    expect(b.metrics().leasesClaimed).to.equal(SOCKETS - CAPACITY);
  });
});
