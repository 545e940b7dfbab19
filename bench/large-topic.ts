import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHandler as createFanout } from '../functions/fanout';
import { createHandler as createPartitionWorker } from '../functions/fanout-partition';
import { createClients } from '../lib/aws/clients';
import { ENV } from '../lib/config';
import { createQueues } from '../local/bootstrap';
import { FifoQueuePoller } from '../local/queues/fifo-poller';
import { startSqs } from '../local/sqs';
import { streamRecord, writeSubscriptions } from './fanout';
import { Child, ownCpuSince } from './lib/child';
import { BENCH_CREDENTIALS, BENCH_REGION, benchDeps, benchPrefix } from './lib/env';
import { median, round } from './lib/stats';
import { printTable } from './lib/table';

/**
 * Benchmark: a large topic delivered in parallel partitions vs by one worker (issue 15, "Large
 * topic"). One record to a topic of 10,000 subscribers (quick: 2,000), a 30 ms round trip added
 * to every `@connections` call, the account's default quota (10,000 requests/s, burst 5,000),
 * FANOUT_CONCURRENCY 64 per invocation:
 *   - `one-worker`: functions/fanout.ts delivers the topic itself (partitioning off), as before;
 *   - `partitioned`: functions/fanout.ts queues one message per partition on the FIFO queue (the
 *     SQS emulator), and functions/fanout-partition.ts delivers each partition, fed by the local
 *     stack's FIFO poller: each partition an invocation of its own, as on AWS.
 * Wall time runs from the stream invocation until every subscriber has the record; CPU is this
 * process's (fan-out, workers, SQS emulator; the receiver and DynamoDB Local are other processes).
 * On AWS the partitions run on separate Lambdas, each with its own CPU: here they share this
 * process and the machine's cores, so the speed-up measured is a lower bound once CPU-bound.
 */

const here = path.dirname(fileURLToPath(import.meta.url));

export interface LargeTopicBenchOptions {
  readonly quick: boolean;
  readonly dynamodbEndpoint: string;
}

const RTT_MS = 30;
const QUOTA = { rps: 10_000, burst: 5_000 };
const CONCURRENCY = 64;
const PARTITIONS = 4;
const THRESHOLD = 1_000;

