import { expect } from 'chai';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { BundleError, bundleAgent, bundleLambda, handlerEntry, stackBuildDir } from '../../infra/bundle';

const here = path.dirname(new URL(import.meta.url).pathname);
const requireCjs = createRequire(import.meta.url);

describe('infra: esbuild bundler', function () {
  this.timeout(60_000);
  let out: string;
  before(() => {
    out = fs.mkdtempSync(path.join(os.tmpdir(), 'rtg-bundle-'));
  });
  after(() => fs.rmSync(out, { recursive: true, force: true }));

  it('bundles a handler to a minified CommonJS index.js whose handler export resolves', async () => {
    const b = bundleLambda(path.join(here, 'fixtures/handler/ok.ts'), out, 'ok');
    expect(b.file).to.equal(path.join(out, 'lambda', 'ok', 'index.js'));
    expect(fs.readdirSync(b.dir)).to.deep.equal(['index.js']);
    expect(b.bytes).to.equal(fs.statSync(b.file).size).and.to.be.greaterThan(0);
    expect(b.sha256).to.match(/^[0-9a-f]{64}$/);
    const src = fs.readFileSync(b.file, 'utf8');
    expect(src.split('\n').length).to.be.lessThan(10); // minified
    expect(src).to.not.match(/^import /m); // CommonJS, not ESM
    const mod = requireCjs(b.file);
    expect(await mod.handler({ topic: 'vehicle:3' })).to.deep.equal({ problem: null });
    expect((await mod.handler({ topic: '' })).problem).to.be.a('string');
  });

  it('is deterministic: same source, same hash (no spurious instance refresh)', () => {
    const a = bundleLambda(path.join(here, 'fixtures/handler/ok.ts'), path.join(out, 'a'), 'ok');
    const b = bundleLambda(path.join(here, 'fixtures/handler/ok.ts'), path.join(out, 'b'), 'ok');
    expect(a.sha256).to.equal(b.sha256);
  });

  it('bundles ESM for the agent with a require shim for CommonJS dependencies', () => {
    const b = bundleAgent(path.join(here, 'fixtures/handler/ok.ts'), out);
    expect(b.file.endsWith('agent.mjs')).to.equal(true);
    expect(fs.readFileSync(b.file, 'utf8')).to.include('createRequire');
  });

  it('builds each stack into its own directory, so one stack’s build never removes another’s bundles', () => {
    const entry = path.join(here, 'fixtures/handler/ok.ts');
    expect(stackBuildDir(out, 'dev')).to.equal(path.join(out, '.build', 'dev'));
    const dev = bundleLambda(entry, stackBuildDir(out, 'dev'), 'ok');
    const prod = bundleLambda(entry, stackBuildDir(out, 'prod'), 'ok');
    expect(prod.file).to.not.equal(dev.file);
    expect(fs.readFileSync(dev.file).length).to.equal(dev.bytes); // still there after the prod build
    for (const bad of ['..', '../dev', 'a/b', '']) expect(() => stackBuildDir(out, bad), bad).to.throw(/cannot name a build directory/);
  });

  it('fails clearly, naming the file, when a handler file does not exist', () => {
    const missing = handlerEntry(path.join(here, 'fixtures'), 'nope');
    expect(() => bundleLambda(missing, out, 'nope')).to.throw(BundleError, /function nope: .*functions\/nope\.ts does not exist/);
  });

  it('fails with esbuild’s location when the source does not compile', () => {
    try {
      bundleLambda(path.join(here, 'fixtures/broken/syntax.js'), out, 'broken');
      expect.fail('should have thrown');
    } catch (err) {
      expect(err).to.be.instanceOf(BundleError);
      expect((err as BundleError).code).to.equal('bundle_failed');
      expect((err as Error).message).to.match(/syntax\.js:2: /);
    }
  });
});
