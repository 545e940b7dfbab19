import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { marshall } from '@aws-sdk/util-dynamodb';
import { BatchWriteCommand } from '@aws-sdk/lib-dynamodb';
import { createHandler } from '../functions/fanout';
import type { StreamRecordLike } from '../lib/subscriber/stream-record';
import { createBaselineHandler } from './baseline/fanout-baseline';
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
 *   - `handler-lean`: functions/fanout.ts with the lean signed-HTTP sender (the default; lib/subscriber/lean-sender.ts,
 *     whose synchronous SigV4 signer, lib/subscriber/sigv4.ts, replaced the former bench/prototype/fast-sender.ts),
 * against the emulator's real `@connections` API in a child process, with real `ws` subscribers
 * in another child and real subscription rows in DynamoDB Local. The CPU measured is this
 * process's own (`process.cpuUsage()` around the invocation): the receiving side never counts.
 */

const here = path.dirname(fileURLToPath(import.meta.url));

export interface FanoutBenchOptions {
  readonly quick: boolean;
  readonly dynamodbEndpoint: string;
  /** Only these variants (profiling one at a time). */
  readonly variants?: readonly string[];
  /** After the measured runs, profile one more 10,000-subscriber invocation per variant. */
  readonly profile?: boolean;
}

interface Run {
  variant: string;
  subscribers: number;
  latencyMs: number;
  wallSeconds: number[];
  cpuSeconds: number[];
}

const TOPIC = (n: number) => `bench:fanout-${n}`;

