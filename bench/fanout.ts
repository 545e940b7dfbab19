import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { fileURLToPath } from 'node:url';
import { marshall } from '@aws-sdk/util-dynamodb';
import { BatchWriteCommand } from '@aws-sdk/lib-dynamodb';
import { createHandler } from '../functions/fanout';
import { DEFAULT_RETRY } from '../lib/delivery/deliver';
import type { StreamRecordLike } from '../lib/fanout/stream-record';
import { createBaselineHandler } from './baseline/fanout-baseline';
import { NodeHttpSender } from './baseline/node-http-sender';
import { Child, ownCpuSince } from './lib/child';
import { BENCH_CREDENTIALS, BENCH_REGION, benchDeps } from './lib/env';
import { CpuProfiler, hottestFunctions, summarizeProfile } from './lib/profile';
import { RESULTS_DIR } from './lib/results';
import { median, round } from './lib/stats';
import { printTable } from './lib/table';

/**
 * Benchmark 1: the fan-out hot path. One stream record for a topic with 1,000 or 10,000
 * subscribers, delivered by
 *   - `baseline`: bench/baseline/fanout-baseline.ts (unpaginated Query + awaited SDK post per subscriber),
 *   - `handler-sdk`: functions/fanout.ts with FANOUT_SENDER=sdk (paged Query, limiter, SdkSender),
 *   - `handler-lean`: functions/fanout.ts with the lean signed-HTTP sender (the default; lib/delivery/lean-sender.ts,
 *     whose synchronous SigV4 signer, lib/delivery/sigv4.ts, replaced the former bench/prototype/fast-sender.ts,
 *     and whose minimal HTTP/1.1 client, lib/delivery/http1-pool.ts, replaced node's http.request),
 *   - `handler-lean-node-http`: the same handler with the lean sender as it was before that client
 *     (bench/baseline/node-http-sender.ts: same signer, node's http.request): before/after in one run,
 * against the emulator's real `@connections` API in a child process, with real `ws` subscribers
 * in another child and real subscription rows in DynamoDB Local. The CPU measured is this
 * process's own (`process.cpuUsage()` around the invocation): the receiving side never counts.
 * Every variant runs twice: against the management API over plain HTTP, and over TLS as API
 * Gateway serves it (`https://`, the local CA's certificate; see fanout-receiver.ts).
 *
 * On a shared machine: repetitions are interleaved across variants and transports (a noisy
 * neighbour hurts all alike), figures are medians, each ratio is also computed per repetition
 * (the variant and the baseline of the same round) and its median reported, and the heap is
 * collected before every measured invocation so no variant pays for garbage another left.
 * Between two invocations of one variant the others run for longer than the emulator's
 * keep-alive timeout (node's 5 s), so every measured invocation reopens its sockets (TLS:
 * resumed sessions), as a Lambda does after an idle gap.
 */

/** A full GC between measured invocations; `--expose-gc` is not needed (the flag is set at run time). */
const collectGarbage: () => void = (() => {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
})();

const here = path.dirname(fileURLToPath(import.meta.url));

export interface FanoutBenchOptions {
  readonly quick: boolean;
  readonly dynamodbEndpoint: string;
  /** Only these variants (profiling one at a time). */
  readonly variants?: readonly string[];
  /** After the measured runs, profile one more 10,000-subscriber invocation per variant and transport. */
  readonly profile?: boolean;
  /**
   * The local CA (local/apigw/tls.ts) of a second emulator serving its management API over
   * `https://`, as API Gateway does; this process must already trust it (bench/run.ts re-executes
   * itself with NODE_EXTRA_CA_CERTS, like `npm start -- --tls`). Without it, plain HTTP only.
   */
  readonly tlsCaDir?: string;
}

type Transport = 'http' | 'tls';
type Handler = (ev: { Records: StreamRecordLike[] }) => Promise<unknown>;

/** The emulator's management API over plain HTTP or TLS, and the variants posting to it. */
interface Target {
  transport: Transport;
  receiver: Child;
  clients: Child;
  variants: Record<string, Handler>;
}

interface Run {
  variant: string;
  transport: Transport;
  subscribers: number;
  latencyMs: number;
  wallSeconds: number[];
  cpuSeconds: number[];
  /** Round (repetition) of each sample, to pair it with the baseline's of the same round. */
  rounds: number[];
}

