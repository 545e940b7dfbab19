import { randomUUID } from 'node:crypto';
import { parseSecretValue, SecretNotFoundError } from '../../lib/upstream/secret-store';
import type { LocalSecretStore } from '../../lib/upstream/secrets-local';
import { localSecretArn, secretNameOf, type LocalArns } from './requests';

/**
 * The Secrets Manager calls the platform makes (CreateSecret, PutSecretValue, GetSecretValue),
 * answered by the IAM gateway over the sealed-file store, so the local stack runs the same
 * SecretsManagerStore code as AWS, and each call is authorised on the secret's ARN (name plus
 * Secrets Manager's random 6-character suffix) like every other call. Only the credential
 * shape the platform stores (`{"email","pass"}` JSON) is accepted.
 */

export interface SecretsReply {
  readonly status: number;
  readonly payload: Record<string, unknown>;
}

export function secretIdOf(body: Record<string, unknown>): string | undefined {
  const v = body.SecretId ?? body.Name;
  return typeof v === 'string' && v ? secretNameOf(v) : undefined;
}

export async function serveSecrets(store: LocalSecretStore, arns: LocalArns, operation: string, body: Record<string, unknown>): Promise<SecretsReply> {
  const name = secretIdOf(body);
  if (!name) return error('InvalidParameterException', `${operation} needs a SecretId (or Name)`);
  const ARN = localSecretArn(arns, name);
  const exists = () =>
    store.get(name).then(
      () => true,
      (err: unknown) => {
        if (err instanceof SecretNotFoundError) return false;
        throw err;
      },
    );
  const write = async () => {
    const text = body.SecretString;
    if (typeof text !== 'string') return error('InvalidParameterException', 'the local Secrets Manager stores SecretString values only');
    let creds;
    try {
      creds = parseSecretValue(name, text);
    } catch {
      return error('InvalidParameterException', 'the local Secrets Manager stores only {"email","pass"} JSON (upstream credentials)');
    }
    await store.put(name, creds);
    return { status: 200, payload: { ARN, Name: name, VersionId: randomUUID(), VersionStages: ['AWSCURRENT'] } };
  };
  switch (operation) {
    case 'CreateSecret':
      if (await exists()) return error('ResourceExistsException', `The operation failed because the secret ${name} already exists.`);
      return write();
    case 'PutSecretValue':
      if (!(await exists())) return error('ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
      return write();
    case 'GetSecretValue': {
      try {
        const v = await store.get(name);
        return {
          status: 200,
          payload: { ARN, Name: name, SecretString: JSON.stringify({ email: v.email, pass: v.pass }), VersionId: randomUUID(), VersionStages: ['AWSCURRENT'], CreatedDate: Date.now() / 1000 },
        };
      } catch (err) {
        if (err instanceof SecretNotFoundError) return error('ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
        throw err;
      }
    }
    default:
      return error('InvalidRequestException', `the local Secrets Manager does not implement ${operation}`);
  }
}

function error(type: string, message: string): SecretsReply {
  return { status: 400, payload: { __type: type, message, Message: message } };
}
