import { startAgent, type AgentOptions, type RunningAgent } from '../../ec2-agent/agent';
import { createClients, type AwsClients } from '../../lib/aws/clients';
import { loadConfig } from '../../lib/config';
import { createLogger } from '../../lib/log';
import { serveChild } from '../lib/child';
import { CpuProfiler, hottestFunctions, summarizeProfile } from '../lib/profile';
import { BENCH_CREDENTIALS, BENCH_REGION } from '../lib/env';

/**
 * The measured process of the agent benchmark: one `startAgent` with Deps built the way the
 * local stack builds them (loadConfig over a local env, clients pointed at DynamoDB Local and
 * the SQS emulator). Its RSS and CPU are read by the parent from /proc; nothing else runs here.
 *
 * `persist {mode: 'skip'}` (a benchmark variant, not an agent option) answers the items-table
 * reads and transactions at the document client's `send`, before the SDK does anything: what is left is the
 * agent's own ingest path (frame decode, counters, sink). It exists because the agent cannot
 * turn persistence off (see docs/performance.md), and DynamoDB Local's write rate, not the agent,
 * bounds the real variant.
 */

let agent: RunningAgent | undefined;
let clients: AwsClients | undefined;
let profiler: CpuProfiler | undefined;
let skipped = 0;
let skipItemWrites = false;

serveChild({
  async start(args) {
    const env = args.env as Record<string, string>;
    const endpoints = args.endpoints as { dynamodb: string; sqs: string };
    clients = createClients({ region: BENCH_REGION, credentials: BENCH_CREDENTIALS, endpoints });
    const config = loadConfig(env);
    // Installed always, switched per measurement window (`persist`), so both variants run on the
    // same sockets in the same process. At `send`, before the SDK builds its middleware stack
    // (which alone costs ~0.4 ms of CPU per command, see the fan-out section): skipping later
    // would still pay for most of the persistence.
    const items = config.tables.items;
    const send = clients.doc.send.bind(clients.doc) as (c: unknown) => Promise<unknown>;
    (clients.doc as unknown as { send: (c: unknown) => Promise<unknown> }).send = (command) => {
      if (skipItemWrites) {
        const input = (command as { input?: { TableName?: string; TransactItems?: { Update?: { TableName?: string } }[] } }).input;
        if (input?.TransactItems?.[0]?.Update?.TableName === items) {
          skipped++;
          return Promise.resolve({ $metadata: {} });
        }
        if (input?.TableName === items) return Promise.resolve({ $metadata: {} }); // ItemStore.get: no item yet
      }
      return send(command);
    };
    agent = await startAgent(
      { config, clients, log: createLogger({ level: (process.env.BENCH_AGENT_LOG_LEVEL as 'error' | undefined) ?? 'error' }), clock: Date.now },
      args.options as Partial<AgentOptions>,
    );
    return { pid: process.pid, agentId: agent.agentId };
  },
  persist(args) {
    skipItemWrites = args.mode === 'skip';
    return args.mode;
  },
  metrics: () => ({ ...agent!.metrics(), skippedItemWrites: skipped }),
  gc: () => {
    (globalThis as { gc?: () => void }).gc?.();
    return !!(globalThis as { gc?: () => void }).gc;
  },
  async profileStart() {
    profiler = new CpuProfiler();
    await profiler.start();
  },
  async profileStop(args) {
    const p = await profiler!.stop(String(args.file));
    profiler = undefined;
    return { buckets: summarizeProfile(p, 10), functions: hottestFunctions(p, 12) };
  },
  async stop() {
    await agent?.stop();
    clients?.destroy();
  },
});
