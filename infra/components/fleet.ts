import * as aws from '@pulumi/aws';
import * as awsx from '@pulumi/awsx';
import * as pulumi from '@pulumi/pulumi';
import type { Bundle } from '../bundle';
import { LIFECYCLE_HOOK_MARGIN_SECONDS, type StackConfig } from '../config';
import { agentGroupPolicy, agentPolicy, assertScoped, assumeRolePolicy, type AgentPolicyArns } from '../iam';
import { childName, objectArn } from '../naming';
import { renderUserData } from '../userdata';

/** Amazon Linux 2023 arm64, resolved by EC2 at launch (no AMI lookup in the program). */
/** The minimum an instance needs for Session Manager sessions (no Run Command, inventory or patching). */
export const SESSION_MANAGER_POLICY = {
  Version: '2012-10-17',
  Statement: [
    {
      Sid: 'SessionManager',
      Effect: 'Allow',
      Action: ['ssm:UpdateInstanceInformation', 'ssmmessages:CreateControlChannel', 'ssmmessages:CreateDataChannel', 'ssmmessages:OpenControlChannel', 'ssmmessages:OpenDataChannel'],
      Resource: '*',
    },
  ],
} as const;

export const AGENT_AMI = 'resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64';

export interface AgentFleetArgs {
  readonly prefix: string;
  readonly settings: StackConfig['fleet'];
  readonly dataProtection: boolean;
  readonly bundle: Bundle;
  readonly region: pulumi.Input<string>;
  readonly partition: pulumi.Input<string>;
  readonly account: pulumi.Input<string>;
  /** Non-secret agent environment. */
  readonly env: pulumi.Input<Record<string, pulumi.Input<string>>>;
  /** Agent variables filled at boot from Secrets Manager: variable → secret ARN. */
  readonly secretEnv?: pulumi.Input<Record<string, pulumi.Input<string>>>;
  /** Everything the instance role may touch, except the bundle object (created here). */
  readonly arns: pulumi.Input<Omit<AgentPolicyArns, 'bundleObject'>>;
  /**
   * What the boot script reads and must therefore exist before any instance can launch (the
   * sink secret's version: a secret without one answers GetSecretValue with an error).
   */
  readonly bootDependsOn?: readonly pulumi.Resource[];
  readonly tags?: Record<string, string>;
}

/**
 * The upstream agent fleet: a VPC (the account's default VPC, or a dedicated awsx VPC with
 * private subnets behind NAT), a security group with no inbound rules, the agent bundle in a
 * private encrypted bucket, an instance profile with only what the agent does, a launch
 * template (IMDSv2 only, encrypted root volume) whose user data runs the agent under systemd,
 * and an autoscaling group that replaces instances (launch before terminate) when the bundle
 * changes and gives a terminating instance time to release its leases.
 */
export class AgentFleet extends pulumi.ComponentResource {
  readonly vpcId: pulumi.Output<string>;
  readonly subnetIds: pulumi.Output<string[]>;
  readonly securityGroup: aws.ec2.SecurityGroup;
  readonly bucket: aws.s3.Bucket;
  readonly bundleObject: aws.s3.BucketObjectv2;
  readonly role: aws.iam.Role;
  readonly policy: aws.iam.RolePolicy;
  readonly launchTemplate: aws.ec2.LaunchTemplate;
  readonly group: aws.autoscaling.Group;
  readonly lifecycleHook: aws.autoscaling.LifecycleHook;
  readonly autoScalingGroupName: string;

