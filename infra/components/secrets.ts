import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { childName, secretPrefixArn } from '../naming';

export interface SecretStoreArgs {
  readonly stack: string;
  /** Name prefix of the upstream credential secrets the control API creates at run time. */
  readonly secretPrefix: string;
  readonly partition: pulumi.Input<string>;
  readonly region: pulumi.Input<string>;
  readonly account: pulumi.Input<string>;
  /** Data-lake sink credentials (plaintext config value; stored as a secret). */
  readonly sinkCredentials?: string;
  /** 0 deletes at once (ForceDeleteWithoutRecovery), otherwise 7–30 days. */
  readonly recoveryWindowInDays: number;
  readonly tags?: Record<string, string>;
}

/**
 * Secrets Manager as the store for upstream credentials. The control API creates one secret per
 * upstream socket under `secretPrefix` (lib/upstream/secrets-aws.ts); this component owns that
 * namespace (the scoped ARN pattern every policy uses) and the sink credentials secret.
 * Secrets use the AWS managed key aws/secretsmanager (no key cost).
 */
export class SecretStore extends pulumi.ComponentResource {
  readonly prefix: string;
  /** `arn:…:secret:{prefix}*` */
  readonly prefixArn: pulumi.Output<string>;
  readonly sinkSecret?: aws.secretsmanager.Secret;
  /** The sink secret's value: anything that reads the secret at boot must wait for it. */
  readonly sinkSecretVersion?: aws.secretsmanager.SecretVersion;

  constructor(name: string, args: SecretStoreArgs, opts?: pulumi.ComponentResourceOptions) {
    super('realtime-gateway:infra:SecretStore', name, {}, opts);
    const w = args.recoveryWindowInDays;
    if (!Number.isInteger(w) || (w !== 0 && (w < 7 || w > 30))) throw new Error(`secrets: recoveryWindowInDays ${w} is neither 0 nor 7–30 (DeleteSecret)`);
    this.prefix = args.secretPrefix;
    this.prefixArn = pulumi.all([args.partition, args.region, args.account]).apply(([p, r, a]) => secretPrefixArn(p, r, a, args.secretPrefix));
    if (args.sinkCredentials !== undefined) {
      this.sinkSecret = new aws.secretsmanager.Secret(
        childName(name, 'sink'),
        {
          // A prefix, not a fixed name: a deleted secret keeps its name for its recovery window
          // (7–30 days, DeleteSecret), so a fixed name would make a destroy + redeploy fail with
          // "already scheduled for deletion". The agent reads it by ARN (user data).
          namePrefix: `realtime-gateway/${args.stack}/sink/credentials-`,
          description: 'realtime-gateway data-lake sink credentials (read by the upstream agent)',
          recoveryWindowInDays: args.recoveryWindowInDays,
          tags: args.tags,
        },
        { parent: this },
      );
      this.sinkSecretVersion = new aws.secretsmanager.SecretVersion(
        childName(name, 'sink-value'),
        { secretId: this.sinkSecret.id, secretString: pulumi.secret(args.sinkCredentials) },
        { parent: this.sinkSecret },
      );
    }
    this.registerOutputs({ prefixArn: this.prefixArn });
  }
}
