import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { LocalSecretStore } from '../../../lib/upstream/secrets-local';
import { SecretCorruptError, SecretNotFoundError } from '../../../lib/upstream/secret-store';

describe('local secret store (AES-256-GCM sealed files)', () => {
  let dir: string;
  const key = randomBytes(32).toString('hex');
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rtg-secrets-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('round-trips credentials and overwrites on a second put', async () => {
    const s = new LocalSecretStore({ dir, keyHex: key });
    await s.put('p/abc', { email: 'a@b.c', pass: 'hunter2' });
    expect(await s.get('p/abc')).to.deep.equal({ email: 'a@b.c', pass: 'hunter2' });
    await s.put('p/abc', { email: 'a@b.c', pass: 'new' });
    expect((await s.get('p/abc')).pass).to.equal('new');
  });

  it('writes a 0600 file with no plaintext and a fresh IV per seal', async () => {
    const s = new LocalSecretStore({ dir, keyHex: key });
    await s.put('n1', { email: 'someone@example.com', pass: 'hunter2-very-secret' });
    const file = s.fileFor('n1');
    expect(fs.statSync(file).mode & 0o777).to.equal(0o600);
    const text = fs.readFileSync(file, 'utf8');
    expect(text).to.not.include('hunter2').and.not.include('someone@example.com');
    const iv1 = JSON.parse(text).iv;
    await s.put('n1', { email: 'someone@example.com', pass: 'hunter2-very-secret' });
    expect(JSON.parse(fs.readFileSync(file, 'utf8')).iv).to.not.equal(iv1);
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'))).to.deep.equal([]);
  });

  it('fails authentication on a wrong key, tampering, or a file moved under another name', async () => {
    const s = new LocalSecretStore({ dir, keyHex: key });
    await s.put('n1', { email: 'a@b.c', pass: 'x' });
    const other = new LocalSecretStore({ dir, keyHex: randomBytes(32).toString('hex') });
    await expectReject(other.get('n1'), AUTH_FAILED, SecretCorruptError);
    const sealed = JSON.parse(fs.readFileSync(s.fileFor('n1'), 'utf8'));
    const ct = Buffer.from(sealed.ct, 'base64');
    ct[0] ^= 1;
    fs.writeFileSync(s.fileFor('n1'), JSON.stringify({ ...sealed, ct: ct.toString('base64') }));
    await expectReject(s.get('n1'), AUTH_FAILED, SecretCorruptError);
    await s.put('n2', { email: 'a@b.c', pass: 'y' });
    fs.copyFileSync(s.fileFor('n2'), s.fileFor('n3'));
    await expectReject(s.get('n3'), AUTH_FAILED, SecretCorruptError);
  });

  it('reports an unknown secret as SecretNotFoundError', async () => {
    const s = new LocalSecretStore({ dir, keyHex: key });
    await expectReject(s.get('missing'), /^secret missing does not exist$/, SecretNotFoundError);
  });

  it('refuses a key that is not 64 hex characters', () => {
    expect(() => new LocalSecretStore({ dir, keyHex: 'abcd' })).to.throw(/64 hex/);
  });
});

/** GCM's authentication failure (Node's message for it): not a parse error or a missing file. */
const AUTH_FAILED = /^secret n\d failed authentication \(Unsupported state or unable to authenticate data\)$/;

async function expectReject(p: Promise<unknown>, message: RegExp, type: new (...a: never[]) => Error = Error): Promise<void> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(err, 'a rejection').to.be.instanceOf(type);
  expect((err as Error).message).to.match(message);
}
