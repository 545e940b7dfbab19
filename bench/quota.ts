import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHandler } from '../functions/fanout';
import type { StreamRecordLike } from '../lib/fanout/stream-record';
import { streamRecord, writeSubscriptions } from './fanout';
import { createLogger } from '../lib/log';
import { subscriberServices } from '../lib/subscriber/services';
import { Child } from './lib/child';
import { benchDeps } from './lib/env';
import { median, round } from './lib/stats';
import { printTable } from './lib/table';

/**
 * Benchmark: one fan-out invocation against the account's `@connections` quota, as on AWS (issue
 * 15): one record to a topic of 20,000 subscribers, a 30 ms round trip added to every call, an
 * emulated quota of 2,000 requests/s with a burst of 1,000 (the emulator's token bucket, answering
 * 429 `LimitExceededException` when empty). Reported: deliveries/s as a fraction of the quota
 * (target ≥ 0.9), the share of calls answered 429 (target ≤ 5 %), deliveries lost, for
 *   - `adaptive`: functions/fanout.ts as deployed (lean sender, AIMD limiter, FANOUT_CONCURRENCY
 *     as its ceiling: `CEILING` here),
 *   - `fixed-64`: today's fixed concurrency (the default FANOUT_CONCURRENCY, 64),
 *   - `fixed-ceiling` (full run only): the ceiling held fixed, which is what a fixed limit high
 *     enough for the quota does when it is reached: a 429 storm.
 * The bucket starts full each run (burst 1,000), so up to 1,000/20,000 of a run rides on it: a
 * perfect sender scores ~1.05, not 1.0.
 *
 * The subscribers are stand-ins inside the emulator's management API (bench/quota-receiver.ts),
 * their subscription rows real rows in DynamoDB Local; the fan-out runs in this process.
 */

const here = path.dirname(fileURLToPath(import.meta.url));

export interface QuotaBenchOptions {
  readonly quick: boolean;
  readonly dynamodbEndpoint: string;
}

const QUOTA = { rps: 2_000, burst: 1_000 };
const RTT_MS = 30;
/** The adaptive limiter's ceiling: room above the ~60 in flight the quota needs at 30 ms. */
const CEILING = 256;
const FIXED = 64;