const TOPIC = (t: Transport, n: number) => `bench:fanout-${t}-${n}`;

export async function benchFanout(o: FanoutBenchOptions) {
  const reps = o.quick ? 3 : 5;
  const sizes = o.quick ? [10_000] : [1_000, 10_000];
  const maxN = 10_000;
  const latency = 5;
  const cpuModel = os.cpus()[0]?.model ?? 'unknown';
  const loadAtStart = os.loadavg();
  const children: Child[] = [];
  const cleanups: (() => unknown)[] = [];
  try {
    const transports: Transport[] = o.tlsCaDir ? ['http', 'tls'] : ['http'];
    const receiver = await Child.start('apigw-emulator', path.join(here, 'fanout-receiver.ts'));
    children.push(receiver);
    const urls = await receiver.call<{ websocketUrl: string; managementUrl: string; managementUrlTls?: string }>('start', o.tlsCaDir ? { caDir: o.tlsCaDir } : {});
    const clients = await Child.start('ws-clients', path.join(here, 'ws-clients.ts'));
    children.push(clients);
    let t = performance.now();
    await clients.call('connect', { url: urls.websocketUrl, n: maxN }, 300_000);
    const ids = await receiver.call<string[]>('ids');
    if (ids.length !== maxN) throw new Error(`expected ${maxN} connections, the emulator has ${ids.length}`);
    const connectSeconds = (performance.now() - t) / 1000;

    // The default 2 s budget per delivery is for AWS. On this shared 2-core machine (load averages
    // above 20 while other work runs) a first request queued behind 63 full TLS handshakes can
    // exceed it; fan-out then force-resyncs that subscriber and the run measures resyncs instead
    // of deliveries. Same attempts and backoff; every delivery must still arrive.
    const retry = { ...DEFAULT_RETRY, budgetMs: 30_000 };
    const targets: Target[] = [];
    let seedSeconds = 0;
    let concurrency = 0;
    for (const transport of transports) {
      const managementEndpoint = transport === 'tls' ? urls.managementUrlTls! : urls.managementUrl;
      const { deps, clients: aws, tables } = await benchDeps({ dynamodbEndpoint: o.dynamodbEndpoint, managementEndpoint, label: `fanout-${transport}` });
      cleanups.push(() => aws.destroy());
      concurrency = deps.config.subscriber.fanoutConcurrency;
      t = performance.now();
      // 1,000-subscriber topic also serves as the warm-up topic in quick mode.
      for (const n of [...new Set([1_000, ...sizes])]) await writeSubscriptions(aws.doc, tables.subscriptions, TOPIC(transport, n), ids.slice(0, n));
      seedSeconds += (performance.now() - t) / 1000;

      const baseline = createBaselineHandler({
        subscriptionsTable: tables.subscriptions,
        managementEndpoint,
        region: BENCH_REGION,
        dynamodbEndpoint: o.dynamodbEndpoint,
        credentials: BENCH_CREDENTIALS,
      });
      cleanups.push(() => baseline.destroy());
      const nodeHttp = new NodeHttpSender(managementEndpoint, BENCH_REGION, BENCH_CREDENTIALS, concurrency);
      cleanups.push(() => nodeHttp.close());
      targets.push({
        transport,
        receiver,
        clients,
        variants: {
          baseline,
          'handler-sdk': createHandler(deps, { sender: 'sdk', retry }),
          'handler-lean-node-http': createHandler(deps, { sender: nodeHttp, retry }),
          'handler-lean': createHandler(deps, { sender: 'lean', retry }),
        },
      });
    }
    // Quick mode: the deployed default (handler-sdk) is left out to stay under 2 minutes.
    const defaults = o.quick ? ['baseline', 'handler-lean-node-http', 'handler-lean'] : Object.keys(targets[0].variants);
    const chosen = Object.keys(targets[0].variants).filter((v) => (o.variants?.length ? o.variants.includes(v) : defaults.includes(v)));

    let seq = 0;
    const invoke = async (target: Target, variant: string, n: number): Promise<{ wall: number; cpu: number }> => {
      const before = await target.clients.call<number>('count');
      const event = { Records: [streamRecord(TOPIC(target.transport, n), ++seq)] };
      collectGarbage();
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const r = (await target.variants[variant](event)) as { batchItemFailures?: unknown[] } | undefined;
      const wall = (performance.now() - t0) / 1000;
      const cpu = ownCpuSince(cpu0);
      if (r?.batchItemFailures?.length) throw new Error(`${variant} (${target.transport}): the record failed (batchItemFailures)`);
      await waitForCount(target.clients, before + n).catch(async (err: Error) => {
        const open = (await receiver.call<string[]>('ids')).length;
        throw new Error(`${variant} (${target.transport}, ${n}): ${err.message}; the emulator has ${open} open connections`);
      });
      return { wall, cpu };
    };

    // Warm-up (not measured): a warm Lambda has its sockets open (TLS sessions established) and its code JIT-compiled.
    for (const target of targets) for (const v of chosen) await invoke(target, v, 1_000);

    const runs: Run[] = [];
    const plan: { variant: string; n: number; latencyMs: number; reps: number }[] = [];
    for (const n of sizes) for (const v of chosen) plan.push({ variant: v, n, latencyMs: 0, reps });
    for (const v of chosen) {
      if (v === 'baseline') {
        // Sequential: ~n × latency of wall time. 1,000 subscribers once is enough to show it.
        if (!o.quick) plan.push({ variant: v, n: 1_000, latencyMs: latency, reps: 1 });
      } else {
        plan.push({ variant: v, n: maxN, latencyMs: latency, reps });
      }
    }
    for (const latencyMs of [0, latency]) {
      const group = plan.filter((p) => p.latencyMs === latencyMs);
      if (!group.length) continue;
      await receiver.call('latency', { ms: latencyMs });
      const byKey = new Map<string, Run>();
      // Repetitions interleaved across variants and transports: a noisy neighbour on this shared
      // machine then hurts every variant alike instead of one.
      for (let rep = 0; rep < Math.max(...group.map((g) => g.reps)); rep++) {
        for (const p of group) {
          if (rep >= p.reps) continue;
          for (const target of targets) {
            const key = `${p.variant}/${target.transport}/${p.n}`;
            let run = byKey.get(key);
            if (!run) byKey.set(key, (run = { variant: p.variant, transport: target.transport, subscribers: p.n, latencyMs, wallSeconds: [], cpuSeconds: [], rounds: [] }));
            const { wall, cpu } = await invoke(target, p.variant, p.n);
            run.wallSeconds.push(wall);
            run.cpuSeconds.push(cpu);
            run.rounds.push(rep);
          }
        }
      }
      runs.push(...byKey.values());
    }
    await receiver.call('latency', { ms: 0 });

    const profiles: Record<string, unknown> = {};
    if (o.profile) {
      for (const target of targets) {
        // The baseline's profile (the SDK's per-request middleware) is in docs/performance.md;
        // it is profiled again only when asked for with --variants.
        for (const v of chosen.filter((x) => x !== 'baseline' || o.variants?.includes(x))) {
          const prof = new CpuProfiler();
          await prof.start();
          await invoke(target, v, maxN);
          const file = path.join(RESULTS_DIR, `fanout-${v}-${target.transport}.cpuprofile.json`);
          const p = await prof.stop(file);
          profiles[`${v}-${target.transport}`] = { file: path.relative(process.cwd(), file), byPackage: summarizeProfile(p), hottest: hottestFunctions(p) };
          printTable(`CPU profile of ${v} over ${target.transport} (10,000 subscribers): self time by package`, ['package / area', '% of CPU'], summarizeProfile(p).map((x) => [x.bucket, x.share]));
          printTable(`  hottest functions (${v}, ${target.transport})`, ['function', '% of CPU'], hottestFunctions(p).map((x) => [x.fn, x.share]));
        }
      }
    }

    const rows = runs.map((r) => {
      const wall = median(r.wallSeconds);
      const cpu = median(r.cpuSeconds);
      return {
        variant: r.variant,
        transport: r.transport,
        subscribers: r.subscribers,
        latencyMs: r.latencyMs,
        reps: r.wallSeconds.length,
        wallSeconds: round(wall, 3),
        cpuSeconds: round(cpu, 3),
        deliveriesPerSecond: Math.round(r.subscribers / wall),
        deliveriesPerCpuSecond: Math.round(r.subscribers / cpu),
        cpuSecondsPer1000: round((cpu / r.subscribers) * 1000, 4),
        samples: { wallSeconds: r.wallSeconds.map((x) => round(x, 3)), cpuSeconds: r.cpuSeconds.map((x) => round(x, 3)), rounds: r.rounds },
      };
    });
    const find = (v: string, t: Transport, n: number, l: number) => rows.find((r) => r.variant === v && r.transport === t && r.subscribers === n && r.latencyMs === l);
    // A ratio only ever compares two variants of the same transport in the same run.
    const ratio = (v: string, t: Transport, n = maxN) => {
      const x = find(v, t, n, 0);
      const b = find('baseline', t, n, 0);
      return x && b ? round(x.deliveriesPerCpuSecond / b.deliveriesPerCpuSecond, 2) : undefined;
    };
    // The same ratio per round (a variant's CPU against the baseline's of the same round, minutes
    // apart at most), so a stretch of heavy load on the machine shifts both sides of each ratio.
    const pairedRatios = (v: string, t: Transport, n = maxN): number[] => {
      const x = find(v, t, n, 0);
      const b = find('baseline', t, n, 0);
      if (!x || !b) return [];
      return x.samples.rounds.flatMap((r, i) => {
        const j = b.samples.rounds.indexOf(r);
        return j < 0 ? [] : [round(b.samples.cpuSeconds[j] / x.samples.cpuSeconds[i], 2)];
      });
    };
    const pairedRatio = (v: string, t: Transport) => {
      const all = pairedRatios(v, t);
      return all.length ? round(median(all), 2) : undefined;
    };

    printTable(
      `Fan-out: one record to N subscribers (medians of ${reps}; CPU = fan-out process only; concurrency ${concurrency}; ${cpuModel})`,
      ['variant', 'transport', 'subscribers', 'added latency ms', 'wall s', 'CPU s', 'deliveries/s', 'deliveries/CPU-s', 'CPU s per 1k', 'vs baseline'],
      rows.map((r) => {
        const x = ratio(r.variant, r.transport, r.subscribers);
        return [
          r.variant,
          r.transport,
          r.subscribers,
          r.latencyMs,
          r.wallSeconds,
          r.cpuSeconds,
          r.deliveriesPerSecond,
          r.deliveriesPerCpuSecond,
          r.cpuSecondsPer1000,
          r.latencyMs === 0 && x !== undefined ? `${x}x` : undefined,
        ];
      }),
    );
    const nodeHttp0 = () => find('handler-lean-node-http', 'http', maxN, 0);
    const wall10k = (v: string, t: Transport) => find(v, t, maxN, latency)?.wallSeconds;
    const loadAtEnd = os.loadavg();
    console.log(
      `  CPU: ${cpuModel} (${os.cpus().length} cores), load average ${loadAtStart.map((l) => l.toFixed(2)).join(' ')} at the start, ${loadAtEnd.map((l) => l.toFixed(2)).join(' ')} at the end`,
    );
    console.log(
      `  per-round ratios (median): lean ${pairedRatio('handler-lean', 'tls') ?? 'n/a'}x TLS [${pairedRatios('handler-lean', 'tls').join(', ')}], ` +
        `${pairedRatio('handler-lean', 'http') ?? 'n/a'}x plain [${pairedRatios('handler-lean', 'http').join(', ')}]`,
    );
    console.log(
      `  target: ≥ 10x baseline deliveries per CPU-second over TLS → lean ${ratio('handler-lean', 'tls') ?? 'n/a'}x` +
        ` (plain HTTP ${ratio('handler-lean', 'http')}x)` +
        (nodeHttp0() ? `; before the HTTP/1.1 client (node http): ${ratio('handler-lean-node-http', 'tls')}x TLS, ${ratio('handler-lean-node-http', 'http')}x plain` : '') +
        (find('handler-sdk', 'http', maxN, 0) ? `; sdk ${ratio('handler-sdk', 'tls') ?? 'n/a'}x TLS, ${ratio('handler-sdk', 'http')}x plain` : '') +
        `; 10,000 with ${latency} ms added latency → ${wall10k('handler-lean', 'tls') ?? 'n/a'} s TLS, ${wall10k('handler-lean', 'http')} s plain (lean)`,
    );
    const lean = find('handler-lean', 'http', maxN, 0);
    const leanTls = find('handler-lean', 'tls', maxN, 0);
    const sdk = find('handler-sdk', 'http', maxN, 0);
    const nodeHttp = (t: Transport) => find('handler-lean-node-http', t, maxN, 0);
    return {
      cpuModel,
      deliveriesPerCpuSecond: lean?.deliveriesPerCpuSecond,
      baselineDeliveriesPerCpuSecond: find('baseline', 'http', maxN, 0)?.deliveriesPerCpuSecond,
      ratioVsBaseline: ratio('handler-lean', 'http'),
      deliveriesPerCpuSecondTls: leanTls?.deliveriesPerCpuSecond,
      baselineDeliveriesPerCpuSecondTls: find('baseline', 'tls', maxN, 0)?.deliveriesPerCpuSecond,
      ratioVsBaselineTls: ratio('handler-lean', 'tls'),
      pairedRatioVsBaseline: pairedRatio('handler-lean', 'http'),
      pairedRatioVsBaselineTls: pairedRatio('handler-lean', 'tls'),
      loadAverage: { start: loadAtStart.map((l) => round(l, 2)), end: loadAtEnd.map((l) => round(l, 2)) },
      nodeHttpSenderDeliveriesPerCpuSecond: nodeHttp('http')?.deliveriesPerCpuSecond,
      nodeHttpSenderRatioVsBaseline: ratio('handler-lean-node-http', 'http'),
      nodeHttpSenderDeliveriesPerCpuSecondTls: nodeHttp('tls')?.deliveriesPerCpuSecond,
      nodeHttpSenderRatioVsBaselineTls: ratio('handler-lean-node-http', 'tls'),
      sdkHandlerDeliveriesPerCpuSecond: sdk?.deliveriesPerCpuSecond,
      sdkHandlerRatioVsBaseline: ratio('handler-sdk', 'http'),
      sdkHandlerRatioVsBaselineTls: ratio('handler-sdk', 'tls'),
      wallSeconds10k: wall10k('handler-lean', 'http'),
      wallSeconds10kTls: wall10k('handler-lean', 'tls'),
      wallSeconds10kSdk: wall10k('handler-sdk', 'http'),
      addedLatencyMs: latency,
      concurrency,
      reps,
      transports,
      setup: { connectSeconds: round(connectSeconds, 2), seedSeconds: round(seedSeconds, 2) },
      runs: rows,
      ...(o.profile ? { profiles } : {}),
    };
  } finally {
    for (const c of cleanups.reverse()) await c();
    for (const c of children.reverse()) await c.stop();
  }
}

