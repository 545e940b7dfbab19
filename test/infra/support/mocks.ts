import * as pulumi from '@pulumi/pulumi';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';

/**
 * Strict Pulumi mocks: every resource the program registers is recorded with its inputs, and
 * computed outputs (ARNs, URLs, ids) are filled in with realistic shapes so scoped-ARN checks
 * run against what AWS would return. Any provider function call the program makes that is not
 * listed in CALLS throws, so a new data-source lookup cannot slip in unnoticed.
 */

export const ACCOUNT = '123456789012';
export const REGION = 'eu-west-1';

export interface Recorded {
  readonly type: string;
  readonly name: string;
  readonly id: string | undefined;
  /** Inputs with secrets unwrapped (see `raw` for the secret markers). */
  readonly inputs: Record<string, any>;
  /** Inputs as the engine received them: secret values are wrapped (see isSecretValue). */
  readonly raw: Record<string, any>;
  readonly state: Record<string, any>;
  /** Resource options as the engine received them. */
  readonly options: {
    readonly retainOnDelete: boolean;
    readonly protect: boolean;
    readonly dependencies: readonly string[];
    /** URN of the parent ('' for none: the engine then parents to the stack). */
    readonly parent: string;
    /** Aliases as the engine received them (alias specs, or URNs the SDK computed). */
    readonly aliases: readonly unknown[];
  };
}

const calls = (partition: string): Record<string, (inputs: any) => Record<string, unknown>> => ({
  'aws:index/getRegion:getRegion': () => ({ region: REGION, name: REGION, id: REGION, endpoint: `ec2.${REGION}.amazonaws.com`, description: 'Europe (Ireland)' }),
  'aws:index/getCallerIdentity:getCallerIdentity': () => ({ accountId: ACCOUNT, arn: `arn:${partition}:iam::${ACCOUNT}:user/deployer`, userId: 'AIDAEXAMPLE', id: ACCOUNT }),
  'aws:index/getPartition:getPartition': () => ({ partition, dnsSuffix: 'amazonaws.com', reverseDnsPrefix: 'com.amazonaws', id: partition }),
});

/** Pulumi's wire marker for a secret value (the "special signature" of the RPC protocol). */
const SECRET_SIG = '4dabf18193072939515e22adb298388d';
const SECRET_VALUE = '1b47061264138c4ac30d75fd1eb44270';

export function isSecretValue(v: unknown): boolean {
  return typeof v === 'object' && v !== null && (v as Record<string, unknown>)[SECRET_SIG] === SECRET_VALUE;
}

export function unwrapSecrets(v: any): any {
  if (isSecretValue(v)) return unwrapSecrets(v.value);
  if (Array.isArray(v)) return v.map(unwrapSecrets);
  if (v && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unwrapSecrets(x)]));
  }
  return v;
}

let counter = 0;
const shortId = (prefix = '') => `${prefix}${(++counter).toString(36).padStart(6, '0')}k${Math.floor(Math.random() * 1e6).toString(36)}`.toLowerCase();

