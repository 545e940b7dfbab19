import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import type { FunctionSpec } from '../../lib/functions';
import type { Bundle } from '../bundle';
import { assertScoped, assumeRolePolicy, functionPolicy, type FunctionPolicyArns } from '../iam';
import { childName, lambdaLogGroupName } from '../naming';

/**
 * A runtime AWS supports for Node.js Lambdas (nodejs20.x is deprecated from April 2026). The
 * bundles target node20 syntax, so they also run on newer runtimes.
 */
export const LAMBDA_RUNTIME = 'nodejs22.x';
/** Graviton: ~20 % cheaper per GB-second than x86 and nothing here is architecture-specific. */
export const LAMBDA_ARCHITECTURE = 'arm64';

export interface LambdaFunctionArgs {
  readonly spec: FunctionSpec;
  readonly functionName: string;
  readonly bundle: Bundle;
  readonly memoryMb: number;
  readonly timeoutSeconds: number;
  readonly logRetentionDays: number;
  readonly environment: pulumi.Input<Record<string, pulumi.Input<string>>>;
  /** ARNs the policy may name (all except the function's own log group, created here). */
  readonly arns: pulumi.Input<Omit<FunctionPolicyArns, 'logGroup'>>;
  readonly tags?: Record<string, string>;
}

/** One handler: its log group (with retention), its own role and policy, and the function. */
export class LambdaFunction extends pulumi.ComponentResource {
  readonly function: aws.lambda.Function;
  readonly role: aws.iam.Role;
  readonly policy: aws.iam.RolePolicy;
  readonly logGroup: aws.cloudwatch.LogGroup;
  readonly spec: FunctionSpec;

  constructor(name: string, args: LambdaFunctionArgs, opts?: pulumi.ComponentResourceOptions) {
    super('realtime-gateway:infra:LambdaFunction', name, {}, opts);
    this.spec = args.spec;
    // Created before the function so Lambda never auto-creates it without a retention.
    this.logGroup = new aws.cloudwatch.LogGroup(
      childName(name, 'logs'),
      { name: lambdaLogGroupName(args.functionName), retentionInDays: args.logRetentionDays, tags: args.tags },
      { parent: this },
    );
    this.role = new aws.iam.Role(
      childName(name, 'role'),
      { assumeRolePolicy: assumeRolePolicy('lambda.amazonaws.com'), description: `realtime-gateway ${args.spec.name} function`, tags: args.tags },
      { parent: this },
    );
    this.policy = new aws.iam.RolePolicy(
      childName(name, 'policy'),
      {
        role: this.role.id,
        policy: pulumi
          .all([args.arns, this.logGroup.arn])
          .apply(([arns, logGroup]) => assertScoped(`${args.spec.name} function`, functionPolicy(args.spec, { ...arns, logGroup }))),
      },
      { parent: this },
    );
    this.function = new aws.lambda.Function(
      childName(name, 'fn'),
      {
        name: args.functionName,
        description: args.spec.description.slice(0, 256),
        role: this.role.arn,
        runtime: LAMBDA_RUNTIME,
        architectures: [LAMBDA_ARCHITECTURE],
        handler: 'index.handler',
        code: new pulumi.asset.FileArchive(args.bundle.dir),
        // Pulumi hashes the archive itself; the bundle hash in a tag makes deploys traceable.
        memorySize: args.memoryMb,
        timeout: args.timeoutSeconds,
        environment: { variables: args.environment },
        loggingConfig: { logFormat: 'Text', logGroup: this.logGroup.name },
        tags: { ...args.tags, bundleSha256: args.bundle.sha256.slice(0, 16) },
      },
      // The first invocation must not race the role policy.
      { parent: this, dependsOn: [this.policy, this.logGroup] },
    );
    this.registerOutputs({ functionArn: this.function.arn });
  }
}