export function streamRecord(topic: string, seq: number): StreamRecordLike {
  return {
    eventName: 'MODIFY',
    dynamodb: {
      SequenceNumber: String(1e20 + seq),
      NewImage: marshall({ topic, seq, ts: Date.now(), data: { speed: 42.5, lat: 48.8566, lon: 2.3522, status: 'moving' } }),
    },
  };
}

export async function writeSubscriptions(doc: import('@aws-sdk/lib-dynamodb').DynamoDBDocumentClient, table: string, topic: string, ids: string[]) {
  const expiresAt = Math.floor(Date.now() / 1000) + 7200;
  const chunks: Record<string, unknown>[][] = [];
  for (let i = 0; i < ids.length; i += 25) chunks.push(ids.slice(i, i + 25).map((connectionId) => ({ topic, connectionId, expiresAt })));
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < chunks.length) {
        let items = chunks[next++].map((Item) => ({ PutRequest: { Item } }));
        // BatchWrite may leave items unprocessed under load: resend them.
        while (items.length) {
          const r = await doc.send(new BatchWriteCommand({ RequestItems: { [table]: items } }));
          items = (r.UnprocessedItems?.[table] ?? []) as typeof items;
        }
      }
    }),
  );
}

async function waitForCount(clients: Child, target: number, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const c = await clients.call<number>('count');
    if (c >= target) return;
    if (Date.now() > end) throw new Error(`subscribers received ${c}, expected ${target}: deliveries were lost`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