function computed(type: string, name: string, inputs: Record<string, any>, partition: string): { id: string; state: Record<string, any> } {
  const arnBase = (svc: string) => `arn:${partition}:${svc}:${REGION}:${ACCOUNT}`;
  switch (type) {
    case 'aws:dynamodb/table:Table': {
      const arn = `${arnBase('dynamodb')}:table/${inputs.name}`;
      return { id: inputs.name, state: { arn, streamArn: inputs.streamEnabled ? `${arn}/stream/2025-01-01T00:00:00.000` : '' } };
    }
    case 'aws:sqs/queue:Queue':
      return { id: `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/${inputs.name}`, state: { arn: `${arnBase('sqs')}:${inputs.name}`, url: `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/${inputs.name}` } };
    case 'aws:apigatewayv2/api:Api': {
      const id = shortId();
      const scheme = inputs.protocolType === 'WEBSOCKET' ? 'wss' : 'https';
      return { id, state: { apiEndpoint: `${scheme}://${id}.execute-api.${REGION}.amazonaws.com`, executionArn: `${arnBase('execute-api')}:${id}`, arn: `arn:${partition}:apigateway:${REGION}::/apis/${id}` } };
    }
    case 'aws:cloudwatch/logGroup:LogGroup':
      return { id: inputs.name, state: { arn: `${arnBase('logs')}:log-group:${inputs.name}` } };
    case 'aws:lambda/function:Function': {
      const arn = `${arnBase('lambda')}:function:${inputs.name}`;
      return { id: inputs.name, state: { arn, invokeArn: `arn:${partition}:apigateway:${REGION}:lambda:path/2015-03-31/functions/${arn}/invocations` } };
    }
    case 'aws:iam/role:Role':
      return { id: `${name}-role`, state: { arn: `arn:${partition}:iam::${ACCOUNT}:role/${name}`, name } };
    case 'aws:iam/policy:Policy':
      return { id: `arn:${partition}:iam::${ACCOUNT}:policy/${inputs.name}`, state: { arn: `arn:${partition}:iam::${ACCOUNT}:policy/${inputs.name}` } };
    case 'aws:iam/instanceProfile:InstanceProfile':
      return { id: name, state: { arn: `arn:${partition}:iam::${ACCOUNT}:instance-profile/${name}` } };
    case 'aws:s3/bucket:Bucket': {
      const bucket = `${inputs.bucketPrefix ?? name}${shortId()}`;
      return { id: bucket, state: { bucket, arn: `arn:${partition}:s3:::${bucket}` } };
    }
    case 'aws:secretsmanager/secret:Secret': {
      // With namePrefix, AWS (the provider) appends a unique suffix to the prefix.
      const secretName = inputs.name ?? `${inputs.namePrefix}20261130000000000000000001`;
      return { id: secretName, state: { name: secretName, arn: `${arnBase('secretsmanager')}:secret:${secretName}-AbC123` } };
    }
    case 'aws:sns/topic:Topic':
      return { id: `${arnBase('sns')}:${inputs.name}`, state: { arn: `${arnBase('sns')}:${inputs.name}` } };
    case 'aws:ec2/launchTemplate:LaunchTemplate':
      return { id: `lt-${shortId()}`, state: { latestVersion: 1, arn: `${arnBase('ec2')}:launch-template/lt-x` } };
    case 'aws:ec2/securityGroup:SecurityGroup':
      return { id: `sg-${shortId()}`, state: { arn: `${arnBase('ec2')}:security-group/sg-x` } };
    case 'aws:autoscaling/group:Group':
      return { id: inputs.name, state: { arn: `arn:${partition}:autoscaling:${REGION}:${ACCOUNT}:autoScalingGroup:0f5c6b1e-1111-2222-3333-444455556666:autoScalingGroupName/${inputs.name}` } };
    case 'aws:lambda/eventSourceMapping:EventSourceMapping':
      return { id: shortId(), state: { uuid: '11111111-2222-3333-4444-555555555555' } };
    case 'awsx:ec2:Vpc':
      return { id: `${name}`, state: { vpcId: 'vpc-0dedicated', privateSubnetIds: ['subnet-priv-a', 'subnet-priv-b'], publicSubnetIds: ['subnet-pub-a', 'subnet-pub-b'], isolatedSubnetIds: [] } };
    case 'awsx:ec2:DefaultVpc':
      return { id: `${name}`, state: { vpcId: 'vpc-0default', privateSubnetIds: [], publicSubnetIds: ['subnet-def-a', 'subnet-def-b', 'subnet-def-c'] } };
    default:
      return { id: `${name}-id`, state: {} };
  }
}

export interface MockRun {
  readonly resources: Recorded[];
  readonly calls: string[];
  /** registerOutputs of component resources: URN → the output names registered. */
  readonly registeredOutputs: Map<string, string[]>;
}

interface RegisterRequest {
  getType(): string;
  getName(): string;
  getRetainondelete(): boolean;
  getProtect(): boolean;
  getDependenciesList(): string[];
  getParent(): string;
  getAliasesList(): { toObject(): unknown }[];
}

