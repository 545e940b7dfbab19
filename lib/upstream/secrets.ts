import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { AppConfig } from '../config';
import type { SecretStore } from './secret-store';
import { LocalSecretStore } from './secrets-local';
import { SecretsManagerStore } from './secrets-aws';

export * from './secret-store';

/** The stack's secret store: Secrets Manager in AWS, sealed files in the local stack. */
export function createSecretStore(config: AppConfig['upstream'], secrets: SecretsManagerClient): SecretStore {
  if (config.secretsBackend === 'local') {
    // loadConfig already refused a local backend without a directory or a 64-hex-char key.
    return new LocalSecretStore({ dir: config.localSecretsDir!, keyHex: config.localSecretsKey! });
  }
  return new SecretsManagerStore(secrets);
}

