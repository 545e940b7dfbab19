import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import type { WebSocketRouteKey } from '../../lib/functions';
import type { Throttle } from '../config';
import { accessLogGroupName, awsManagedPolicyArn, childName, websocketRouteSourceArn } from '../naming';
import { WEBSOCKET_ACCESS_LOG_FORMAT } from './access-logs';

export interface WebSocketApiArgs {
  readonly prefix: string;
  readonly stageName: string;
  readonly logRetentionDays: number;
  /**
   * WebSocket (like REST) API access logging needs the account-level API Gateway CloudWatch
   * role (one per account and region). Create it here unless another stack already does.
   */
  readonly manageAccountLogRole: boolean;
  /** `aws.getPartition()`: the managed policy's ARN differs in aws-cn and aws-us-gov. */
  readonly partition: pulumi.Input<string>;
  readonly tags?: Record<string, string>;
}

/**
 * The WebSocket API itself (route selection on `$request.body.action`) and its access log
 * group. Its routes and stage come after the functions (`WebSocketStage`), because the
 * functions need this API's management endpoint in their environment.
 */
export class WebSocketApi extends pulumi.ComponentResource {
  readonly api: aws.apigatewayv2.Api;
  readonly accessLogs: aws.cloudwatch.LogGroup;
  readonly stageName: string;
  /** `wss://{api}.execute-api.{region}.amazonaws.com/{stage}` */
  readonly url: pulumi.Output<string>;
  /** `https://{api}.execute-api.{region}.amazonaws.com/{stage}`: the @connections endpoint. */
  readonly managementEndpoint: pulumi.Output<string>;
  readonly accountSettings?: aws.apigateway.Account;

  constructor(name: string, args: WebSocketApiArgs, opts?: pulumi.ComponentResourceOptions) {
    super('realtime-gateway:infra:WebSocketApi', name, {}, opts);
    this.stageName = args.stageName;
    this.api = new aws.apigatewayv2.Api(
      childName(name, 'api'),
      {
        name: `${args.prefix}-websocket`,
        protocolType: 'WEBSOCKET',
        routeSelectionExpression: '$request.body.action',
        description: 'realtime-gateway subscribers',
        tags: args.tags,
      },
      { parent: this },
    );
    this.accessLogs = new aws.cloudwatch.LogGroup(
      childName(name, 'access-logs'),
      { name: accessLogGroupName(args.prefix, 'websocket'), retentionInDays: args.logRetentionDays, tags: args.tags },
      { parent: this },
    );
    if (args.manageAccountLogRole) {
      // Account-wide, not per stack: the setting is one per account and region, shared by every
      // REST/WebSocket API there ("you should only have one AWS::ApiGateway::Account resource per
      // region per account", CloudFormation reference). Since terraform-provider-aws v6 (behind
      // @pulumi/aws v7) deleting aws_api_gateway_account resets the setting (hashicorp/
      // terraform-provider-aws#42226 removed `reset_on_delete`), so destroying this stack would
      // switch off access logging for every other API in the region. retainOnDelete keeps the
      // role, its policy and the setting when the stack goes (the fix SST shipped, sst#6911);
      // `websocket.accountLogRole: false` on every other stack of the account keeps them from
      // overwriting it (docs/deploy.md).
      const retained = { parent: this, retainOnDelete: true };
      const role = new aws.iam.Role(
        childName(name, 'apigw-logs-role'),
        { assumeRolePolicy: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'apigateway.amazonaws.com' }, Action: 'sts:AssumeRole' }] }) },
        retained,
      );
      // AWS's own policy for this account-wide service role (API Gateway writes to the log
      // groups of every REST/WebSocket API in the region through it).
      const attach = new aws.iam.RolePolicyAttachment(
        childName(name, 'apigw-logs-policy'),
        { role: role.name, policyArn: pulumi.output(args.partition).apply((p) => awsManagedPolicyArn(p, 'service-role/AmazonAPIGatewayPushToCloudWatchLogs')) },
        retained,
      );
      this.accountSettings = new aws.apigateway.Account(childName(name, 'apigw-account'), { cloudwatchRoleArn: role.arn }, { ...retained, dependsOn: [attach] });
    }
    this.url = pulumi.interpolate`${this.api.apiEndpoint}/${args.stageName}`;
    this.managementEndpoint = this.api.apiEndpoint.apply((e) => `${e.replace(/^wss:\/\//, 'https://')}/${args.stageName}`);
    this.registerOutputs({ url: this.url, managementEndpoint: this.managementEndpoint });
  }
}