/**
 * Installs fresh mocks for one stack; returns the live record of what gets registered.
 * `partition` is what `aws.getPartition` answers (and what the mocked ARNs use): run with
 * `aws-cn` to catch an ARN the program builds with a literal `arn:aws:`.
 */
export async function installMocks(stack: string, opts: { partition?: string } = {}): Promise<MockRun> {
  const run: MockRun = { resources: [], calls: [], registeredOutputs: new Map() };
  const partition = opts.partition ?? 'aws';
  const CALLS = calls(partition);
  // Pulumi's mocks hand newResource the inputs only; resource options (retainOnDelete,
  // dependsOn) travel in the register request, read here by wrapping the mock monitor.
  const options = new Map<string, Recorded['options']>();
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        const { id, state } = computed(args.type, args.name, args.inputs, partition);
        const full = { ...unwrapSecrets(args.inputs), ...state };
        const o = options.get(`${args.type}::${args.name}`) ?? { retainOnDelete: false, protect: false, dependencies: [], parent: '', aliases: [] };
        run.resources.push({ type: args.type, name: args.name, id, inputs: unwrapSecrets(args.inputs), raw: args.inputs, state: full, options: o });
        return { id, state: full };
      },
      call(args) {
        const f = CALLS[args.token];
        if (!f) throw new Error(`unmocked provider call ${args.token}`);
        run.calls.push(args.token);
        return f(args.inputs);
      },
    },
    'realtime-gateway',
    stack,
    false,
  );
  const monitor = pulumi.runtime.getMonitor() as unknown as {
    registerResource(req: RegisterRequest, cb: unknown): unknown;
    registerResourceOutputs(req: { getUrn(): string; getOutputs(): { toJavaScript(): Record<string, unknown> } | undefined }, cb: unknown): unknown;
  };
  const registerOutputs = monitor.registerResourceOutputs.bind(monitor);
  monitor.registerResourceOutputs = (req, cb) => {
    run.registeredOutputs.set(req.getUrn(), Object.keys(req.getOutputs()?.toJavaScript() ?? {}));
    return registerOutputs(req, cb);
  };
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, cb) => {
    options.set(`${req.getType()}::${req.getName()}`, {
      retainOnDelete: req.getRetainondelete(),
      protect: req.getProtect(),
      dependencies: req.getDependenciesList(),
      parent: req.getParent(),
      aliases: req.getAliasesList().map((a) => a.toObject()),
    });
    return register(req, cb);
  };
  return run;
}

/** Resolves an Output (or a plain value) to its value. */
export function value<T>(o: pulumi.Input<T> | undefined): Promise<T> {
  return new Promise((resolve) => pulumi.output(o as pulumi.Input<T>).apply((v) => resolve(v as T)));
}

/** Waits until every pending registration reached the mock monitor. */
export async function settle(): Promise<void> {
  const wait = (pulumi.runtime as unknown as { waitForRPCs?: () => Promise<void> }).waitForRPCs;
  if (wait) await wait();
  // Registration of children created inside apply callbacks can start after the queue first
  // drains; a few turns of the event loop let them land.
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  if (wait) await wait();
}

const requireCjs = createRequire(import.meta.url);

/**
 * A stack file as the config map Pulumi hands the program: the project's keys without prefix,
 * scalars as strings, structured values as JSON (what `pulumi` puts in PULUMI_CONFIG).
 */
export function stackFileValues(stack: string, root: string): Record<string, string> {
  // js-yaml is @pulumi/pulumi's own YAML parser (a dependency of it).
  const yaml = requireCjs('js-yaml') as { load(s: string): unknown };
  const doc = yaml.load(fs.readFileSync(path.join(root, `Pulumi.${stack}.yaml`), 'utf8')) as { config?: Record<string, unknown> };
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(doc.config ?? {})) {
    if (!k.startsWith('realtime-gateway:')) continue;
    out[k.slice('realtime-gateway:'.length)] = typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v);
  }
  return out;
}

export const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..', '..');
