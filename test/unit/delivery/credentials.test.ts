import { expect } from 'chai';
import type { AwsCredentialIdentity } from '@smithy/types';
import { CredentialCache, SigningError } from '../../../lib/delivery/sigv4';

/**
 * The credential cache in front of the SDK's provider chain: signing must not wait for the
 * provider on every post, yet rotating keys (`expiration`) must be replaced before they expire.
 */
describe('CredentialCache (lean sender credentials)', () => {
  const MIN = 60_000;
  let now = 0;
  const clock = () => now;
  const creds = (n: number, expiresAt?: number): AwsCredentialIdentity => ({
    accessKeyId: `ASIA${n}`,
    secretAccessKey: `secret-${n}`,
    sessionToken: `token-${n}`,
    ...(expiresAt === undefined ? {} : { expiration: new Date(expiresAt) }),
  });
  /** A provider handing out the next credentials on each call, with a call counter. */
  function rotating(lifetimeMs?: number) {
    const p = Object.assign(
      async () => {
        p.calls++;
        now += p.latencyMs; // the call takes this long on the test clock
        if (p.fail) throw new Error('IMDS unreachable');
        return creds(p.calls, lifetimeMs === undefined ? undefined : now + lifetimeMs);
      },
      { calls: 0, fail: false, latencyMs: 0 },
    );
    return p;
  }
  const settle = () => new Promise((r) => setImmediate(r));

  beforeEach(() => {
    now = Date.UTC(2026, 0, 1);
  });

  it('static credentials are usable without a provider call', async () => {
    const c = new CredentialCache(creds(7), { now: clock });
    expect(c.current()).to.equal(undefined); // not resolved yet
    expect((await c.resolve()).accessKeyId).to.equal('ASIA7');
    expect(c.current()?.sessionToken).to.equal('token-7');
  });

  it('concurrent first sends share one provider call; later sends never call it (no expiration)', async () => {
    const p = rotating();
    const c = new CredentialCache(p, { now: clock });
    const got = await Promise.all(Array.from({ length: 50 }, () => c.resolve()));
    expect(p.calls).to.equal(1);
    expect(new Set(got.map((g) => g.accessKeyId))).to.deep.equal(new Set(['ASIA1']));
    now += 24 * 60 * MIN;
    for (let i = 0; i < 1000; i++) expect(c.current()?.accessKeyId).to.equal('ASIA1');
    expect(p.calls).to.equal(1);
  });

  it('refreshes in the background inside the window, keeps serving the old keys until the new ones arrive', async () => {
    const p = rotating(60 * MIN);
    const c = new CredentialCache(p, { now: clock, refreshBeforeMs: 5 * MIN, expireBeforeMs: 30_000 });
    await c.resolve();
    now += 54 * MIN; // 6 min left: fresh
    expect(c.current()?.accessKeyId).to.equal('ASIA1');
    expect(p.calls).to.equal(1);
    now += 2 * MIN; // 4 min left: refresh window
    expect(c.current()?.accessKeyId).to.equal('ASIA1'); // not blocked
    expect(c.current()?.accessKeyId).to.equal('ASIA1');
    expect(p.calls).to.equal(2); // one background call, not one per send
    await settle();
    expect(c.current()?.accessKeyId).to.equal('ASIA2');
    expect(c.current()?.expiration?.getTime()).to.equal(now + 60 * MIN);
    expect(p.calls).to.equal(2);
  });

  it('expired keys are never used: the send waits for the provider', async () => {
    const p = rotating(60 * MIN);
    const c = new CredentialCache(p, { now: clock, refreshBeforeMs: 5 * MIN, expireBeforeMs: 30_000 });
    await c.resolve();
    now += 60 * MIN - 29_000; // inside the expiry margin
    expect(c.current()).to.equal(undefined);
    expect((await c.resolve()).accessKeyId).to.equal('ASIA2');
    expect(c.current()?.accessKeyId).to.equal('ASIA2');
  });

  it('a failed background refresh keeps the cached keys, is reported, and is retried later (not per send)', async () => {
    const p = rotating(60 * MIN);
    const errors: unknown[] = [];
    const usable: boolean[] = [];
    const c = new CredentialCache(p, { now: clock, retryAfterMs: 10_000, onRefreshError: (e, u) => (errors.push(e), usable.push(u)) });
    await c.resolve();
    p.fail = true;
    now += 57 * MIN;
    for (let i = 0; i < 100; i++) expect(c.current()?.accessKeyId).to.equal('ASIA1');
    await settle();
    expect(p.calls).to.equal(2);
    expect(errors).to.have.length(1);
    expect(errors[0]).to.be.instanceOf(SigningError).with.property('code', 'credentials_unavailable');
    expect(usable).to.deep.equal([true]); // the cached keys are still served
    expect(c.current()?.accessKeyId).to.equal('ASIA1');
    await settle();
    expect(p.calls).to.equal(2); // within retryAfterMs
    p.fail = false;
    now += 10_000;
    c.current();
    await settle();
    expect(p.calls).to.equal(3);
    expect(c.current()?.accessKeyId).to.equal('ASIA3');
  });

  it('a slow failing background refresh does not push the next background attempt beyond retryAfterMs', async () => {
    const p = rotating(60 * MIN);
    const c = new CredentialCache(p, { now: clock, retryAfterMs: 10_000 });
    await c.resolve();
    p.latencyMs = 3_000;
    p.fail = true;
    now += 57 * MIN;
    c.current();
    await settle();
    expect(p.calls).to.equal(2);
    now += 7_000; // 10 s after the first attempt STARTED (7 s after it failed)
    expect(c.current()?.accessKeyId).to.equal('ASIA1');
    await settle();
    expect(p.calls).to.equal(3);
  });

  it('a provider that keeps returning soon-expiring keys is asked again only after retryAfterMs', async () => {
    let calls = 0;
    const c = new CredentialCache(async () => (calls++, creds(1, Date.UTC(2026, 0, 1, 1))), { now: clock, retryAfterMs: 10_000 });
    await c.resolve();
    now = Date.UTC(2026, 0, 1, 0, 57); // 3 min left
    for (let i = 0; i < 10; i++) c.current();
    await settle();
    for (let i = 0; i < 10; i++) c.current();
    await settle();
    expect(calls).to.equal(2);
    now += 10_000;
    c.current();
    await settle();
    expect(calls).to.equal(3);
  });

  it('names what is wrong: provider failure, missing keys, already-expired keys', async () => {
    const failing = new CredentialCache(async () => { throw new Error('no credentials in the chain'); }, { now: clock });
    const e1 = await failing.resolve().catch((e) => e);
    expect(e1).to.be.instanceOf(SigningError).with.property('code', 'credentials_unavailable');
    expect(e1.message).to.contain('no credentials in the chain');

    const empty = new CredentialCache(async () => ({ accessKeyId: '', secretAccessKey: 'x' }), { now: clock });
    expect(await empty.resolve().catch((e) => e)).to.have.property('code', 'credentials_invalid');

    const stale = new CredentialCache(async () => creds(1, now - 1), { now: clock });
    expect(await stale.resolve().catch((e) => e)).to.have.property('code', 'credentials_expired');
    expect(stale.current()).to.equal(undefined);
  });

  it('past expiry with a failing provider: one provider call and one report per retry window, every send fails fast', async () => {
    const p = rotating(60 * MIN);
    const reports: [string, boolean][] = [];
    const c = new CredentialCache(p, { now: clock, retryAfterMs: 10_000, onRefreshError: (e, usable) => reports.push([e.code, usable]) });
    await c.resolve();
    now += 61 * MIN;
    p.fail = true;
    // A fan-out: thousands of sends one after another, none with usable credentials.
    for (let i = 0; i < 1000; i++) {
      expect(c.current()).to.equal(undefined);
      expect(await c.resolve().catch((e) => e.code)).to.equal('credentials_unavailable');
      now += 5; // 5 s in all: still inside the window
    }
    expect(p.calls, 'provider calls').to.equal(2);
    expect(reports).to.deep.equal([['credentials_unavailable', false]]);

    now += 5_000; // the window is over: one new attempt, still failing, reported once
    expect(await c.resolve().catch((e) => e.code)).to.equal('credentials_unavailable');
    expect(await c.resolve().catch((e) => e.code)).to.equal('credentials_unavailable');
    expect(p.calls).to.equal(3);
    expect(reports).to.have.length(2);

    p.fail = false;
    now += 10_000; // recovers at the next attempt, and the window is forgotten
    expect((await c.resolve()).accessKeyId).to.equal('ASIA4');
    expect(c.current()?.accessKeyId).to.equal('ASIA4');
    expect(p.calls).to.equal(4);
  });

  it('a first resolve that fails also opens the window (a cold start with no credentials in the chain)', async () => {
    const p = rotating();
    p.fail = true;
    const c = new CredentialCache(p, { now: clock, retryAfterMs: 10_000 });
    const all = await Promise.all(Array.from({ length: 20 }, () => c.resolve().catch((e) => e.code)));
    expect(new Set(all)).to.deep.equal(new Set(['credentials_unavailable']));
    for (let i = 0; i < 100; i++) await c.resolve().catch(() => {});
    expect(p.calls).to.equal(1);
    p.fail = false;
    now += 10_000;
    expect((await c.resolve()).accessKeyId).to.equal('ASIA2');
  });
});
