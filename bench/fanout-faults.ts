import WebSocket from 'ws';
import { marshall } from '@aws-sdk/util-dynamodb';
import { BatchWriteCommand } from '@aws-sdk/lib-dynamodb';
import { createHandler } from '../functions/fanout';
import type { StreamRecordLike } from '../lib/fanout/stream-record';
import { WebSocketEmulator } from '../local/apigw/websocket-emulator';
import { parseFaults, type FaultSpec } from '../local/apigw/faults';
import { benchDeps } from './lib/env';
import { median, round } from './lib/stats';
import { printTable } from './lib/table';

/**
 * Benchmark: fan-out throughput on ONE topic (per-topic order is what a fault can stall) with 20 %
 * of management API calls failing (429/500, `_emulator/faults`), as a ratio of the fault-free rate
 * measured in the same run, repetitions interleaved. Goal ≥ 0.5.
 *
 * Real parts: the handler (`functions/fanout.ts`, lean sender, default retry policy), subscription
 * rows in DynamoDB Local, the emulator's `@connections` API and `ws` subscribers on loopback. A
 * subscriber forced to resync (a delivery failing 5 times in a row, ~1 in 3,000) is closed by the
 * handler; each repetition therefore reconnects the closed ones and uses a fresh topic.
 */

export interface FanoutFaultsBenchOptions {
  readonly quick: boolean;
  readonly dynamodbEndpoint: string;
}

const FAULTS: FaultSpec = parseFaults({ rate: 0.2, statuses: [429, 500] });
/** Stands in for the same-region round trip to API Gateway (as the fan-out benchmark does). */
const LATENCY_MS = 5;

export async function benchFanoutFaults(o: FanoutFaultsBenchOptions) {
  const reps = o.quick ? 3 : 5;
  const subscribers = 50;
  const records = o.quick ? 300 : 600;
  const batch = 100;
  const em = await WebSocketEmulator.start({ routes: { $connect: async () => ({ statusCode: 200 }) }, managementLatencyMs: LATENCY_MS });
  const sockets = new Set<WebSocket>();
  let received = 0;
  const { deps, clients: aws, tables } = await benchDeps({ dynamodbEndpoint: o.dynamodbEndpoint, managementEndpoint: em.managementUrl, label: 'fanout-faults' });
  try {
    const connectAll = async () => {
      for (const ws of sockets) if (ws.readyState !== WebSocket.OPEN) sockets.delete(ws);
      await Promise.all(
        Array.from({ length: subscribers - sockets.size }, () =>
          new Promise<void>((resolve, reject) => {
            const ws = new WebSocket(em.websocketUrl);
            ws.on('message', () => received++);
            ws.once('open', () => (sockets.add(ws), resolve()));
            ws.once('error', reject);
          }),
        ),
      );
      // The emulator registers a connection just after the client's open event.
      for (let i = 0; i < 100 && em.connectionIds().length < subscribers; i++) await new Promise((r) => setTimeout(r, 10));
    };
    const handler = createHandler(deps, { sender: 'lean' });
    let topicNo = 0;
    const run = async (variant: 'clean' | 'faults') => {
      await connectAll();
      const topic = `bench:faults-${++topicNo}`;
      const ids = em.connectionIds();
      await writeSubscriptions(aws.doc, tables.subscriptions, topic, ids);
      if (variant === 'faults') em.faults.set(FAULTS);
      const before = received;
      const t0 = performance.now();
      let failedRecords = 0;
      for (let from = 1; from <= records; from += batch) {
        const event = { Records: Array.from({ length: batch }, (_, i) => streamRecord(topic, from + i)) };
        const r = (await handler(event)) as { batchItemFailures: unknown[] };
        failedRecords += r.batchItemFailures.length;
      }
      const wall = (performance.now() - t0) / 1000;
      em.faults.clear();
      await new Promise((r) => setTimeout(r, 50));
      return { wall, failedRecords, deliveries: received - before, expected: ids.length * records };
    };

    await run('clean'); // warm-up: sockets open, code compiled
    const samples: Record<'clean' | 'faults', { wall: number; failedRecords: number; deliveries: number; expected: number }[]> = { clean: [], faults: [] };
    for (let i = 0; i < reps; i++) for (const v of ['clean', 'faults'] as const) samples[v].push(await run(v));

    const rate = (v: 'clean' | 'faults') => records / median(samples[v].map((s) => s.wall));
    const ratio = round(rate('faults') / rate('clean'), 2);
    const rows = (['clean', 'faults'] as const).map((v) => [
      v === 'clean' ? 'no faults' : '20 % 429/500',
      subscribers,
      records,
      round(median(samples[v].map((s) => s.wall)), 2),
      Math.round(rate(v)),
      samples[v].map((s) => `${s.deliveries}/${s.expected}`).join(' '),
      samples[v].reduce((n, s) => n + s.failedRecords, 0),
    ]);
    printTable(
      `Fan-out on one topic under injected faults (lean sender, ${LATENCY_MS} ms added latency, medians of ${reps}, interleaved)`,
      ['faults', 'subscribers', 'records', 'wall s', 'records/s', 'delivered/expected per rep', 'records reported failed'],
      rows,
    );
    console.log(`  target: records/s with 20 % faults ≥ 0.5 × fault-free → ${ratio}x`);
    return {
      recordsPerSecondClean: Math.round(rate('clean')),
      recordsPerSecondFaults: Math.round(rate('faults')),
      ratioFaultsVsClean: ratio,
      subscribers,
      records,
      addedLatencyMs: LATENCY_MS,
      faults: FAULTS,
      reps,
      samples,
    };
  } finally {
    for (const ws of sockets) ws.terminate();
    aws.destroy();
    await em.close();
  }
}

function streamRecord(topic: string, seq: number): StreamRecordLike {
  return {
    eventName: 'MODIFY',
    dynamodb: { SequenceNumber: String(1e20 + seq), NewImage: marshall({ topic, seq, ts: Date.now(), data: { speed: 42.5, status: 'moving' } }) },
  };
}

async function writeSubscriptions(doc: import('@aws-sdk/lib-dynamodb').DynamoDBDocumentClient, table: string, topic: string, ids: string[]) {
  const expiresAt = Math.floor(Date.now() / 1000) + 7200;
  for (let i = 0; i < ids.length; i += 25) {
    let items = ids.slice(i, i + 25).map((connectionId) => ({ PutRequest: { Item: { topic, connectionId, expiresAt } } }));
    while (items.length) {
      const r = await doc.send(new BatchWriteCommand({ RequestItems: { [table]: items } }));
      items = (r.UnprocessedItems?.[table] ?? []) as typeof items;
    }
  }
}
