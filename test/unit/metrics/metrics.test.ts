import { expect } from 'chai';
import { createDeliveryMetrics, DELIVERY_METRICS, noMetrics } from '../../../lib/metrics';

describe('delivery metrics writer', () => {
  it('writes nothing when no writer is given', () => {
    expect(createDeliveryMetrics({ namespace: 'RealtimeGateway/test' })).to.equal(noMetrics);
  });

  it('a latency distribution over 100 values is split into EMF lines of at most 100 values, all through the writer', () => {
    const lines: string[] = [];
    const m = createDeliveryMetrics({ namespace: 'RealtimeGateway/test', write: (l) => lines.push(l) });
    for (let i = 0; i < 250; i++) m.latency(i);
    m.count('deliveries', 250);
    m.flush();
    const docs = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const values = docs.flatMap((d) => (d[DELIVERY_METRICS.latency] as number[] | number | undefined) ?? []);
    expect(values).to.have.length(250);
    expect(docs.every((d) => !Array.isArray(d[DELIVERY_METRICS.latency]) || (d[DELIVERY_METRICS.latency] as number[]).length <= 100)).to.equal(true);
    expect(docs.map((d) => d[DELIVERY_METRICS.deliveries]).filter((v) => v !== undefined)).to.deep.equal([250]);
  });

  it('an empty flush writes no line, and a negative latency (source clock ahead) counts as 0', () => {
    const lines: string[] = [];
    const m = createDeliveryMetrics({ namespace: 'RealtimeGateway/test', write: (l) => lines.push(l) });
    m.flush();
    expect(lines).to.have.length(0);
    m.latency(-40);
    m.flush();
    expect(JSON.parse(lines[0]!)[DELIVERY_METRICS.latency]).to.equal(0);
  });
});
