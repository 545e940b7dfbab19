import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createBundler } from '../../infra/bundle';

/**
 * Delivery metrics leave the hot path as log lines (EMF), never as CloudWatch API calls: the
 * deployed fan-out and publish bundles carry powertools' EMF writer and no PutMetricData (and no
 * function's role grants it: test/infra/iam.test.ts holds each policy to exactly its spec).
 */
describe('infra: delivery metrics are EMF log lines, not PutMetricData calls', function () {
  this.timeout(120_000);
  const root = path.resolve(import.meta.dirname, '../..');
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'rtg-metrics-bundles-'));
  after(() => fs.rmSync(out, { recursive: true, force: true }));

  for (const fn of ['fanout', 'publish']) {
    it(`${fn}: the deployed bundle writes EMF (_aws.CloudWatchMetrics) and holds no PutMetricData call`, () => {
      const text = fs.readFileSync(createBundler(root, out).lambda(fn).file, 'utf8');
      expect(text).to.include('CloudWatchMetrics');
      expect(text).to.not.include('PutMetricData');
    });
  }
});
