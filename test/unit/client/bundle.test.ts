import { expect } from 'chai';
import { build } from 'esbuild';
import fs from 'node:fs';
import { gzipSync } from 'node:zlib';
import { BROWSER_BUDGET_BYTES, BROWSER_BUNDLE, buildClientJs, formatSize } from '../../../scripts/build-client';
import { WebSocket } from 'ws';
import { connect } from '../../../client/index';

describe('client SDK packaging', () => {
  it('bundles for browsers with no Node-only module (esbuild, platform browser)', async () => {
    const out = await build({
      entryPoints: ['client/index.ts'],
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'browser',
      target: ['es2020'],
      logLevel: 'silent',
    });
    expect(out.errors).to.deep.equal([]);
    const text = out.outputFiles[0].text;
    expect(text).to.not.match(/\bfrom\s+["'](node:|ws["'])/);
    expect(text).to.not.match(/\brequire\(/);
    // Buffer is a Node global, not an import: the shared protocol module must size frames without it.
    expect(text).to.not.match(/\bBuffer\b/);
  });

  it('the minified browser bundle stays within 8 KB gzipped (npm run build:client)', async () => {
    const sizes = await buildClientJs();
    console.log(`      ${formatSize(sizes)}`);
    expect(BROWSER_BUDGET_BYTES).to.equal(8 * 1024);
    // Measured again from the file on disk: what a page would load.
    const gz = gzipSync(fs.readFileSync(BROWSER_BUNDLE), { level: 9 }).length;
    expect(gz).to.equal(sizes.browserGzipBytes);
    expect(gz).to.be.at.most(BROWSER_BUDGET_BYTES);
    const text = fs.readFileSync(BROWSER_BUNDLE, 'utf8');
    expect(text).to.match(/export\s*\{/); // an ES module a page can import
    expect(text).to.not.match(/\brequire\(|from\s*["'](node:|ws["'])/);
  });

  it("accepts the ws package's WebSocket class as is (Node 20 has no global WebSocket)", () => {
    // Type-level check (tsc) as much as a runtime one: no cast needed.
    const c = connect('ws://127.0.0.1:9/', { WebSocket, userId: 'x', maxAttempts: 1, backoff: { initialMs: 1 } });
    c.on('error', () => {});
    c.close();
    expect(c.state).to.equal('closed');
  });
});
