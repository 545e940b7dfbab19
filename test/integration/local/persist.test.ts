import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startLocalStack } from '../../../local/stack';
import { createLogger } from '../../../lib/log';

/**
 * `npm start -- --persist`: tables (a DynamoDB Local of its own with -dbPath) and the local
 * secret key survive a restart.
 */
describe('local stack --persist', function () {
  this.timeout(90_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rtg-persist-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const quiet = createLogger({ level: 'error' });

  it('keeps published items and the secrets key between runs', async () => {
    const first = await startLocalStack({ persistDir: dir, log: quiet });
    let firstKey: string;
    try {
      const r = await fetch(`${first.endpoints.httpUrl}/publish`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ topic: 'vehicle:9', data: { speed: 42 } }),
      });
      expect(r.status).to.equal(202);
      firstKey = first.env.LOCAL_SECRETS_KEY;
    } finally {
      await first.stop();
    }
    expect(fs.statSync(path.join(dir, 'secrets.key')).mode & 0o777).to.equal(0o600);

    const second = await startLocalStack({ persistDir: dir, log: quiet });
    try {
      const { ItemStore } = await import('../../../lib/stores/items');
      const store = new ItemStore(second.clients.doc, {
        itemsTable: second.tables.items,
        historyTable: second.tables.history,
        historyTtlSeconds: 3600,
      });
      const item = await store.get('vehicle:9');
      expect(item?.seq).to.equal(1);
      expect(item?.data).to.deep.equal({ speed: 42 });
      expect(second.env.LOCAL_SECRETS_KEY).to.equal(firstKey);
    } finally {
      await second.stop();
    }
  });
});
