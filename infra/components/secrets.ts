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

  constructor(name: string, args: SecretStoreArgs, opts?: pulumi.ComponentResourceOptions) {
    super('realtime-gateway:infra:SecretStore', name, {}, opts);
    this.prefix = args.secretPrefix;
    this.prefixArn = pulumi.all([args.partition, args.region, args.account]).apply(([p, r, a]) => secretPrefixArn(p, r, a, args.secretPrefix));
    if (args.sinkCredentials !== undefined) {
      this.sinkSecret = new aws.secretsmanager.Secret(
        childName(name, 'sink'),
        {
          name: `realtime-gateway/${args.stack}/sink/credentials`,
          description: 'realtime-gateway data-lake sink credentials (read by the upstream agent)',
          recoveryWindowInDays: args.recoveryWindowInDays,
          tags: args.tags,
        },
        { parent: this },
      );
      new aws.secretsmanager.SecretVersion(
        childName(name, 'sink-value'),
        { secretId: this.sinkSecret.id, secretString: pulumi.secret(args.sinkCredentials) },
        { parent: this.sinkSecret },
      );
    }
    this.registerOutputs({ prefixArn: this.prefixArn });
  }
}
