import { createCipheriv, createDecipheriv, createHash, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Credentials } from './headers';
import { parseSecretValue, SecretCorruptError, SecretNotFoundError, type SecretStore } from './secret-store';

/**
 * The local stack's stand-in for Secrets Manager: one AES-256-GCM sealed JSON file per secret,
 * mode 0600. Each seal uses a fresh random 96-bit IV (NIST SP 800-38D's recommended size; an IV
 * must never repeat under one key) and the secret's name as additional authenticated data, so
 * a file copied under another secret's name fails authentication instead of decrypting.
 * Writes go to a temporary file and are renamed into place, so a reader never sees half a file.
 */

interface SealedFile {
  v: 1;
  alg: 'aes-256-gcm';
  iv: string;
  tag: string;
  ct: string;
}

export class LocalSecretStore implements SecretStore {
  private readonly key: KeyObject;
  private readonly dir: string;

  constructor(opts: { dir: string; keyHex: string }) {
    if (!/^[0-9a-fA-F]{64}$/.test(opts.keyHex)) throw new Error('local secret key must be 64 hex characters (32 bytes)');
    // A KeyObject is imported once; a Buffer key is re-imported by every cipher created from it.
    this.key = createSecretKey(Buffer.from(opts.keyHex, 'hex'));
    this.dir = opts.dir;
  }

  /** File name: a hash of the secret name, since names contain `/` and may be long. */
  fileFor(name: string): string {
    return path.join(this.dir, `${createHash('sha256').update(name).digest('hex')}.secret.json`);
  }

  async put(name: string, value: Credentials): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    c.setAAD(Buffer.from(name, 'utf8'));
    const ct = Buffer.concat([c.update(JSON.stringify({ email: value.email, pass: value.pass }), 'utf8'), c.final()]);
    const sealed: SealedFile = { v: 1, alg: 'aes-256-gcm', iv: iv.toString('base64'), tag: c.getAuthTag().toString('base64'), ct: ct.toString('base64') };
    const file = this.fileFor(name);
    const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
    await fs.writeFile(tmp, JSON.stringify(sealed), { mode: 0o600 });
    await fs.rename(tmp, file);
  }

  async get(name: string): Promise<Credentials> {
    let text: string;
    try {
      // Synchronous on purpose: a sealed file is ~200 bytes in the page cache, read in
      // microseconds, while an async readFile is four thread-pool round trips (open, fstat, read,
      // close). After a failover the agent reads a thousand of them at once; measured, the async
      // reads were a fifth of the survivor's CPU. This store is the local stack's only.
      text = readFileSync(this.fileFor(name), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new SecretNotFoundError(name);
      throw err;
    }
    return parseSecretValue(name, this.open(name, text));
  }

  /** The plaintext of a sealed file; SecretCorruptError when it is not one or fails authentication. */
  private open(name: string, text: string): string {
    let s: SealedFile;
    try {
      s = JSON.parse(text) as SealedFile;
    } catch {
      throw new SecretCorruptError(name, 'is not a sealed file (not JSON)');
    }
    if (s?.v !== 1 || s.alg !== 'aes-256-gcm') throw new SecretCorruptError(name, 'has an unknown sealed format');
    try {
      const d = createDecipheriv('aes-256-gcm', this.key, Buffer.from(s.iv, 'base64'));
      d.setAAD(Buffer.from(name, 'utf8'));
      d.setAuthTag(Buffer.from(s.tag, 'base64'));
      // final() throws on a wrong key, tampering, or a file moved under another name.
      return Buffer.concat([d.update(Buffer.from(s.ct, 'base64')), d.final()]).toString('utf8');
    } catch (err) {
      throw new SecretCorruptError(name, `failed authentication (${(err as Error).message})`);
    }
  }
}