export interface WebSocketStageArgs {
  readonly api: WebSocketApi;
  /** The function serving each route. */
  readonly routes: Readonly<Record<WebSocketRouteKey, aws.lambda.Function>>;
  readonly throttle: Throttle;
  readonly routeThrottles: Readonly<Partial<Record<WebSocketRouteKey, Throttle>>>;
  readonly tags?: Record<string, string>;
}

/** Integrations, routes, invoke permissions and the auto-deployed stage of the WebSocket API. */
export class WebSocketStage extends pulumi.ComponentResource {
  readonly stage: aws.apigatewayv2.Stage;
  readonly routes: Readonly<Record<string, aws.apigatewayv2.Route>>;

  constructor(name: string, args: WebSocketStageArgs, opts?: pulumi.ComponentResourceOptions) {
    super('realtime-gateway:infra:WebSocketStage', name, {}, opts);
    const api = args.api.api;
    const routes: Record<string, aws.apigatewayv2.Route> = {};
    for (const [routeKey, fn] of Object.entries(args.routes) as [WebSocketRouteKey, aws.lambda.Function][]) {
      const slug = routeKey.replace(/^\$/, '');
      const integration = new aws.apigatewayv2.Integration(
        childName(name, slug, 'integration'),
        {
          apiId: api.id,
          integrationType: 'AWS_PROXY',
          // Lambda proxy integrations are always invoked with POST.
          integrationMethod: 'POST',
          integrationUri: fn.invokeArn,
          contentHandlingStrategy: 'CONVERT_TO_TEXT',
        },
        { parent: this },
      );
      routes[routeKey] = new aws.apigatewayv2.Route(
        childName(name, slug, 'route'),
        {
          apiId: api.id,
          routeKey,
          // Subscribers authenticate in the $connect handler (JWT from a subprotocol, header or
          // ?token=); API Gateway authorizers cannot read the Sec-WebSocket-Protocol token.
          authorizationType: 'NONE',
          target: pulumi.interpolate`integrations/${integration.id}`,
        },
        { parent: this },
      );
      new aws.lambda.Permission(
        childName(name, slug, 'invoke'),
        {
          action: 'lambda:InvokeFunction',
          function: fn.name,
          principal: 'apigateway.amazonaws.com',
          sourceArn: api.executionArn.apply((arn) => websocketRouteSourceArn(arn, args.api.stageName, routeKey)),
        },
        { parent: this },
      );
    }
    this.routes = routes;
    this.stage = new aws.apigatewayv2.Stage(
      childName(name, 'stage'),
      {
        apiId: api.id,
        name: args.api.stageName,
        autoDeploy: true,
        accessLogSettings: { destinationArn: args.api.accessLogs.arn, format: WEBSOCKET_ACCESS_LOG_FORMAT },
        defaultRouteSettings: { throttlingBurstLimit: args.throttle.burstLimit, throttlingRateLimit: args.throttle.rateLimit },
        routeSettings: (Object.keys(args.routes) as WebSocketRouteKey[]).map((routeKey) => {
          const t = args.routeThrottles[routeKey] ?? args.throttle;
          return { routeKey, throttlingBurstLimit: t.burstLimit, throttlingRateLimit: t.rateLimit };
        }),
        tags: args.tags,
      },
      // Route settings name routes that must exist first; access logging needs the account role.
      { parent: this, dependsOn: [...Object.values(routes), ...(args.api.accountSettings ? [args.api.accountSettings] : [])] },
    );
    this.registerOutputs({ stage: this.stage.name });
  }
}
