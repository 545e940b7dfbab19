import type { Credentials } from './headers';

/**
 * Where upstream credentials live. Table rows and SQS commands carry only the secret's name
 * (`secretRef`); the value `{email, pass}` is written by the control API and read by the agent.
 * AWS Secrets Manager in the cloud, AES-256-GCM sealed files in the local stack.
 */
export interface SecretStore {
  put(name: string, value: Credentials): Promise<void>;
  /** Throws SecretNotFoundError when there is no such secret, SecretCorruptError when it cannot be read as credentials. */
  get(name: string): Promise<Credentials>;
}

export class SecretNotFoundError extends Error {
  readonly code = 'secret_not_found';
  constructor(name: string) {
    super(`secret ${name} does not exist`);
    this.name = 'SecretNotFoundError';
  }
}

/**
 * The secret exists but can never be used as stored (not `{email, pass}` JSON, or a sealed file
 * that fails authentication): final like a missing secret, since retrying reads the same bytes.
 */
export class SecretCorruptError extends Error {
  readonly code = 'secret_corrupt';
  constructor(name: string, why: string) {
    super(`secret ${name} ${why}`);
    this.name = 'SecretCorruptError';
  }
}

/** The secret name of one upstream socket. */
export function secretNameFor(prefix: string, socketId: string): string {
  return `${prefix}${socketId}`;
}

/** Parses a stored secret value; anything but `{email, pass}` strings is corrupt. */
export function parseSecretValue(name: string, text: string): Credentials {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new SecretCorruptError(name, 'is not JSON');
  }
  const o = v as { email?: unknown; pass?: unknown };
  if (typeof o?.email !== 'string' || typeof o?.pass !== 'string') throw new SecretCorruptError(name, 'is not {email, pass}');
  return { email: o.email, pass: o.pass };
}