export async function benchLargeTopic(o: LargeTopicBenchOptions) {
  const subscribers = o.quick ? 2_000 : 10_000;
  const reps = 3;
  const topic = `bench:large-${subscribers}`;
  const receiver = await Child.start('quota-receiver', path.join(here, 'quota-receiver.ts'));
  const sqs = await startSqs();
  const cleanups: (() => unknown)[] = [() => sqs.stop()];
  try {
    const { managementUrl } = await receiver.call<{ managementUrl: string }>('start', { latency: { ms: RTT_MS } });
    const ids = await receiver.call<string[]>('connections', { n: subscribers, aws: true });
    const aws = createClients({ region: BENCH_REGION, credentials: BENCH_CREDENTIALS, endpoints: { dynamodb: o.dynamodbEndpoint, sqs: sqs.endpoint } });
    cleanups.push(() => aws.destroy());
    const queueUrls = await createQueues(aws.sqs, benchPrefix('large'));
    const bench = await benchDeps({
      dynamodbEndpoint: o.dynamodbEndpoint,
      managementEndpoint: managementUrl,
      label: 'large',
      env: {
        [ENV.fanoutConcurrency]: String(CONCURRENCY),
        [ENV.fanoutPartitionQueueUrl]: queueUrls.fanoutPartitions,
        [ENV.fanoutPartitionThreshold]: String(THRESHOLD),
        [ENV.fanoutPartitions]: String(PARTITIONS),
      },
    });
    cleanups.push(() => bench.clients.destroy());
    const deps = { ...bench.deps, clients: aws };
    await writeSubscriptions(aws.doc, bench.tables.subscriptions, topic, ids);

    // On AWS each concurrent invocation runs in an execution environment of its own, with its own
    // keep-alive pool of FANOUT_CONCURRENCY sockets: one handler instance per partition here (the
    // poller hands each group to its own lane, so one invocation per partition at a time).
    const workers = Array.from({ length: PARTITIONS }, () => createPartitionWorker(deps, { sender: 'lean' }));
    const worker = (event: { Records: { attributes?: { MessageGroupId?: string } }[] }) => {
      const k = Number(/#(\d+)$/.exec(event.Records[0]?.attributes?.MessageGroupId ?? '')?.[1] ?? 0);
      return workers[k % PARTITIONS]!(event as Parameters<(typeof workers)[number]>[0]);
    };
    const poller = new FifoQueuePoller({ sqs: aws.sqs, queueUrl: queueUrls.fanoutPartitions, handler: worker, functionName: 'fanout-partition', maxReceiveCount: 5, idlePollMs: 5 });
    poller.start();
    cleanups.push(() => poller.stop());
    const variants = {
      'one-worker': createFanout(deps, { sender: 'lean', partitioning: false }),
      partitioned: createFanout(deps, { sender: 'lean' }),
    };

    let seq = 0;
    const runOnce = async (v: keyof typeof variants) => {
      await receiver.call('reset', { quota: QUOTA });
      const s = ++seq;
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const r = await variants[v]({ Records: [streamRecord(topic, s)] });
      if (r.batchItemFailures.length) throw new Error(`${v}: the record failed`);
      // Partitioned: the stream invocation returns once the messages are queued; done when every subscriber has it.
      let st = await receiver.call<{ once: number; duplicated: number; never: number }>('stats', { seq: s });
      for (const deadline = Date.now() + 120_000; st.never > 0; ) {
        if (Date.now() > deadline) throw new Error(`${v}: ${st.never} subscribers never got seq ${s}`);
        await new Promise((res) => setTimeout(res, 20));
        st = await receiver.call('stats', { seq: s });
      }
      return { wall: (performance.now() - t0) / 1000, cpu: ownCpuSince(cpu0), lost: st.never, duplicated: st.duplicated };
    };
    // Warm-up (not measured): sockets open, code compiled, as in warm Lambdas.
    for (const v of Object.keys(variants) as (keyof typeof variants)[]) await runOnce(v);
    const runs = new Map<string, Awaited<ReturnType<typeof runOnce>>[]>();
    for (let rep = 0; rep < reps; rep++) {
      // Interleaved, so a noisy neighbour hurts both alike.
      for (const v of Object.keys(variants) as (keyof typeof variants)[]) {
        const list = runs.get(v) ?? [];
        list.push(await runOnce(v));
        runs.set(v, list);
      }
    }
    const rows = [...runs].map(([variant, list]) => {
      const wall = median(list.map((r) => r.wall));
      const cpu = median(list.map((r) => r.cpu));
      return {
        variant,
        workers: variant === 'partitioned' ? PARTITIONS : 1,
        wallSeconds: round(wall, 2),
        deliveriesPerSecond: Math.round(subscribers / wall),
        cpuSeconds: round(cpu, 2),
        deliveriesPerCpuSecond: Math.round(subscribers / cpu),
        lost: Math.max(...list.map((r) => r.lost)),
        duplicated: Math.max(...list.map((r) => r.duplicated)),
        samples: { wallSeconds: list.map((r) => round(r.wall, 2)), cpuSeconds: list.map((r) => round(r.cpu, 2)) },
      };
    });
    const cpuModel = os.cpus()[0]?.model;
    printTable(
      `Large topic: one record to ${subscribers.toLocaleString('en')} subscribers, ${RTT_MS} ms round trip, ${CONCURRENCY} in flight per invocation, quota ${QUOTA.rps}/s burst ${QUOTA.burst} (medians of ${reps}; ${cpuModel}, ${os.cpus().length} cores)`,
      ['variant', 'workers', 'wall s', 'deliveries/s', 'CPU s', 'deliveries/CPU-s', 'lost', 'duplicated'],
      rows.map((r) => [r.variant, r.workers, r.wallSeconds, r.deliveriesPerSecond, r.cpuSeconds, r.deliveriesPerCpuSecond, r.lost, r.duplicated]),
    );
    const one = rows.find((r) => r.variant === 'one-worker')!;
    const part = rows.find((r) => r.variant === 'partitioned')!;
    const speedup = round(part.deliveriesPerSecond / one.deliveriesPerSecond, 2);
    console.log(`  partitioned (${PARTITIONS} workers) vs one worker: ${speedup}x deliveries/s, ${round(part.deliveriesPerCpuSecond / one.deliveriesPerCpuSecond, 2)}x deliveries per CPU-second`);
    return {
      subscribers,
      rttMs: RTT_MS,
      quotaRps: QUOTA.rps,
      concurrency: CONCURRENCY,
      partitions: PARTITIONS,
      threshold: THRESHOLD,
      partitionedDeliveriesPerSecond: part.deliveriesPerSecond,
      oneWorkerDeliveriesPerSecond: one.deliveriesPerSecond,
      speedup,
      partitionedDeliveriesPerCpuSecond: part.deliveriesPerCpuSecond,
      oneWorkerDeliveriesPerCpuSecond: one.deliveriesPerCpuSecond,
      lost: Math.max(part.lost, one.lost),
      cpuModel,
      reps,
      runs: rows,
    };
  } finally {
    for (const c of cleanups.reverse()) await c();
    await receiver.stop();
  }
}