export async function benchFanout(o: FanoutBenchOptions) {
  const reps = o.quick ? 3 : 5;
  const sizes = o.quick ? [10_000] : [1_000, 10_000];
  const maxN = 10_000;
  const latency = 5;
  const children: Child[] = [];
  const cleanups: (() => unknown)[] = [];
  try {
    const receiver = await Child.start('apigw-emulator', path.join(here, 'fanout-receiver.ts'));
    children.push(receiver);
    const urls = await receiver.call<{ websocketUrl: string; managementUrl: string }>('start');
    const clients = await Child.start('ws-clients', path.join(here, 'ws-clients.ts'));
    children.push(clients);
    let t = performance.now();
    await clients.call('connect', { url: urls.websocketUrl, n: maxN }, 300_000);
    const ids = await receiver.call<string[]>('ids');
    if (ids.length !== maxN) throw new Error(`expected ${maxN} connections, the emulator has ${ids.length}`);
    const connectSeconds = (performance.now() - t) / 1000;

    const { deps, clients: aws, tables } = await benchDeps({ dynamodbEndpoint: o.dynamodbEndpoint, managementEndpoint: urls.managementUrl, label: 'fanout' });
    cleanups.push(() => aws.destroy());
    t = performance.now();
    // 1,000-subscriber topic also serves as the warm-up topic in quick mode.
    for (const n of [...new Set([1_000, ...sizes])]) await writeSubscriptions(aws.doc, tables.subscriptions, TOPIC(n), ids.slice(0, n));
    const seedSeconds = (performance.now() - t) / 1000;

    const baseline = createBaselineHandler({
      subscriptionsTable: tables.subscriptions,
      managementEndpoint: urls.managementUrl,
      region: BENCH_REGION,
      dynamodbEndpoint: o.dynamodbEndpoint,
      credentials: BENCH_CREDENTIALS,
    });
    cleanups.push(() => baseline.destroy());
    const variants: Record<string, (ev: { Records: StreamRecordLike[] }) => Promise<unknown>> = {
      baseline,
      'handler-sdk': createHandler(deps, { sender: 'sdk' }),
      'handler-lean': createHandler(deps, { sender: 'lean' }),
    };
    // Quick mode: the deployed default (handler-sdk) is left out to stay under 2 minutes.
    const defaults = o.quick ? ['baseline', 'handler-lean'] : Object.keys(variants);
    const chosen = Object.keys(variants).filter((v) => (o.variants?.length ? o.variants.includes(v) : defaults.includes(v)));

    let seq = 0;
    const invoke = async (variant: string, n: number): Promise<{ wall: number; cpu: number }> => {
      const before = await clients.call<number>('count');
      const event = { Records: [streamRecord(TOPIC(n), ++seq)] };
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const r = (await variants[variant](event)) as { batchItemFailures?: unknown[] } | undefined;
      const wall = (performance.now() - t0) / 1000;
      const cpu = ownCpuSince(cpu0);
      if (r?.batchItemFailures?.length) throw new Error(`${variant}: the record failed (batchItemFailures)`);
      await waitForCount(clients, before + n);
      return { wall, cpu };
    };

    // Warm-up (not measured): a warm Lambda has its sockets open and its code JIT-compiled.
    for (const v of chosen) await invoke(v, 1_000);

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
      // Repetitions interleaved across variants: a noisy neighbour on this shared machine then
      // hurts every variant alike instead of one.
      for (let rep = 0; rep < Math.max(...group.map((g) => g.reps)); rep++) {
        for (const p of group) {
          if (rep >= p.reps) continue;
          const key = `${p.variant}/${p.n}`;
          let run = byKey.get(key);
          if (!run) byKey.set(key, (run = { variant: p.variant, subscribers: p.n, latencyMs, wallSeconds: [], cpuSeconds: [] }));
          const { wall, cpu } = await invoke(p.variant, p.n);
          run.wallSeconds.push(wall);
          run.cpuSeconds.push(cpu);
        }
      }
      runs.push(...byKey.values());
    }
    await receiver.call('latency', { ms: 0 });

    const profiles: Record<string, unknown> = {};
    if (o.profile) {
      for (const v of chosen) {
        const prof = new CpuProfiler();
        await prof.start();
        await invoke(v, maxN);
        const file = path.join(RESULTS_DIR, `fanout-${v}.cpuprofile.json`);
        const p = await prof.stop(file);
        profiles[v] = { file: path.relative(process.cwd(), file), byPackage: summarizeProfile(p), hottest: hottestFunctions(p) };
        printTable(`CPU profile of ${v} (10,000 subscribers): self time by package`, ['package / area', '% of CPU'], summarizeProfile(p).map((x) => [x.bucket, x.share]));
        printTable(`  hottest functions (${v})`, ['function', '% of CPU'], hottestFunctions(p).map((x) => [x.fn, x.share]));
      }
    }

    const rows = runs.map((r) => {
      const wall = median(r.wallSeconds);
      const cpu = median(r.cpuSeconds);
      return {
        variant: r.variant,
        subscribers: r.subscribers,
        latencyMs: r.latencyMs,
        reps: r.wallSeconds.length,
        wallSeconds: round(wall, 3),
        cpuSeconds: round(cpu, 3),
        deliveriesPerSecond: Math.round(r.subscribers / wall),
        deliveriesPerCpuSecond: Math.round(r.subscribers / cpu),
        cpuSecondsPer1000: round((cpu / r.subscribers) * 1000, 4),
        samples: { wallSeconds: r.wallSeconds.map((x) => round(x, 3)), cpuSeconds: r.cpuSeconds.map((x) => round(x, 3)) },
      };
    });
    const find = (v: string, n: number, l: number) => rows.find((r) => r.variant === v && r.subscribers === n && r.latencyMs === l);
    const base = find('baseline', maxN, 0);
    const lean = find('handler-lean', maxN, 0);
    const sdk = find('handler-sdk', maxN, 0);
    const ratio = (x?: { deliveriesPerCpuSecond: number }) => (x && base ? round(x.deliveriesPerCpuSecond / base.deliveriesPerCpuSecond, 2) : undefined);

    printTable(
      `Fan-out: one record to N subscribers (medians of ${reps}; CPU = fan-out process only; concurrency ${deps.config.subscriber.fanoutConcurrency})`,
      ['variant', 'subscribers', 'added latency ms', 'wall s', 'CPU s', 'deliveries/s', 'deliveries/CPU-s', 'CPU s per 1k', 'vs baseline'],
      rows.map((r) => [
        r.variant,
        r.subscribers,
        r.latencyMs,
        r.wallSeconds,
        r.cpuSeconds,
        r.deliveriesPerSecond,
        r.deliveriesPerCpuSecond,
        r.cpuSecondsPer1000,
        (() => {
          const b = find('baseline', r.subscribers, 0);
          return b ? `${round(r.deliveriesPerCpuSecond / b.deliveriesPerCpuSecond, 2)}x` : undefined;
        })(),
      ]),
    );
    const wall10k = find('handler-lean', maxN, latency)?.wallSeconds;
    console.log(
      `  target: ≥ 6x baseline deliveries per CPU-second → lean ${ratio(lean)}x` +
        (sdk ? `, sdk ${ratio(sdk)}x` : '') +
        `; 10,000 in < 3 s with ${latency} ms added latency → ${wall10k} s (lean)` +
        (find('handler-sdk', maxN, latency) ? `, ${find('handler-sdk', maxN, latency)!.wallSeconds} s (sdk)` : ''),
    );
    return {
      deliveriesPerCpuSecond: lean?.deliveriesPerCpuSecond,
      baselineDeliveriesPerCpuSecond: base?.deliveriesPerCpuSecond,
      ratioVsBaseline: ratio(lean),
      sdkHandlerDeliveriesPerCpuSecond: sdk?.deliveriesPerCpuSecond,
      sdkHandlerRatioVsBaseline: ratio(sdk),
      wallSeconds10k: wall10k,
      wallSeconds10kSdk: find('handler-sdk', maxN, latency)?.wallSeconds,
      addedLatencyMs: latency,
      concurrency: deps.config.subscriber.fanoutConcurrency,
      reps,
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
