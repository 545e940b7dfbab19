import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { FUNCTIONS, type WebSocketRouteKey } from '../lib/functions';
import { TABLE_NAMES, type TableName } from '../lib/schema';
import type { Bundler } from './bundle';
import { lambdaSizing, type StackConfig } from './config';
import { AGENT_ENV, agentEnvironment, handlerEnvironment } from './env';
import { childName, functionName, metricsNamespace } from './naming';
import { AgentFleet } from './components/fleet';
import { FanoutMapping } from './components/fanout';
import { QueueMapping } from './components/queue-mapping';
import { LambdaFunction } from './components/functions';
import { HTTP_STAGE, HttpApi, type HttpRouteTarget } from './components/http-api';
import { Monitoring } from './components/monitoring';
import { Queues } from './components/queues';
import { SecretStore } from './components/secrets';
import { Tables } from './components/tables';
import { WebSocketApi, WebSocketStage } from './components/websocket-api';

export interface PlatformOptions {
  readonly bundler: Bundler;
  /** The component the resources belong to (gateway.ts); without one they sit at the stack's root. */
  readonly owner?: PlatformOwner;
}

export interface PlatformOwner {
  readonly resource: pulumi.ComponentResource;
  /** Prefixes every child's name, so two gateways in one program do not collide. */
  readonly name: string;
  /**
   * The resources were created at the stack's root under their bare names (`tables`, …) before
   * the component existed: alias them so an existing stack moves them instead of replacing them.
   * Their own children follow through Pulumi's alias inheritance.
   */
  readonly aliasRootNames?: boolean;
}

/** Name and options of one top-level resource of the platform. */
function placement(owner: PlatformOwner | undefined, name: string): [string, pulumi.ComponentResourceOptions | undefined] {
  if (!owner) return [name, undefined];
  return [childName(owner.name, name), { parent: owner.resource, aliases: owner.aliasRootNames ? [{ name, parent: pulumi.rootStackResource }] : undefined }];
}

export interface PlatformOutputs {
  readonly websocketUrl: pulumi.Output<string>;
  readonly managementEndpoint: pulumi.Output<string>;
  readonly httpApiUrl: pulumi.Output<string>;
  readonly tableNames: pulumi.Output<Record<TableName, string>>;
  readonly commandQueueUrl: pulumi.Output<string>;
  /** Application actions land here; the application's consumer reads it (ReceiveMessage, DeleteMessage). */
  readonly inboundQueueUrl: pulumi.Output<string>;
  readonly dashboardName: pulumi.Output<string>;
  readonly alarmTopicArn: pulumi.Output<string>;
  readonly agentAutoScalingGroup: pulumi.Output<string>;
  /** With httpAuth iam: execute-api:Invoke on POST /publish and GET /presence (which has publish's rights) only. */
  readonly httpPublishInvokePolicyArn?: pulumi.Output<string>;
  /** With httpAuth iam: execute-api:Invoke on the upstream control routes only. */
  readonly httpControlInvokePolicyArn?: pulumi.Output<string>;
}

/**
 * The whole platform for one validated stack configuration. `infra/index.ts` reads the stack's
 * config and calls this; the tests call it with a parsed config under Pulumi's mocks.
 * Every bundle is built before any resource is registered, so a missing or broken handler
 * fails the preview without a half-created stack.
 */