  constructor(name: string, args: AgentFleetArgs, opts?: pulumi.ComponentResourceOptions) {
    super('realtime-gateway:infra:AgentFleet', name, {}, opts);
    const s = args.settings;
    const dedicated = s.vpc === 'dedicated';

    // ---- network
    if (dedicated) {
      const vpc = new awsx.ec2.Vpc(
        childName(name, 'vpc'),
        {
          numberOfAvailabilityZones: 2,
          // Explicit: awsx uses "Legacy" when none is given and announces "Auto" as the default
          // of its next major version, which allocates the subnets differently and would
          // re-plan (replace) every subnet on an upgrade. Legacy is the layout this program has
          // always produced (docs/decisions.md).
          subnetStrategy: awsx.ec2.SubnetAllocationStrategy.Legacy,
          natGateways: { strategy: s.natGateways === 'onePerAz' ? awsx.ec2.NatGatewayStrategy.OnePerAz : awsx.ec2.NatGatewayStrategy.Single },
          tags: args.tags,
        },
        { parent: this },
      );
      this.vpcId = vpc.vpcId;
      this.subnetIds = vpc.privateSubnetIds;
    } else if (s.vpc === 'existing') {
      // The caller's VPC: its subnets are taken as private with a route out (NAT or endpoints),
      // like the dedicated VPC's, so instances get no public address.
      this.vpcId = pulumi.output(s.vpcId!);
      this.subnetIds = pulumi.output(s.subnetIds!);
    } else {
      const vpc = new awsx.ec2.DefaultVpc(childName(name, 'vpc'), {}, { parent: this });
      this.vpcId = vpc.vpcId;
      // The default VPC only has public subnets: instances get a public IP to reach AWS APIs
      // and upstreams; with no inbound rule nothing can reach them.
      this.subnetIds = vpc.publicSubnetIds;
    }
    this.securityGroup = new aws.ec2.SecurityGroup(
      childName(name, 'sg'),
      {
        vpcId: this.vpcId,
        description: 'realtime-gateway agents: outbound only',
        ingress: [],
        // Upstream WebSocket URLs come from API callers and may use any TCP port; the agent's
        // SSRF guard decides which hosts are allowed. DNS and NTP go to VPC-local addresses
        // that security groups do not filter.
        egress: [{ protocol: 'tcp', fromPort: 0, toPort: 65535, cidrBlocks: ['0.0.0.0/0'], ipv6CidrBlocks: ['::/0'], description: 'outbound TCP' }],
        tags: { ...args.tags, Name: `${args.prefix}-agents` },
      },
      { parent: this },
    );

    // ---- agent bundle
    this.bucket = new aws.s3.Bucket(
      childName(name, 'bundles'),
      { bucketPrefix: `${args.prefix}-agent-`, forceDestroy: !args.dataProtection, tags: args.tags },
      { parent: this },
    );
    const publicAccess = new aws.s3.BucketPublicAccessBlock(
      childName(name, 'bundles-public-access'),
      { bucket: this.bucket.id, blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true },
      { parent: this },
    );
    const sse = new aws.s3.BucketServerSideEncryptionConfiguration(
      childName(name, 'bundles-sse'),
      { bucket: this.bucket.id, rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: 'AES256' }, bucketKeyEnabled: true }] },
      { parent: this },
    );
    new aws.s3.BucketPolicy(
      childName(name, 'bundles-tls-only'),
      {
        bucket: this.bucket.id,
        policy: this.bucket.arn.apply((arn) =>
          JSON.stringify({
            Version: '2012-10-17',
            Statement: [
              { Sid: 'TlsOnly', Effect: 'Deny', Principal: '*', Action: 's3:*', Resource: [arn, `${arn}/*`], Condition: { Bool: { 'aws:SecureTransport': 'false' } } },
            ],
          }),
        ),
      },
      { parent: this, dependsOn: [publicAccess] },
    );
    // Content-addressed key: a new bundle is a new object, so its key changes with the launch
    // template's user data. The old object does NOT stay: a changed key replaces this resource,
    // and Pulumi deletes the replaced object at the end of the update (after the group points
    // at the new template version); the instance role is granted only the current key anyway.
    // An instance still booting from the previous version then fails its download, and the
    // boot-failure path (userdata.ts) has the group replace it from the new version.
    const objectKey = `agent/${args.bundle.sha256}.mjs`;
    this.bundleObject = new aws.s3.BucketObjectv2(
      childName(name, 'bundle'),
      { bucket: this.bucket.id, key: objectKey, source: new pulumi.asset.FileAsset(args.bundle.file), serverSideEncryption: 'AES256', contentType: 'text/javascript' },
      { parent: this, dependsOn: [sse] },
    );

    // ---- identity
    this.role = new aws.iam.Role(
      childName(name, 'role'),
      { assumeRolePolicy: assumeRolePolicy('ec2.amazonaws.com'), description: 'realtime-gateway upstream agent instances', tags: args.tags },
      { parent: this },
    );
    this.policy = new aws.iam.RolePolicy(
      childName(name, 'policy'),
      {
        role: this.role.id,
        policy: pulumi
          .all([args.arns, this.bucket.arn])
          .apply(([arns, bucketArn]) => assertScoped('agent instance', agentPolicy({ ...arns, bundleObject: objectArn(bucketArn, objectKey) }))),
      },
      { parent: this },
    );
    const attachments: pulumi.Resource[] = [];
    if (s.ssm) {
      // Session Manager instead of SSH (there is no inbound rule), with the documented minimum
      // for sessions ("Create a custom IAM role for Session Manager", the same five actions as
      // AWS's AWSCloud9SSMInstanceProfile) instead of AmazonSSMManagedInstanceCore, whose
      // account-wide ssm:GetParameter(s) would expose every parameter. These actions exist only
      // on Resource "*". fleet.ssm defaults to off on prod (infra/config.ts).
      attachments.push(
        new aws.iam.RolePolicy(
          childName(name, 'ssm'),
          { role: this.role.id, policy: JSON.stringify(SESSION_MANAGER_POLICY) },
          { parent: this },
        ),
      );
    }
    const profile = new aws.iam.InstanceProfile(childName(name, 'profile'), { role: this.role.name, tags: args.tags }, { parent: this });

    // ---- instances
    this.autoScalingGroupName = `${args.prefix}-agents`;
    const lifecycleHookName = 'release-leases';
    const userData = pulumi
      .all([args.region, this.bucket.bucket, args.env, args.secretEnv ?? {}])
      .apply(([region, bucket, env, secretEnv]) =>
        Buffer.from(
          renderUserData({
            nodeMajor: s.nodeMajor,
            region,
            bucket,
            objectKey,
            sha256: args.bundle.sha256,
            env,
            secretEnv,
            stopTimeoutSeconds: s.leaseReleaseSeconds,
            autoScalingGroupName: this.autoScalingGroupName,
            lifecycleHookName,
          }),
        ).toString('base64'),
      );
    this.launchTemplate = new aws.ec2.LaunchTemplate(
      childName(name, 'lt'),
      {
        name: `${args.prefix}-agent`,
        description: 'realtime-gateway upstream agent',
        imageId: AGENT_AMI,
        instanceType: s.instanceType,
        iamInstanceProfile: { arn: profile.arn },
        // IMDSv2 only (session tokens), one hop: a process on the instance can reach it, a
        // forwarded request from elsewhere cannot.
        metadataOptions: { httpEndpoint: 'enabled', httpTokens: 'required', httpPutResponseHopLimit: 1, instanceMetadataTags: 'disabled' },
        blockDeviceMappings: [{ deviceName: '/dev/xvda', ebs: { encrypted: 'true', volumeType: 'gp3', volumeSize: 8, deleteOnTermination: 'true' } }],
        networkInterfaces: [{ associatePublicIpAddress: s.vpc === 'default' ? 'true' : 'false', securityGroups: [this.securityGroup.id], deleteOnTermination: 'true' }],
        userData,
        updateDefaultVersion: true,
        tagSpecifications: [{ resourceType: 'instance', tags: { ...args.tags, Name: `${args.prefix}-agent` } }, { resourceType: 'volume', tags: { ...args.tags } }],
        tags: args.tags,
      },
      // Everything the boot script fetches exists before an instance can launch from this.
      { parent: this, dependsOn: [this.bundleObject, this.policy, ...attachments, ...(args.bootDependsOn ?? [])] },
    );
    this.group = new aws.autoscaling.Group(
      childName(name, 'asg'),
      {
        name: this.autoScalingGroupName,
        minSize: s.minSize,
        maxSize: s.maxSize,
        desiredCapacity: s.desiredCapacity,
        vpcZoneIdentifiers: this.subnetIds,
        // A new launch template version (new bundle ⇒ new user data) starts an instance refresh.
        launchTemplate: { id: this.launchTemplate.id, version: this.launchTemplate.latestVersion.apply(String) },
        healthCheckType: 'EC2',
        healthCheckGracePeriod: 120,
        instanceRefresh: {
          strategy: 'Rolling',
          // Launch the replacement before terminating the old instance, so released leases are
          // picked up by a running agent within one reconcile period.
          preferences: { minHealthyPercentage: 100, maxHealthyPercentage: 200, instanceWarmup: '120' },
        },
        tags: [{ key: 'Name', value: `${args.prefix}-agent`, propagateAtLaunch: true }],
      },
      { parent: this },
    );
    this.lifecycleHook = new aws.autoscaling.LifecycleHook(
      childName(name, 'release-leases'),
      {
        name: lifecycleHookName,
        autoscalingGroupName: this.group.name,
        lifecycleTransition: 'autoscaling:EC2_INSTANCE_TERMINATING',
        // Upper bound: the watcher completes the action as soon as the agent has stopped.
        // ≤ 7200 s (PutLifecycleHook): config.ts caps leaseReleaseSeconds accordingly.
        heartbeatTimeout: s.leaseReleaseSeconds + LIFECYCLE_HOOK_MARGIN_SECONDS,
        defaultResult: 'CONTINUE',
      },
      { parent: this },
    );
    // After the group exists (its ARN has a generated id): the watcher may complete the hook,
    // and a failed boot may mark its own instance unhealthy.
    new aws.iam.RolePolicy(
      childName(name, 'lifecycle-policy'),
      { role: this.role.id, policy: this.group.arn.apply((arn) => assertScoped('agent lifecycle', agentGroupPolicy(arn))) },
      { parent: this },
    );
    this.registerOutputs({ autoScalingGroupName: this.group.name, bucket: this.bucket.bucket });
  }
}