export async function benchQuota(o: QuotaBenchOptions) {
  const subscribers = o.quick ? 5_000 : 20_000;
  const reps = o.quick ? 3 : 3;
  const topic = `bench:quota-${subscribers}`;
  const receiver = await Child.start('quota-receiver', path.join(here, 'quota-receiver.ts'));
  const cleanups: (() => unknown)[] = [];
  try {
    const { managementUrl } = await receiver.call<{ managementUrl: string }>('start', { latency: { ms: RTT_MS } });
    const ids = await receiver.call<string[]>('connections', { n: subscribers });
    const { deps, clients: aws, tables } = await benchDeps({
      dynamodbEndpoint: o.dynamodbEndpoint,
      managementEndpoint: managementUrl,
      label: 'quota',
      env: { FANOUT_CONCURRENCY: String(CEILING) },
    });
    cleanups.push(() => aws.destroy());
    // The handler's own account of each batch (its debug line): failures, resyncs, the limiter's peak.
    let batch: Record<string, unknown> = {};
    const log = createLogger({
      level: 'debug',
      write: (line) => {
        const rec = JSON.parse(line) as Record<string, unknown>;
        if (rec.msg === 'fanout batch') batch = rec;
      },
    });
    const services = subscriberServices(deps);
    const seed = async () => {
      await writeSubscriptions(aws.doc, tables.subscriptions, topic, ids);
      let rows = 0;
      for await (const page of services.subscriptions.pages(topic)) rows += page.length;
      if (rows !== subscribers) throw new Error(`seeded ${subscribers} subscriptions, the topic has ${rows}`);
    };
    let t = performance.now();
    await seed();
    const seedSeconds = (performance.now() - t) / 1000;

    const withConcurrency = (n: number) => ({ ...deps, log, config: { ...deps.config, subscriber: { ...deps.config.subscriber, fanoutConcurrency: n } } });
    const variants: Record<string, (ev: { Records: StreamRecordLike[] }) => Promise<{ batchItemFailures: unknown[] }>> = {
      adaptive: createHandler({ ...deps, log }, { sender: 'lean' }),
      'fixed-64': createHandler(withConcurrency(FIXED), { sender: 'lean', adaptive: false }),
      ...(o.quick ? {} : { 'fixed-ceiling': createHandler({ ...deps, log }, { sender: 'lean', adaptive: false }) }),
    };
    const repsOf = (v: string) => (v === 'fixed-ceiling' ? 1 : reps);

    let seq = 0;
    const runs = new Map<string, { wall: number; throttledShare: number; lost: number; duplicated: number; failedRecord: boolean; resynced: number }[]>();
    // Warm-up (not measured): sockets open, code compiled, as in a warm Lambda. A subscriber it
    // forced to resync lost its rows: they are put back.
    await receiver.call('reset', { quota: QUOTA });
    await variants.adaptive({ Records: [streamRecord(topic, ++seq)] });
    await seed();
    for (let rep = 0; rep < reps; rep++) {
      // Interleaved, so a noisy neighbour on this shared machine hurts every variant alike.
      for (const v of Object.keys(variants)) {
        if (rep >= repsOf(v)) continue;
        await receiver.call('reset', { quota: QUOTA });
        const s = ++seq;
        const t0 = performance.now();
        const r = await variants[v]({ Records: [streamRecord(topic, s)] });
        const wall = (performance.now() - t0) / 1000;
        const st = await receiver.call<{ once: number; duplicated: number; never: number; disconnects: number; admitted: number; throttled: number }>('stats', { seq: s });
        if (process.env.BENCH_DEBUG) console.log(v, JSON.stringify(st), JSON.stringify(batch));
        const list = runs.get(v) ?? [];
        list.push({
          wall,
          throttledShare: st.throttled / (st.admitted + st.throttled),
          lost: st.never,
          duplicated: st.duplicated,
          failedRecord: r.batchItemFailures.length > 0,
          resynced: st.disconnects,
        });
        runs.set(v, list);
        // A subscriber forced to resync lost its rows: put them back so every run has them all.
        if (st.disconnects > 0) await seed();
      }
    }

    const rows = [...runs].map(([variant, list]) => {
      const wall = median(list.map((r) => r.wall));
      return {
        variant,
        concurrency: variant === 'fixed-64' ? FIXED : CEILING,
        runs: list.length,
        wallSeconds: round(wall, 2),
        deliveriesPerSecond: Math.round(subscribers / wall),
        goodputRatio: round(subscribers / wall / QUOTA.rps, 3),
        throttledShare: round(median(list.map((r) => r.throttledShare)), 4),
        lost: Math.max(...list.map((r) => r.lost)),
        duplicated: Math.max(...list.map((r) => r.duplicated)),
        failedRecords: list.filter((r) => r.failedRecord).length,
        resynced: Math.max(...list.map((r) => r.resynced)),
        samples: { wallSeconds: list.map((r) => round(r.wall, 2)), throttledShare: list.map((r) => round(r.throttledShare, 4)) },
      };
    });
    const cpuModel = os.cpus()[0]?.model;
    printTable(
      `Quota: one record to ${subscribers.toLocaleString('en')} subscribers, ${RTT_MS} ms round trip, quota ${QUOTA.rps}/s burst ${QUOTA.burst} (medians of ${reps}; ${cpuModel}, ${os.cpus().length} cores)`,
      ['variant', 'in flight', 'runs', 'wall s', 'deliveries/s', 'of quota', '429 share', 'lost', 'duplicated', 'failed records', 'resynced'],
      rows.map((r) => [r.variant, r.variant === 'adaptive' ? `≤ ${r.concurrency}` : r.concurrency, r.runs, r.wallSeconds, r.deliveriesPerSecond, r.goodputRatio, `${round(r.throttledShare * 100, 2)} %`, r.lost, r.duplicated, r.failedRecords, r.resynced]),
    );
    const adaptive = rows.find((r) => r.variant === 'adaptive')!;
    const fixed = rows.find((r) => r.variant === 'fixed-64')!;
    console.log(
      `  targets: ≥ 0.9 of the quota → ${adaptive.goodputRatio}; ≤ 5 % answered 429 → ${round(adaptive.throttledShare * 100, 2)} %; none lost → ${adaptive.lost}` +
        ` (fixed ${FIXED}: ${fixed.goodputRatio} of the quota, ${round(fixed.throttledShare * 100, 2)} % 429)`,
    );
    return {
      subscribers,
      rttMs: RTT_MS,
      quotaRps: QUOTA.rps,
      quotaBurst: QUOTA.burst,
      ceiling: CEILING,
      goodputRatio: adaptive.goodputRatio,
      throttledShare: adaptive.throttledShare,
      lost: adaptive.lost,
      fixedConcurrency: FIXED,
      fixedConcurrencyGoodputRatio: fixed.goodputRatio,
      fixedConcurrencyThrottledShare: fixed.throttledShare,
      cpuModel,
      reps,
      setup: { seedSeconds: round(seedSeconds, 2) },
      runs: rows,
    };
  } finally {
    for (const c of cleanups.reverse()) await c();
    await receiver.stop();
  }
}