export function createPlatform(config: StackConfig, opts: PlatformOptions): PlatformOutputs {
  const bundles = Object.fromEntries(FUNCTIONS.map((f) => [f.name, opts.bundler.lambda(f.name)]));
  const agentBundle = opts.bundler.agent();

  const tags = { project: 'realtime-gateway', stack: config.stack };
  // Every top-level resource is one of this program's components: (name, args, opts).
  const make = <A, R>(ctor: new (name: string, args: A, opts?: pulumi.ComponentResourceOptions) => R, name: string, args: A): R => {
    const [n, o] = placement(opts.owner, name);
    return new ctor(n, args, o);
  };
  // Invokes go through the owner's provider too (a component given `providers` for another region).
  const invoke = opts.owner ? { parent: opts.owner.resource } : undefined;
  const region = aws.getRegionOutput({}, invoke).region;
  const identity = aws.getCallerIdentityOutput({}, invoke);
  const partition = aws.getPartitionOutput({}, invoke).partition;
  const account = identity.accountId;

  const tables = make(Tables, 'tables', { prefix: config.prefix, dataProtection: config.dataProtection, tags });
  const tableNames = Object.fromEntries(TABLE_NAMES.map((t) => [t, tables.tables[t].name])) as Record<TableName, pulumi.Output<string>>;
  const queues = make(Queues, 'queues', { prefix: config.prefix, tags });
  const secrets = make(SecretStore, 'secrets', {
    stack: config.stack,
    secretPrefix: config.secretPrefix,
    partition,
    region,
    account,
    sinkCredentials: config.sink.credentials,
    // dev is torn down and redeployed freely: no recovery window to wait out. prod keeps the
    // longest window Secrets Manager offers.
    recoveryWindowInDays: config.stack === 'prod' ? 30 : 0,
    tags,
  });
  const ws = make(WebSocketApi, 'websocket', {
    prefix: config.prefix,
    stageName: config.websocket.stageName,
    logRetentionDays: config.logRetentionDays,
    manageAccountLogRole: config.websocket.accountLogRole,
    partition,
    tags,
  });

  const environment = pulumi.output(
    handlerEnvironment(config, {
      tables: tableNames,
      commandQueueUrl: queues.queues.commands.url,
      inboundQueueUrl: queues.queues.inbound.url,
      fanoutPartitionQueueUrl: queues.queues.fanoutPartitions.url,
      managementEndpoint: ws.managementEndpoint,
      jwtHs256Secret: config.jwt.hs256Secret !== undefined ? pulumi.secret(config.jwt.hs256Secret) : undefined,
    }),
  );
  const policyArns = pulumi.all([tables.arns, queues.arns, ws.api.executionArn, secrets.prefixArn]).apply(([t, q, executionArn, secretPrefix]) => ({
    tables: t,
    queues: q,
    connections: { executionArn, stage: config.websocket.stageName },
    secretPrefix,
  }));

  const fns: Record<string, LambdaFunction> = {};
  for (const spec of FUNCTIONS) {
    const size = lambdaSizing(config, spec.name);
    fns[spec.name] = make(LambdaFunction, childName('fn', spec.name), {
      spec,
      functionName: functionName(config.prefix, spec.name),
      bundle: bundles[spec.name]!,
      memoryMb: size.memoryMb,
      timeoutSeconds: size.timeoutSeconds,
      logRetentionDays: config.logRetentionDays,
      environment: environment as pulumi.Output<Record<string, string>>,
      arns: policyArns,
      tags,
    });
  }

  const wsRoutes = {} as Record<WebSocketRouteKey, aws.lambda.Function>;
  const httpRoutes: HttpRouteTarget[] = [];
  const streamFunctions: LambdaFunction[] = [];
  const queueFunctions: LambdaFunction[] = [];
  for (const f of Object.values(fns)) {
    const t = f.spec.trigger;
    if (t.kind === 'websocket') {
      if (wsRoutes[t.route]) throw new Error(`two functions serve WebSocket route ${t.route}`);
      wsRoutes[t.route] = f.function;
    } else if (t.kind === 'http') {
      for (const routeKey of t.routes) httpRoutes.push({ routeKey, function: f.function, jwtScopes: t.jwtScopes, invokeGroup: t.invokeGroup ?? f.spec.name });
    } else if (t.kind === 'queue') {
      queueFunctions.push(f);
    } else {
      streamFunctions.push(f);
    }
  }
  new WebSocketStage(
    childName(placement(opts.owner, 'websocket')[0], 'stage'),
    { api: ws, routes: wsRoutes, throttle: config.websocket.throttle, routeThrottles: config.websocket.routes, tags },
    { parent: ws },
  );
  const http = make(HttpApi, 'http', {
    prefix: config.prefix,
    stack: config.stack,
    auth: config.httpAuth,
    jwt: config.jwt.issuer && config.jwt.audience ? { issuer: config.jwt.issuer, audience: config.jwt.audience } : undefined,
    routes: httpRoutes,
    throttle: config.http.throttle,
    logRetentionDays: config.logRetentionDays,
    tags,
  });

  for (const f of streamFunctions) {
    const t = f.spec.trigger;
    if (t.kind !== 'stream') continue;
    make(FanoutMapping, childName('stream', f.spec.name), {
      function: f.function,
      streamArn: tables.tables[t.table].streamArn,
      deadLetterQueueArn: queues.queues.fanoutDlq.arn,
      settings: config.fanout,
    });
  }

  for (const f of queueFunctions) {
    const t = f.spec.trigger;
    if (t.kind !== 'queue') continue;
    make(QueueMapping, childName('queue', f.spec.name), { function: f.function, queueArn: queues.queues[t.queue].arn, batchSize: 10 });
  }

  const namespace = metricsNamespace(config.stack);
  const fleet = make(AgentFleet, 'agents', {
    prefix: config.prefix,
    settings: config.fleet,
    dataProtection: config.dataProtection,
    bundle: agentBundle,
    region,
    partition,
    account,
    env: pulumi.output(
      agentEnvironment(config, {
        tables: tableNames,
        commandQueueUrl: queues.queues.commands.url,
        managementEndpoint: ws.managementEndpoint,
        region,
        metricsNamespace: namespace,
      }),
    ) as pulumi.Output<Record<string, string>>,
    secretEnv: secrets.sinkSecret ? { [AGENT_ENV.sinkAuthorization]: secrets.sinkSecret.arn } : undefined,
    bootDependsOn: secrets.sinkSecretVersion ? [secrets.sinkSecretVersion] : [],
    arns: pulumi.all([tables.arns, queues.arns, secrets.prefixArn, secrets.sinkSecret?.arn]).apply(([t, q, secretPrefix, sinkSecret]) => ({
      tables: t,
      commandQueue: q.commands,
      secretPrefix,
      sinkSecret,
      metricsNamespace: namespace,
    })),
    tags,
  });

  const monitoring = make(Monitoring, 'monitoring', {
    prefix: config.prefix,
    region,
    email: config.alarms.email,
    topicArn: config.alarms.topicArn,
    iteratorAgeMs: config.alarms.iteratorAgeMs,
    deliveryLatencyP99Ms: config.alarms.deliveryLatencyP99Ms,
    functionNames: Object.fromEntries(Object.entries(fns).map(([n, f]) => [n, f.function.name])),
    fanoutFunction: streamFunctions[0]?.spec.name ?? 'fanout',
    deadLetterQueues: {
      commandsDlq: queues.queues.commandsDlq.name,
      fanoutDlq: queues.queues.fanoutDlq.name,
      inboundDlq: queues.queues.inboundDlq.name,
      fanoutPartitionsDlq: queues.queues.fanoutPartitionsDlq.name,
    },
    websocketApiId: ws.api.id,
    websocketStage: config.websocket.stageName,
    websocketAccessLogGroup: ws.accessLogs.name,
    httpApiId: http.api.id,
    httpStage: HTTP_STAGE,
    metricsNamespace: namespace,
    tags,
  });

  return {
    websocketUrl: ws.url,
    managementEndpoint: ws.managementEndpoint,
    httpApiUrl: http.url,
    tableNames: tables.names,
    commandQueueUrl: queues.queues.commands.url,
    inboundQueueUrl: queues.queues.inbound.url,
    dashboardName: monitoring.dashboardName,
    alarmTopicArn: monitoring.topicArn,
    agentAutoScalingGroup: fleet.group.name,
    httpPublishInvokePolicyArn: http.invokePolicies.publish?.arn,
    httpControlInvokePolicyArn: http.invokePolicies.control?.arn,
  };
}
