import {
  CreateSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  ResourceExistsException,
  ResourceNotFoundException,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import type { Credentials } from './headers';
import { parseSecretValue, SecretNotFoundError, type SecretStore } from './secret-store';

/**
 * AWS Secrets Manager. `put` creates the secret on first use and adds a new version
 * afterwards (CreateSecret refuses an existing name with ResourceExistsException). Secrets are
 * not deleted on DELETE /websocket: a deleted name stays reserved for its 7–30 day recovery
 * window and CreateSecret would fail for a socket that is opened again; a new POST overwrites
 * the value instead.
 */
export class SecretsManagerStore implements SecretStore {
  constructor(private readonly client: SecretsManagerClient) {}

  async put(name: string, value: Credentials): Promise<void> {
    const SecretString = JSON.stringify({ email: value.email, pass: value.pass });
    try {
      await this.client.send(new CreateSecretCommand({ Name: name, SecretString, Description: 'realtime-gateway upstream credentials' }));
    } catch (err) {
      if (!(err instanceof ResourceExistsException) && (err as Error)?.name !== 'ResourceExistsException') throw err;
      await this.client.send(new PutSecretValueCommand({ SecretId: name, SecretString }));
    }
  }

  async get(name: string): Promise<Credentials> {
    try {
      const r = await this.client.send(new GetSecretValueCommand({ SecretId: name }));
      if (r.SecretString === undefined) throw new Error(`secret ${name} has no string value`);
      return parseSecretValue(name, r.SecretString);
    } catch (err) {
      if (err instanceof ResourceNotFoundException || (err as Error)?.name === 'ResourceNotFoundException') throw new SecretNotFoundError(name);
      throw err;
    }
  }
}
