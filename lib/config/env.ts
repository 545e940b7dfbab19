import { ConfigError } from '../errors';

/**
 * A typed reader over an environment map. Every accessor throws ConfigError naming the key and
 * the expected form, so a bad deployment stops at start-up instead of failing on first use.
 */
export class EnvReader {
  constructor(private readonly env: Readonly<Record<string, string | undefined>>) {}

  raw(key: string): string | undefined {
    const v = this.env[key];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  }

  string(key: string, fallback?: string): string {
    const v = this.raw(key) ?? fallback;
    if (v === undefined) throw new ConfigError(key, 'is required but not set');
    return v;
  }

  optional(key: string): string | undefined {
    return this.raw(key);
  }

  oneOf<T extends string>(key: string, allowed: readonly T[], fallback?: T): T {
    const v = this.raw(key) ?? fallback;
    if (v === undefined) throw new ConfigError(key, `is required; expected one of ${allowed.join(', ')}`);
    if (!(allowed as readonly string[]).includes(v)) {
      throw new ConfigError(key, `is "${v}"; expected one of ${allowed.join(', ')}`);
    }
    return v as T;
  }

  int(key: string, opts: { fallback?: number; min?: number; max?: number } = {}): number {
    const s = this.raw(key);
    if (s === undefined) {
      if (opts.fallback === undefined) throw new ConfigError(key, 'is required; expected an integer');
      return opts.fallback;
    }
    if (!/^-?\d+$/.test(s)) throw new ConfigError(key, `is "${s}"; expected an integer`);
    const n = Number(s);
    if (opts.min !== undefined && n < opts.min) throw new ConfigError(key, `is ${n}; expected at least ${opts.min}`);
    if (opts.max !== undefined && n > opts.max) throw new ConfigError(key, `is ${n}; expected at most ${opts.max}`);
    return n;
  }

  bool(key: string, fallback: boolean): boolean {
    const s = this.raw(key);
    if (s === undefined) return fallback;
    if (/^(true|1|yes)$/i.test(s)) return true;
    if (/^(false|0|no)$/i.test(s)) return false;
    throw new ConfigError(key, `is "${s}"; expected true or false`);
  }

  list(key: string, fallback: string[] = []): string[] {
    const s = this.raw(key);
    if (s === undefined) return fallback;
    return s
      .split(',')
      .map((x) => x.trim())
      .filter((x) => x.length > 0);
  }

  url(key: string, protocols: readonly string[], fallback?: string): string {
    const s = this.raw(key) ?? fallback;
    if (s === undefined) throw new ConfigError(key, `is required; expected a ${protocols.join('/')} URL`);
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      throw new ConfigError(key, `is "${s}"; expected a ${protocols.join('/')} URL`);
    }
    if (!protocols.includes(u.protocol.replace(/:$/, ''))) {
      throw new ConfigError(key, `is "${s}"; expected a ${protocols.join('/')} URL`);
    }
    return s.replace(/\/+$/, '');
  }
}
