import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import type { HttpAuth, Throttle } from '../config';
import { accessLogGroupName, childName, httpRouteSourceArn, splitRouteKey } from '../naming';
import { HTTP_ACCESS_LOG_FORMAT } from './access-logs';

export interface HttpRouteTarget {
  readonly routeKey: string;
  readonly function: aws.lambda.Function;
  /** With a JWT authoriser: scopes the token must carry (API Gateway refuses it before invoking). */
  readonly jwtScopes?: readonly string[];
  /** Which invoke policy grants this route (the function's name): publishers never get upstream control. */
  readonly invokeGroup: string;
}

export interface HttpApiArgs {
  readonly prefix: string;
  readonly stack: string;
  readonly auth: HttpAuth;
  readonly jwt?: { readonly issuer: pulumi.Input<string>; readonly audience: pulumi.Input<string> };
  readonly routes: readonly HttpRouteTarget[];
  readonly throttle: Throttle;
  readonly logRetentionDays: number;
  readonly tags?: Record<string, string>;
}

/** `$default`: the stage HTTP APIs serve at the root of their URL. */
export const HTTP_STAGE = '$default';
/**
 * Stage segment of the execute-api ARNs this API's permissions name. AWS's examples for HTTP
 * APIs use `*` here (the `$default` stage's segment is not documented); the ARN stays scoped to
 * this API, this method and this path.
 */
export const HTTP_ARN_STAGE = '*';

/** Route authorisation type for a config value (pure; refuses an open API on prod). */
export function httpAuthorizationType(auth: HttpAuth, stack: string): 'AWS_IAM' | 'JWT' | 'NONE' {
  if (auth === 'none') {
    if (stack === 'prod') throw new Error('httpAuth "none" is refused on prod: the HTTP API would be open');
    return 'NONE';
  }
  return auth === 'iam' ? 'AWS_IAM' : 'JWT';
}

/**
 * The HTTP API: publish (`POST /publish`) and upstream control (`/websocket`, `/websockets`),
 * authorised with SigV4 (IAM) or a JWT authorizer, payload format 2.0, JSON access logs,
 * stage throttling. Callers with `iam` need execute-api:Invoke: one managed policy per invoke
 * group (`publish`: POST /publish and GET /presence; `control`: the upstream control routes) grants exactly that
 * group's routes, so a publisher's role can be given publishing without upstream control.
 */
export class HttpApi extends pulumi.ComponentResource {
  readonly api: aws.apigatewayv2.Api;
  readonly stage: aws.apigatewayv2.Stage;
  readonly routes: Readonly<Record<string, aws.apigatewayv2.Route>>;
  readonly authorizer?: aws.apigatewayv2.Authorizer;
  readonly invokePolicies: Readonly<Record<string, aws.iam.Policy>> = {};
  readonly url: pulumi.Output<string>;

  constructor(name: string, args: HttpApiArgs, opts?: pulumi.ComponentResourceOptions) {
    super('realtime-gateway:infra:HttpApi', name, {}, opts);
    const authorizationType = httpAuthorizationType(args.auth, args.stack);
    if (authorizationType === 'JWT' && !args.jwt) throw new Error('httpAuth jwt needs jwt.issuer and jwt.audience');

    this.api = new aws.apigatewayv2.Api(
      childName(name, 'api'),
      { name: `${args.prefix}-http`, protocolType: 'HTTP', description: 'realtime-gateway publish + upstream control', tags: args.tags },
      { parent: this },
    );
    if (authorizationType === 'JWT') {
      this.authorizer = new aws.apigatewayv2.Authorizer(
        childName(name, 'jwt'),
        {
          apiId: this.api.id,
          name: `${args.prefix}-jwt`,
          authorizerType: 'JWT',
          identitySources: ['$request.header.Authorization'],
          jwtConfiguration: { issuer: args.jwt!.issuer, audiences: [args.jwt!.audience] },
        },
        { parent: this },
      );
    }
    const routes: Record<string, aws.apigatewayv2.Route> = {};
    const integrations = new Map<aws.lambda.Function, aws.apigatewayv2.Integration>();
    for (const r of args.routes) {
      const [method, path] = splitRouteKey(r.routeKey);
      const slug = `${method.toLowerCase()}${path.replace(/[^A-Za-z0-9]+/g, '-')}`;
      let integration = integrations.get(r.function);
      if (!integration) {
        integration = new aws.apigatewayv2.Integration(
          childName(name, slug, 'integration'),
          { apiId: this.api.id, integrationType: 'AWS_PROXY', integrationUri: r.function.invokeArn, integrationMethod: 'POST', payloadFormatVersion: '2.0' },
          { parent: this },
        );
        integrations.set(r.function, integration);
      }
      routes[r.routeKey] = new aws.apigatewayv2.Route(
        childName(name, slug, 'route'),
        {
          apiId: this.api.id,
          routeKey: r.routeKey,
          authorizationType,
          authorizerId: this.authorizer?.id,
          ...(authorizationType === 'JWT' && r.jwtScopes?.length ? { authorizationScopes: [...r.jwtScopes] } : {}),
          target: pulumi.interpolate`integrations/${integration.id}`,
        },
        { parent: this },
      );
      new aws.lambda.Permission(
        childName(name, slug, 'invoke'),
        {
          action: 'lambda:InvokeFunction',
          function: r.function.name,
          principal: 'apigateway.amazonaws.com',
          sourceArn: this.api.executionArn.apply((arn) => httpRouteSourceArn(arn, HTTP_ARN_STAGE, r.routeKey)),
        },
        { parent: this },
      );
    }
    this.routes = routes;
    const accessLogs = new aws.cloudwatch.LogGroup(
      childName(name, 'access-logs'),
      { name: accessLogGroupName(args.prefix, 'http'), retentionInDays: args.logRetentionDays, tags: args.tags },
      { parent: this },
    );
    this.stage = new aws.apigatewayv2.Stage(
      childName(name, 'stage'),
      {
        apiId: this.api.id,
        name: HTTP_STAGE,
        autoDeploy: true,
        accessLogSettings: { destinationArn: accessLogs.arn, format: HTTP_ACCESS_LOG_FORMAT },
        defaultRouteSettings: { throttlingBurstLimit: args.throttle.burstLimit, throttlingRateLimit: args.throttle.rateLimit },
        tags: args.tags,
      },
      { parent: this, dependsOn: Object.values(routes) },
    );
    if (authorizationType === 'AWS_IAM') {
      const groups = [...new Set(args.routes.map((r) => r.invokeGroup))];
      this.invokePolicies = Object.fromEntries(
        groups.map((group) => {
          const routes = args.routes.filter((r) => r.invokeGroup === group);
          const policy = new aws.iam.Policy(
            childName(name, 'invoke-policy', group),
            {
              name: `${args.prefix}-http-invoke-${group}`,
              description: `Lets a caller sign requests to the realtime-gateway HTTP API: ${routes.map((r) => r.routeKey).join(', ')}.`,
              policy: this.api.executionArn.apply((arn) =>
                JSON.stringify({
                  Version: '2012-10-17',
                  Statement: [{ Effect: 'Allow', Action: ['execute-api:Invoke'], Resource: routes.map((r) => httpRouteSourceArn(arn, HTTP_ARN_STAGE, r.routeKey)) }],
                }),
              ),
            },
            { parent: this },
          );
          return [group, policy];
        }),
      );
    }
    this.url = this.api.apiEndpoint;
    this.registerOutputs({ url: this.url });
  }
}
