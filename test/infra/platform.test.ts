import { expect } from 'chai';
import { CONTROL_SCOPE } from '../../lib/upstream/control-auth';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../lib/config';
import { FUNCTIONS, type WebSocketRouteKey } from '../../lib/functions';
import { keyAttributes, QUEUES, TABLE_NAMES, TABLES } from '../../lib/schema';
import { ACCOUNT, installMocks, isSecretValue, REGION, ROOT, settle, stackFileValues, value, type MockRun, type Recorded } from './support/mocks';

/**
 * The whole program per stack under strict Pulumi mocks, with the stack files as they are
 * checked in and the real handler bundles. Pulumi and the program are imported after the mocks
 * are installed; createPlatform is called once per stack with that stack's parsed config.
 */

type Platform = typeof import('../../infra/platform');
type Config = typeof import('../../infra/config');
type Iam = typeof import('../../infra/iam');
type Bundle = typeof import('../../infra/bundle');

const SINK_SECRET = 'Bearer sink-token-0123456789abcdef';
const JWT_SECRET = 'prod-hs256-secret-that-is-at-least-32-bytes-long';

/**
 * Extra config per stack: prod also gets the two secrets, as `pulumi config set --secret` would.
 * An HS256 secret replaces the stack file's JWKS URL (config refuses both key sources at once);
 * the issuer and audience stay for the HTTP API's JWT authoriser.
 */
const EXTRA: Record<string, Record<string, string>> = {
  dev: {},
  prod: {
    jwtHs256Secret: JWT_SECRET,
    jwt: JSON.stringify({ issuer: 'https://auth.example.com/', audience: 'realtime-gateway', topicsClaim: 'topics', publishClaim: 'publish' }),
    sinkCredentials: SINK_SECRET,
    sink: JSON.stringify({ url: 'https://lake.example.com/ingest' }),
  },
};

const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rtg-infra-bundles-'));
const requireCjs = createRequire(import.meta.url);

for (const stack of ['dev', 'prod'] as const) {
  describe(`infra: ${stack} stack under Pulumi mocks`, function () {
    this.timeout(180_000);
    let run: MockRun;
    let config: ReturnType<Config['parseStackConfig']>;
    let iam: Iam;
    let bundler: ReturnType<Bundle['createBundler']>;
    let outputs: Record<string, any>;

    const all = (type: string) => run.resources.filter((r) => r.type === type);
    const one = (type: string, pred: (r: Recorded) => boolean = () => true) => {
      const found = all(type).filter(pred);
      expect(found, `${type} matching`).to.have.length(1);
      return found[0]!;
    };
    const fnByName = (fn: string) => one('aws:lambda/function:Function', (r) => r.inputs.name === `${config.prefix}-${fn}`);

    before(async () => {
      run = await installMocks(stack);
      const cfg: Config = await import('../../infra/config');
      const platform: Platform = await import('../../infra/platform');
      const bundle: Bundle = await import('../../infra/bundle');
      iam = await import('../../infra/iam');
      config = cfg.parseStackConfig(stack, { ...stackFileValues(stack, ROOT), ...EXTRA[stack] });
      bundler = bundle.createBundler(ROOT, outDir);
      const p = platform.createPlatform(config, { bundler });
      outputs = {};
      for (const [k, v] of Object.entries(p)) outputs[k] = await value(v);
      await settle();
    });

    it('registers no provider call beyond region, account and partition', () => {
      expect([...new Set(run.calls)].sort()).to.deep.equal([
        'aws:index/getCallerIdentity:getCallerIdentity',
        'aws:index/getPartition:getPartition',
        'aws:index/getRegion:getRegion',
      ]);
    });

    it('parents every resource under one of the components (child names derive from it)', () => {
      const components = run.resources.filter((r) => r.type.startsWith('realtime-gateway:infra:')).map((r) => r.name);
      expect(components).to.include.members(['tables', 'queues', 'secrets', 'websocket', 'websocket-stage', 'http', 'agents', 'monitoring']);
      for (const r of run.resources) {
        if (r.type.startsWith('realtime-gateway:infra:') || r.type === 'pulumi:pulumi:Stack') continue;
        expect(components.some((c) => r.name.startsWith(`${c}-`)), `${r.type} ${r.name}`).to.equal(true);
      }
    });

    describe('tables', () => {
      for (const t of TABLE_NAMES) {
        it(`${t}: keys, indexes, TTL, stream, billing and encryption follow lib/schema.ts`, () => {
          const spec = TABLES[t];
          const r = one('aws:dynamodb/table:Table', (x) => x.inputs.name === `${config.prefix}-${t}`);
          expect(r.inputs.billingMode).to.equal('PAY_PER_REQUEST');
          expect(r.inputs.hashKey).to.equal(spec.hashKey.name);
          expect(r.inputs.rangeKey).to.equal(spec.rangeKey?.name);
          expect(r.inputs.attributes).to.have.deep.members(keyAttributes(spec).map((a) => ({ name: a.name, type: a.type })));
          expect((r.inputs.globalSecondaryIndexes ?? []).map((g: any) => ({ name: g.name, keys: g.keySchemas.map((k: any) => `${k.keyType}:${k.attributeName}`), projection: g.projectionType }))).to.deep.equal(
            spec.indexes.map((i) => ({ name: i.name, keys: [`HASH:${i.hashKey.name}`, ...(i.rangeKey ? [`RANGE:${i.rangeKey.name}`] : [])], projection: i.projection })),
          );
          if (spec.ttlAttribute) expect(r.inputs.ttl).to.deep.equal({ attributeName: 'expiresAt', enabled: true });
          else expect(r.inputs.ttl).to.equal(undefined);
          expect(r.inputs.streamEnabled).to.equal(spec.stream !== undefined);
          expect(r.inputs.streamViewType).to.equal(spec.stream);
          expect(r.inputs.serverSideEncryption).to.deep.equal({ enabled: true });
          expect(r.inputs.pointInTimeRecovery).to.deep.equal({ enabled: stack === 'prod' });
          expect(r.inputs.deletionProtectionEnabled).to.equal(stack === 'prod');
        });
      }
      it('the items table streams NEW_IMAGE and TTL is on every table the schema gives one', () => {
        expect(one('aws:dynamodb/table:Table', (x) => x.inputs.name === `${config.prefix}-items`).inputs.streamViewType).to.equal('NEW_IMAGE');
        const withTtl = all('aws:dynamodb/table:Table').filter((r) => r.inputs.ttl?.attributeName === 'expiresAt').length;
        expect(withTtl).to.equal(TABLE_NAMES.filter((t) => TABLES[t].ttlAttribute).length).and.to.be.greaterThan(0);
      });
    });

    describe('queues and secrets', () => {
      it('creates the command queue with a redrive to its DLQ, the fan-out DLQ, all with SSE', () => {
        const queues = all('aws:sqs/queue:Queue');
        expect(queues.map((q) => q.inputs.name).sort()).to.deep.equal(Object.values(QUEUES).map((q) => `${config.prefix}-${q.logicalName}${q.fifo ? '.fifo' : ''}`).sort());
        for (const q of queues) expect(q.inputs.sqsManagedSseEnabled, q.inputs.name).to.equal(true);
        const commands = queues.find((q) => q.inputs.name === `${config.prefix}-commands`)!;
        const dlq = queues.find((q) => q.inputs.name === `${config.prefix}-commandsDlq`)!;
        expect(JSON.parse(commands.inputs.redrivePolicy)).to.deep.equal({ deadLetterTargetArn: dlq.state.arn, maxReceiveCount: QUEUES.commands.deadLetter!.maxReceiveCount });
        expect(commands.inputs.receiveWaitTimeSeconds).to.equal(QUEUES.commands.receiveWaitTimeSeconds);
        const inbound = queues.find((q) => q.inputs.name === `${config.prefix}-inbound`)!;
        const inboundDlq = queues.find((q) => q.inputs.name === `${config.prefix}-inboundDlq`)!;
        expect(JSON.parse(inbound.inputs.redrivePolicy)).to.deep.equal({ deadLetterTargetArn: inboundDlq.state.arn, maxReceiveCount: QUEUES.inbound.deadLetter!.maxReceiveCount });
      });

      it('alarms when the inbound DLQ holds any message, and outputs the inbound queue URL', () => {
        const alarm = one('aws:cloudwatch/metricAlarm:MetricAlarm', (a) => a.inputs.name === `${config.prefix}-inboundDlq-depth`);
        expect(alarm.inputs).to.deep.include({ namespace: 'AWS/SQS', metricName: 'ApproximateNumberOfMessagesVisible', threshold: 0, comparisonOperator: 'GreaterThanThreshold' });
        expect(alarm.inputs.dimensions).to.deep.equal({ QueueName: `${config.prefix}-inboundDlq` });
        expect(alarm.inputs.alarmDescription).to.match(/application actions/);
        const inbound = one('aws:sqs/queue:Queue', (q) => q.inputs.name === `${config.prefix}-inbound`);
        expect(outputs.inboundQueueUrl).to.equal(inbound.state.url);
      });

      if (stack === 'prod') {
        it('stores the sink credentials as a Secrets Manager secret and never in user data', async () => {
          const version = one('aws:secretsmanager/secretVersion:SecretVersion');
          expect(version.inputs.secretString).to.equal(SINK_SECRET);
          expect(isSecretValue(version.raw.secretString), 'secretString is a Pulumi secret').to.equal(true);
          const ud = Buffer.from(one('aws:ec2/launchTemplate:LaunchTemplate').inputs.userData, 'base64').toString('utf8');
          expect(ud).to.not.include(SINK_SECRET);
          expect(ud).to.not.include(JWT_SECRET);
          expect(ud).to.include(`--secret-id ${one('aws:secretsmanager/secret:Secret').state.arn}`);
        });
      } else {
        it('creates no sink secret when no sink is configured', () => {
          expect(all('aws:secretsmanager/secret:Secret')).to.have.length(0);
        });
      }
    });

    describe('lambdas', () => {
      for (const spec of FUNCTIONS) {
        it(`${spec.name}: arm64, supported Node.js runtime, sizing from config, own log group and role`, () => {
          const f = fnByName(spec.name);
          const size = config.lambda.overrides[spec.name] ?? config.lambda;
          expect(f.inputs.architectures).to.deep.equal(['arm64']);
          expect(f.inputs.runtime).to.match(/^nodejs(22|24)\.x$/);
          expect(f.inputs.handler).to.equal('index.handler');
          expect(f.inputs.memorySize).to.equal(size.memoryMb);
          expect(f.inputs.timeout).to.equal(size.timeoutSeconds);
          const logs = one('aws:cloudwatch/logGroup:LogGroup', (r) => r.inputs.name === `/aws/lambda/${f.inputs.name}`);
          expect(logs.inputs.retentionInDays).to.equal(config.logRetentionDays);
          expect(f.inputs.loggingConfig.logGroup).to.equal(logs.inputs.name);
          const role = one('aws:iam/role:Role', (r) => r.state.arn === f.inputs.role);
          expect(JSON.parse(role.inputs.assumeRolePolicy).Statement[0].Principal).to.deep.equal({ Service: 'lambda.amazonaws.com' });
        });

        it(`${spec.name}: bundle exists, is non-empty and its handler export resolves`, async () => {
          const b = bundler.lambda(spec.name);
          expect(fs.statSync(b.file).size).to.be.greaterThan(0);
          expect(fs.readdirSync(b.dir)).to.deep.equal(['index.js']);
          const mod = requireCjs(b.file);
          expect(mod.handler, `functions/${spec.name}.ts must export handler`).to.be.a('function');
          // The deployed archive is that directory.
          expect(await fnByName(spec.name).inputs.code.path).to.equal(b.dir);
        });
      }

      it('one role per function', () => {
        const roles = FUNCTIONS.map((s) => fnByName(s.name).inputs.role);
        expect(new Set(roles).size).to.equal(FUNCTIONS.length);
      });

      it('gives every function exactly the environment loadConfig accepts', async () => {
        for (const spec of FUNCTIONS) {
          const env = fnByName(spec.name).inputs.environment.variables as Record<string, string>;
          expect(env).to.not.have.property('AWS_REGION'); // reserved by Lambda
          const app = loadConfig({ ...env, AWS_REGION: REGION });
          expect(app.stack).to.equal(stack);
          expect(app.tables.items).to.equal(`${config.prefix}-items`);
          expect(app.commandQueueUrl).to.equal(outputs.commandQueueUrl);
          expect(app.subscriber.inboundQueueUrl).to.equal(outputs.inboundQueueUrl);
          expect(app.managementEndpoint).to.equal(outputs.managementEndpoint);
          expect(app.auth.mode).to.equal(config.authMode);
          expect(app.upstream.secretsBackend).to.equal('secretsmanager');
          expect(app.subscriber.itemKeys).to.deep.equal(config.itemKeys);
        }
      });
    });

    describe('IAM', () => {
      // The Session Manager policy is the one documented exception (its actions exist only on "*"), tested below.
      const isSessionManager = (r: { name: string }) => r.name === 'agents-ssm';
      const identityPolicies = () => [...all('aws:iam/rolePolicy:RolePolicy').filter((r) => !isSessionManager(r)), ...all('aws:iam/policy:Policy')];

      it('every policy document the program writes is scoped: no wildcard action, no "*" resource where an ARN exists', () => {
        const docs = identityPolicies();
        expect(docs.length).to.be.greaterThan(FUNCTIONS.length);
        for (const r of docs) expect(iam.policyProblems(JSON.parse(r.inputs.policy)), r.name).to.deep.equal([]);
      });

      it('the checker would catch a wildcard (it is not vacuous)', () => {
        const doc = JSON.parse(identityPolicies()[0]!.inputs.policy);
        doc.Statement.push({ Effect: 'Allow', Action: ['dynamodb:*'], Resource: ['*'] });
        expect(iam.policyProblems(doc)).to.have.length.greaterThan(0);
      });

      it('attaches only the AWS managed policies the docs name, each to its service role', () => {
        const roleOf = (a: Recorded) => one('aws:iam/role:Role', (r) => r.state.name === a.inputs.role).name;
        const attached = all('aws:iam/rolePolicyAttachment:RolePolicyAttachment').map((a) => [a.inputs.policyArn, roleOf(a)]);
        const expected = [
          ...(config.websocket.accountLogRole ? [['arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs', 'websocket-apigw-logs-role']] : []),
        ];
        expect(expected, 'the account log role is on in the checked-in stacks').to.have.length(1);
        expect(attached).to.have.deep.members(expected);
        expect(attached).to.have.length(expected.length);
      });

      it(`Session Manager on the agent: ${stack === 'prod' ? 'off on prod' : 'only its documented five actions'}`, () => {
        const ssm = all('aws:iam/rolePolicy:RolePolicy').filter(isSessionManager);
        if (stack === 'prod') expect(ssm).to.have.length(0);
        else {
          expect(ssm).to.have.length(1);
          expect(JSON.parse(ssm[0]!.inputs.policy).Statement.flatMap((s: any) => s.Action).sort()).to.deep.equal([
            'ssm:UpdateInstanceInformation',
            'ssmmessages:CreateControlChannel',
            'ssmmessages:CreateDataChannel',
            'ssmmessages:OpenControlChannel',
            'ssmmessages:OpenDataChannel',
          ]);
        }
      });

      for (const spec of FUNCTIONS) {
        it(`${spec.name}: policy names this API's stage for ManageConnections and each index by ARN`, () => {
          const f = fnByName(spec.name);
          const roleName = one('aws:iam/role:Role', (r) => r.state.arn === f.inputs.role).state.name;
          const doc = JSON.parse(one('aws:iam/rolePolicy:RolePolicy', (r) => r.inputs.role === `${roleName}-role`).inputs.policy);
          const actions = doc.Statement.flatMap((s: any) => s.Action);
          const resources: string[] = doc.Statement.flatMap((s: any) => s.Resource);
          const wsApi = one('aws:apigatewayv2/api:Api', (r) => r.inputs.protocolType === 'WEBSOCKET');
          const mc = doc.Statement.find((s: any) => s.Action.includes('execute-api:ManageConnections'));
          if (spec.manageConnections.length) expect(mc.Resource).to.deep.equal([...spec.manageConnections].sort().map((v) => `${wsApi.state.executionArn}/${config.websocket.stageName}/${v}/@connections/*`));
          else expect(mc).to.equal(undefined);
          // Stream reads only where the function reads a stream, on that stream's ARN; ListStreams
          // (no resource type) alone on "*".
          const sr = doc.Statement.filter((s: any) => s.Action.includes('dynamodb:GetRecords'));
          const ls = doc.Statement.filter((s: any) => s.Action.includes('dynamodb:ListStreams'));
          if (Object.values(spec.tables).some((a) => a!.includes('stream'))) {
            expect(sr).to.have.length(1);
            expect(sr[0].Resource.every((r: string) => /^arn:aws:dynamodb:[^:]+:\d+:table\/[^/]+\/stream\/.+$/.test(r))).to.equal(true);
            expect(ls.map((s: any) => [s.Action, s.Resource])).to.deep.equal([[['dynamodb:ListStreams'], ['*']]]);
          } else expect(actions).to.not.include('dynamodb:ListStreams');
          expect(resources.some((r) => r.endsWith('/index/*'))).to.equal(false);
          for (const [table, access] of Object.entries(spec.tables)) {
            const arn = `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/${config.prefix}-${table}`;
            for (const ix of TABLES[table as keyof typeof TABLES].indexes) {
              expect(resources.includes(`${arn}/index/${ix.name}`), `${table}/index/${ix.name}`).to.equal(access!.includes(`Query:${ix.name}` as never));
            }
            if (access!.some((a) => a !== 'stream' && !a.startsWith('Query:'))) expect(resources).to.include(arn);
          }
          expect(resources).to.include(`arn:aws:logs:${REGION}:${ACCOUNT}:log-group:/aws/lambda/${f.inputs.name}:*`);
        });
      }

      it('the agent role can PutMetricData only in its namespace', () => {
        const agent = one('aws:iam/rolePolicy:RolePolicy', (r) => r.name === 'agents-policy');
        const st = JSON.parse(agent.inputs.policy).Statement.find((s: any) => s.Action.includes('cloudwatch:PutMetricData'));
        expect(st.Condition).to.deep.equal({ StringEquals: { 'cloudwatch:namespace': `RealtimeGateway/${stack}` } });
      });
    });

    describe('WebSocket API', () => {
      const routeKeys: WebSocketRouteKey[] = ['$connect', '$disconnect', '$default', 'subscribe', 'unsubscribe', 'ping', 'publish', 'presence'];

      it('selects routes on $request.body.action and has the eight routes, each on its function', () => {
        const api = one('aws:apigatewayv2/api:Api', (r) => r.inputs.protocolType === 'WEBSOCKET');
        expect(api.inputs.routeSelectionExpression).to.equal('$request.body.action');
        const routes = all('aws:apigatewayv2/route:Route').filter((r) => r.inputs.apiId === api.id);
        expect(routes.map((r) => r.inputs.routeKey).sort()).to.deep.equal([...routeKeys].sort());
        for (const r of routes) {
          const spec = FUNCTIONS.find((f) => f.trigger.kind === 'websocket' && f.trigger.route === r.inputs.routeKey)!;
          const integrationId = String(r.inputs.target).replace(/^integrations\//, '');
          const integration = one('aws:apigatewayv2/integration:Integration', (i) => i.id === integrationId && i.inputs.apiId === api.id);
          expect(integration.inputs.integrationType).to.equal('AWS_PROXY');
          expect(integration.inputs.integrationUri).to.equal(fnByName(spec.name).state.invokeArn);
        }
      });

      it('grants invoke per route, scoped to this API and stage', () => {
        const api = one('aws:apigatewayv2/api:Api', (r) => r.inputs.protocolType === 'WEBSOCKET');
        for (const route of routeKeys) {
          const spec = FUNCTIONS.find((f) => f.trigger.kind === 'websocket' && f.trigger.route === route)!;
          const perm = one('aws:lambda/permission:Permission', (p) => p.inputs.sourceArn === `${api.state.executionArn}/${config.websocket.stageName}/${route}`);
          expect(perm.inputs.function).to.equal(`${config.prefix}-${spec.name}`);
          expect(perm.inputs.principal).to.equal('apigateway.amazonaws.com');
        }
      });

      it('has an auto-deployed stage with JSON access logs and route throttling from config', () => {
        const stage = one('aws:apigatewayv2/stage:Stage', (s) => s.inputs.name === config.websocket.stageName);
        expect(stage.inputs.autoDeploy).to.equal(true);
        const format = JSON.parse(stage.inputs.accessLogSettings.format);
        expect(format).to.include.keys('requestId', 'routeKey', 'status', 'connectionId', 'error');
        const logs = one('aws:cloudwatch/logGroup:LogGroup', (l) => l.state.arn === stage.inputs.accessLogSettings.destinationArn);
        expect(logs.inputs.retentionInDays).to.equal(config.logRetentionDays);
        expect(stage.inputs.defaultRouteSettings).to.deep.include({ throttlingBurstLimit: config.websocket.throttle.burstLimit, throttlingRateLimit: config.websocket.throttle.rateLimit });
        expect(stage.inputs.routeSettings.map((s: any) => s.routeKey).sort()).to.deep.equal([...routeKeys].sort());
        for (const s of stage.inputs.routeSettings) {
          const t = config.websocket.routes[s.routeKey as WebSocketRouteKey] ?? config.websocket.throttle;
          expect([s.throttlingBurstLimit, s.throttlingRateLimit], s.routeKey).to.deep.equal([t.burstLimit, t.rateLimit]);
        }
      });

      it('keeps the account-wide API Gateway CloudWatch role and setting out of the stack lifecycle (retainOnDelete)', () => {
        const account = one('aws:apigateway/account:Account');
        const role = one('aws:iam/role:Role', (r) => r.state.arn === account.inputs.cloudwatchRoleArn);
        const attachment = one('aws:iam/rolePolicyAttachment:RolePolicyAttachment', (r) => r.inputs.role === role.state.name);
        for (const r of [account, role, attachment]) expect(r.options.retainOnDelete, `${r.type} ${r.name}`).to.equal(true);
        // Everything else follows the stack: only these three are retained.
        const retained = run.resources.filter((r) => r.options.retainOnDelete && r.type !== 'aws:dynamodb/table:Table').map((r) => r.name);
        expect(retained.sort()).to.deep.equal([account.name, role.name, attachment.name].sort());
      });

      it('outputs the wss:// URL and the https management endpoint of the stage', () => {
        expect(outputs.websocketUrl).to.match(new RegExp(`^wss://[a-z0-9]+\\.execute-api\\.${REGION}\\.amazonaws\\.com/${config.websocket.stageName}$`));
        expect(outputs.managementEndpoint).to.equal(outputs.websocketUrl.replace('wss://', 'https://'));
      });
    });

    describe('HTTP API', () => {
      it(`routes publish and control with ${stack === 'prod' ? 'JWT' : 'IAM'} authorisation (never open on prod)`, () => {
        const api = one('aws:apigatewayv2/api:Api', (r) => r.inputs.protocolType === 'HTTP');
        const wanted = FUNCTIONS.flatMap((f) => (f.trigger.kind === 'http' ? f.trigger.routes : []));
        expect(wanted).to.include.members(['POST /publish', 'POST /websocket', 'GET /websocket', 'DELETE /websocket', 'GET /websockets']);
        const routes = all('aws:apigatewayv2/route:Route').filter((r) => r.inputs.apiId === api.id);
        expect(routes.map((r) => r.inputs.routeKey).sort()).to.deep.equal([...wanted].sort());
        const expected = config.httpAuth === 'iam' ? 'AWS_IAM' : 'JWT';
        for (const r of routes) expect(r.inputs.authorizationType, r.inputs.routeKey).to.equal(expected);
        if (expected === 'JWT') {
          const auth = one('aws:apigatewayv2/authorizer:Authorizer');
          expect(auth.inputs.jwtConfiguration).to.deep.equal({ issuer: config.jwt.issuer, audiences: [config.jwt.audience] });
          for (const r of routes) expect(r.inputs.authorizerId).to.equal(auth.id);
          // The control API needs the admin scope at the gateway; publishing does not.
          const scopes = (rk: string) => routes.find((r) => r.inputs.routeKey === rk)!.inputs.authorizationScopes;
          for (const rk of ['POST /websocket', 'GET /websocket', 'DELETE /websocket', 'GET /websockets']) {
            expect(scopes(rk), rk).to.deep.equal([CONTROL_SCOPE]);
          }
          expect(scopes('POST /publish')).to.equal(undefined);
          expect(scopes('GET /presence')).to.equal(undefined);
        } else {
          for (const r of routes) expect(r.inputs.authorizationScopes, r.inputs.routeKey).to.equal(undefined);
        }
        for (const rk of wanted) {
          const [method, p] = rk.split(' ');
          one('aws:lambda/permission:Permission', (x) => x.inputs.sourceArn === `${api.state.executionArn}/*/${method}${p}`);
        }
        expect(outputs.httpApiUrl).to.equal(api.state.apiEndpoint);
        // IAM auth: one invoke policy for publishing (and presence, which has publish's rights), another for upstream control.
        const invoke = all('aws:iam/policy:Policy').filter((p) => /-http-invoke-/.test(p.inputs.name));
        if (expected === 'AWS_IAM') {
          const byName = Object.fromEntries(invoke.map((p) => [p.inputs.name.replace(/^.*-http-invoke-/, ''), JSON.parse(p.inputs.policy).Statement[0].Resource]));
          expect(Object.keys(byName).sort()).to.deep.equal(['control', 'publish']);
          expect([...byName.publish].sort()).to.deep.equal([`${api.state.executionArn}/*/GET/presence`, `${api.state.executionArn}/*/POST/publish`]);
          expect([...byName.control].sort()).to.deep.equal(
            ['DELETE/websocket', 'GET/websocket', 'GET/websockets', 'POST/websocket'].map((r) => `${api.state.executionArn}/*/${r}`),
          );
        } else expect(invoke).to.have.length(0);
        const stage = one('aws:apigatewayv2/stage:Stage', (s) => s.inputs.name === '$default');
        expect(stage.inputs.autoDeploy).to.equal(true);
        expect(JSON.parse(stage.inputs.accessLogSettings.format)).to.include.keys('requestId', 'routeKey', 'status', 'error');
      });
    });

    describe('stream mapping', () => {
      it('feeds the items stream to fanout with partial batch responses, bisect, bounded retries and a DLQ', () => {
        const m = one('aws:lambda/eventSourceMapping:EventSourceMapping', (x) => x.inputs.eventSourceArn !== undefined && String(x.inputs.eventSourceArn).includes(':table/'));
        const items = one('aws:dynamodb/table:Table', (t) => t.inputs.name === `${config.prefix}-items`);
        const dlq = one('aws:sqs/queue:Queue', (q) => q.inputs.name === `${config.prefix}-fanoutDlq`);
        expect(m.inputs.eventSourceArn).to.equal(items.state.streamArn);
        expect(m.inputs.functionName).to.equal(fnByName('fanout').state.arn);
        expect(m.inputs.functionResponseTypes).to.deep.equal(['ReportBatchItemFailures']);
        expect(m.inputs.bisectBatchOnFunctionError).to.equal(true);
        expect(m.inputs.maximumRetryAttempts).to.equal(config.fanout.maxRetryAttempts).and.to.be.at.least(0);
        expect(m.inputs.maximumRecordAgeInSeconds).to.equal(config.fanout.maxRecordAgeSeconds).and.to.be.greaterThan(0);
        expect(m.inputs.batchSize).to.equal(config.fanout.batchSize);
        expect(m.inputs.maximumBatchingWindowInSeconds).to.equal(config.fanout.batchWindowSeconds);
        expect(m.inputs.destinationConfig).to.deep.equal({ onFailure: { destinationArn: dlq.state.arn } });
      });
    });

    describe('large topics in partitions', () => {
      it('feeds the FIFO partition queue to fanout-partition with partial batch responses; the queue redrives to a FIFO DLQ', () => {
        const queue = one('aws:sqs/queue:Queue', (q) => q.inputs.name === `${config.prefix}-fanoutPartitions.fifo`);
        const dlq = one('aws:sqs/queue:Queue', (q) => q.inputs.name === `${config.prefix}-fanoutPartitionsDlq.fifo`);
        expect(queue.inputs.fifoQueue).to.equal(true);
        expect(queue.inputs.contentBasedDeduplication).to.equal(false);
        expect(dlq.inputs.fifoQueue).to.equal(true);
        expect(JSON.parse(queue.inputs.redrivePolicy)).to.deep.equal({ deadLetterTargetArn: dlq.state.arn, maxReceiveCount: 5 });
        const m = one('aws:lambda/eventSourceMapping:EventSourceMapping', (x) => x.inputs.eventSourceArn === queue.state.arn);
        expect(m.inputs.functionName).to.equal(fnByName('fanout-partition').state.arn);
        expect(m.inputs.functionResponseTypes).to.deep.equal(['ReportBatchItemFailures']);
        expect(m.inputs.batchSize).to.equal(10);
        // The worker can never outlive the time SQS hides its messages.
        expect(fnByName('fanout-partition').inputs.timeout).to.be.at.most(queue.inputs.visibilityTimeoutSeconds);
      });

      it('the stream fan-out gets the queue, threshold and partition count; only it may send to the queue, only the worker receive', () => {
        const queue = one('aws:sqs/queue:Queue', (q) => q.inputs.name === `${config.prefix}-fanoutPartitions.fifo`);
        const env = fnByName('fanout').inputs.environment.variables as Record<string, string>;
        expect(env).to.include({
          FANOUT_PARTITION_QUEUE_URL: queue.state.url,
          FANOUT_PARTITION_THRESHOLD: String(config.fanout.partitionThreshold),
          FANOUT_PARTITIONS: String(config.fanout.partitions),
        });
        const policies = all('aws:iam/rolePolicy:RolePolicy').map((p) => JSON.parse(p.inputs.policy) as { Statement: { Action: string[]; Resource: string[] }[] });
        const grants = (action: string) =>
          policies.filter((d) => d.Statement.some((st) => st.Action.includes(action) && st.Resource.includes(queue.state.arn))).length;
        expect(grants('sqs:SendMessage')).to.equal(1);
        expect(grants('sqs:ReceiveMessage')).to.equal(1);
        expect(grants('sqs:DeleteMessage')).to.equal(1);
      });
    });

    describe('agent fleet', () => {
      it(`uses the ${stack === 'prod' ? 'dedicated' : 'default'} VPC and a security group with no inbound rules`, () => {
        const vpcType = config.fleet.vpc === 'dedicated' ? 'awsx:ec2:Vpc' : 'awsx:ec2:DefaultVpc';
        one(vpcType);
        const sg = one('aws:ec2/securityGroup:SecurityGroup');
        expect(sg.inputs.ingress ?? []).to.deep.equal([]);
        expect(sg.inputs.vpcId).to.equal(config.fleet.vpc === 'dedicated' ? 'vpc-0dedicated' : 'vpc-0default');
      });

      it('launch template requires IMDSv2, encrypts the root volume and uses the instance profile', () => {
        const lt = one('aws:ec2/launchTemplate:LaunchTemplate');
        expect(lt.inputs.metadataOptions).to.deep.include({ httpTokens: 'required', httpEndpoint: 'enabled', httpPutResponseHopLimit: 1 });
        expect(lt.inputs.blockDeviceMappings[0].ebs.encrypted).to.equal('true');
        expect(lt.inputs.iamInstanceProfile.arn).to.equal(one('aws:iam/instanceProfile:InstanceProfile').state.arn);
        expect(lt.inputs.networkInterfaces[0].associatePublicIpAddress).to.equal(config.fleet.vpc === 'dedicated' ? 'false' : 'true');
      });

      it('user data installs Node.js and runs the uploaded agent bundle (hash included) under systemd with restart', async () => {
        const agent = bundler.agent();
        expect(fs.statSync(agent.file).size).to.be.greaterThan(0);
        const obj = one('aws:s3/bucketObjectv2:BucketObjectv2');
        expect(obj.inputs.key).to.equal(`agent/${agent.sha256}.mjs`);
        expect(await obj.inputs.source.path).to.equal(agent.file);
        const ud = Buffer.from(one('aws:ec2/launchTemplate:LaunchTemplate').inputs.userData, 'base64').toString('utf8');
        expect(ud).to.include(`dnf install -y nodejs${config.fleet.nodeMajor}`);
        expect(ud).to.include(agent.sha256);
        expect(ud).to.include(`s3://${one('aws:s3/bucket:Bucket').state.bucket}/agent/${agent.sha256}.mjs`);
        expect(ud).to.include('Restart=always');
        expect(ud).to.include(`TimeoutStopSec=${config.fleet.leaseReleaseSeconds}`);
        expect(ud).to.include(`COMMAND_QUEUE_URL="${outputs.commandQueueUrl}"`);
      });

      it('keeps the bundle in a private, encrypted bucket', () => {
        const pab = one('aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock');
        expect(pab.inputs).to.include({ blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true });
        const sse = one('aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration');
        expect(sse.inputs.rules[0].applyServerSideEncryptionByDefault.sseAlgorithm).to.equal('AES256');
      });

      it('autoscaling group sizes from config, refreshes on a new launch template, holds terminations for lease release', () => {
        const asg = one('aws:autoscaling/group:Group');
        expect([asg.inputs.minSize, asg.inputs.maxSize, asg.inputs.desiredCapacity]).to.deep.equal([config.fleet.minSize, config.fleet.maxSize, config.fleet.desiredCapacity]);
        expect(asg.inputs.instanceRefresh.strategy).to.equal('Rolling');
        // The group follows the template's latest version, so a new user data (new bundle) rolls out.
        expect(asg.inputs.launchTemplate).to.deep.equal({ id: one('aws:ec2/launchTemplate:LaunchTemplate').id, version: '1' });
        const subnets = config.fleet.vpc === 'dedicated' ? ['subnet-priv-a', 'subnet-priv-b'] : ['subnet-def-a', 'subnet-def-b', 'subnet-def-c'];
        expect(asg.inputs.vpcZoneIdentifiers).to.deep.equal(subnets);
        const hook = one('aws:autoscaling/lifecycleHook:LifecycleHook');
        expect(hook.inputs.lifecycleTransition).to.equal('autoscaling:EC2_INSTANCE_TERMINATING');
        expect(hook.inputs.heartbeatTimeout).to.equal(config.fleet.leaseReleaseSeconds + 30).and.to.be.at.most(7200);
      });

      it('lets a failed boot report its own instance Unhealthy, and nothing else', () => {
        const asg = one('aws:autoscaling/group:Group');
        const doc = JSON.parse(one('aws:iam/rolePolicy:RolePolicy', (r) => r.name === 'agents-lifecycle-policy').inputs.policy);
        const st = doc.Statement.find((x: any) => x.Action.includes('autoscaling:SetInstanceHealth'));
        expect(st).to.deep.include({ Effect: 'Allow', Action: ['autoscaling:SetInstanceHealth'], Resource: [asg.state.arn] });
        const ud = Buffer.from(one('aws:ec2/launchTemplate:LaunchTemplate').inputs.userData, 'base64').toString('utf8');
        expect(ud).to.include("trap 'boot_failed $LINENO' ERR");
        expect(ud).to.include('--health-status Unhealthy --no-should-respect-grace-period');
      });

      if (stack === 'prod') {
        it('sets the dedicated VPC subnet strategy explicitly', () => {
          expect(one('awsx:ec2:Vpc').inputs.subnetStrategy).to.equal('Legacy');
        });

        it('creates the launch template only after the sink secret has its value', () => {
          const lt = one('aws:ec2/launchTemplate:LaunchTemplate');
          const version = one('aws:secretsmanager/secretVersion:SecretVersion');
          expect(lt.options.dependencies.some((urn) => urn.endsWith(`::${version.name}`)), lt.options.dependencies.join('\n')).to.equal(true);
        });

        it('names the sink secret by prefix (a redeploy never collides with a deleted one) and keeps 30 days of recovery', () => {
          const secret = one('aws:secretsmanager/secret:Secret');
          expect(secret.inputs.name).to.equal(undefined);
          expect(secret.inputs.namePrefix).to.equal('realtime-gateway/prod/sink/credentials-');
          expect(secret.inputs.recoveryWindowInDays).to.equal(30);
        });
      }
    });

    describe('alarms and dashboard', () => {
      it('alarms on fanout errors and iterator age, DLQ depth, throttles, API 5xx and failed upstreams, to SNS', () => {
        const topic = one('aws:sns/topic:Topic');
        const alarms = all('aws:cloudwatch/metricAlarm:MetricAlarm');
        const key = (a: Recorded) => `${a.inputs.namespace}/${a.inputs.metricName}`;
        const fanout = `${config.prefix}-fanout`;
        const has = (ns: string, metric: string, dims?: Record<string, string>) =>
          expect(alarms.some((a) => key(a) === `${ns}/${metric}` && (!dims || Object.entries(dims).every(([k, v]) => a.inputs.dimensions?.[k] === v))), `${ns}/${metric} ${JSON.stringify(dims)}`).to.equal(true);
        has('AWS/Lambda', 'Errors', { FunctionName: fanout });
        has('AWS/Lambda', 'IteratorAge', { FunctionName: fanout });
        has('AWS/SQS', 'ApproximateNumberOfMessagesVisible', { QueueName: `${config.prefix}-fanoutDlq` });
        has('AWS/SQS', 'ApproximateNumberOfMessagesVisible', { QueueName: `${config.prefix}-commandsDlq` });
        for (const f of FUNCTIONS) has('AWS/Lambda', 'Throttles', { FunctionName: `${config.prefix}-${f.name}` });
        has('AWS/ApiGateway', '5xx');
        has(`RealtimeGateway/${stack}`, 'WebSocketServerErrors');
        has(`RealtimeGateway/${stack}`, 'socketsFailed');
        for (const a of alarms) expect(a.inputs.alarmActions, a.name).to.deep.equal([topic.state.arn]);
        const subs = all('aws:sns/topicSubscription:TopicSubscription');
        if (config.alarms.email) expect(subs.map((s) => [s.inputs.protocol, s.inputs.endpoint])).to.deep.equal([['email', config.alarms.email]]);
        else expect(subs).to.have.length(0);
      });

      it('pages on WebSocket 5xx only: a metric filter over the access log status, never IntegrationError (which counts 4xx)', () => {
        const alarms = all('aws:cloudwatch/metricAlarm:MetricAlarm');
        expect(alarms.filter((a) => a.inputs.metricName === 'IntegrationError')).to.deep.equal([]);
        const alarm = one('aws:cloudwatch/metricAlarm:MetricAlarm', (a) => a.inputs.name === `${config.prefix}-websocket-integration-errors`);
        const filter = one('aws:cloudwatch/logMetricFilter:LogMetricFilter');
        const stage = one('aws:apigatewayv2/stage:Stage', (x) => x.inputs.name === config.websocket.stageName);
        const logs = one('aws:cloudwatch/logGroup:LogGroup', (l) => l.state.arn === stage.inputs.accessLogSettings.destinationArn);
        expect(filter.inputs.logGroupName).to.equal(logs.inputs.name);
        // The field the filter reads is the status API Gateway answered with.
        expect(JSON.parse(stage.inputs.accessLogSettings.format).status).to.equal('$context.status');
        expect(filter.inputs.pattern).to.equal('{ $.status = 5* }');
        expect(filter.inputs.metricTransformation).to.deep.include({ namespace: alarm.inputs.namespace, name: alarm.inputs.metricName, value: '1' });
        expect([alarm.inputs.statistic, alarm.inputs.alarmActions]).to.deep.equal(['Sum', [one('aws:sns/topic:Topic').state.arn]]);
      });

      it('alarms when the fan-out DLQ holds any message (visible > 0), to the alarm topic, and shows it on the dashboard', () => {
        const dlq = `${config.prefix}-fanoutDlq`;
        const alarm = one('aws:cloudwatch/metricAlarm:MetricAlarm', (a) => a.inputs.name === `${config.prefix}-fanoutDlq-depth`);
        expect(alarm.inputs).to.deep.include({ namespace: 'AWS/SQS', metricName: 'ApproximateNumberOfMessagesVisible', statistic: 'Maximum', threshold: 0, comparisonOperator: 'GreaterThanThreshold', treatMissingData: 'notBreaching' });
        expect(alarm.inputs.dimensions).to.deep.equal({ QueueName: dlq });
        expect(alarm.inputs.alarmActions).to.deep.equal([one('aws:sns/topic:Topic').state.arn]);
        expect(alarm.inputs.alarmDescription).to.match(/replay/);
        const widgets = JSON.parse(one('aws:cloudwatch/dashboard:Dashboard').inputs.dashboardBody).widgets;
        const dlqWidget = widgets.find((w: any) => /Dead-letter/.test(w.properties.title));
        expect(dlqWidget.properties.metrics).to.deep.include(['AWS/SQS', 'ApproximateNumberOfMessagesVisible', 'QueueName', dlq]);
      });

      it('pages when the delivery latency p99 (EMF, service dimension) stays above the configured bound for 5 minutes, and graphs the delivery metrics', () => {
        const alarm = one('aws:cloudwatch/metricAlarm:MetricAlarm', (a) => a.inputs.name === `${config.prefix}-delivery-latency-p99`);
        expect(alarm.inputs).to.deep.include({
          namespace: `RealtimeGateway/${stack}`,
          metricName: 'latencyMs',
          extendedStatistic: 'p99',
          threshold: config.alarms.deliveryLatencyP99Ms,
          comparisonOperator: 'GreaterThanThreshold',
          period: 60,
          evaluationPeriods: 5,
          treatMissingData: 'notBreaching',
        });
        expect(alarm.inputs.statistic).to.equal(undefined);
        expect(alarm.inputs.dimensions).to.deep.equal({ service: 'realtime-gateway' });
        expect(alarm.inputs.alarmActions).to.deep.equal([one('aws:sns/topic:Topic').state.arn]);
        const widgets = JSON.parse(one('aws:cloudwatch/dashboard:Dashboard').inputs.dashboardBody).widgets;
        const graphed = widgets.flatMap((w: any) => w.properties.metrics.map((m: unknown[]) => m.slice(0, 4).join('/')));
        for (const metric of ['records', 'deliveries', 'published', 'gone', 'failed', 'throttled', 'resyncs', 'latencyMs']) {
          expect(graphed, metric).to.include(`RealtimeGateway/${stack}/${metric}/service/realtime-gateway`);
        }
        const latency = widgets.find((w: any) => /Delivery latency/.test(w.properties.title));
        expect(latency.properties.metrics.map((m: any[]) => m[4].stat)).to.deep.equal(['p50', 'p99', 'Maximum']);
        expect(latency.properties.annotations.horizontal[0].value).to.equal(config.alarms.deliveryLatencyP99Ms);
      });

      it('outputs the dashboard name, table names and queue URL', () => {
        const dash = one('aws:cloudwatch/dashboard:Dashboard');
        expect(outputs.dashboardName).to.equal(dash.inputs.dashboardName);
        expect(JSON.parse(dash.inputs.dashboardBody).widgets.length).to.be.greaterThan(4);
        expect(outputs.tableNames).to.deep.equal(Object.fromEntries(TABLE_NAMES.map((t) => [t, `${config.prefix}-${t}`])));
        expect(outputs.commandQueueUrl).to.equal(`https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/${config.prefix}-commands`);
      });
    });

    if (stack === 'prod') {
      it('passes the JWT secret to the Lambdas only as a Pulumi secret', () => {
        for (const spec of FUNCTIONS) {
          const f = fnByName(spec.name);
          expect(f.inputs.environment.variables.JWT_HS256_SECRET).to.equal(JWT_SECRET);
          const raw = f.raw.environment;
          expect(isSecretValue(raw) || isSecretValue(raw.variables) || isSecretValue(raw.variables.JWT_HS256_SECRET), spec.name).to.equal(true);
        }
      });
    }
  });
}

after(() => fs.rmSync(outDir, { recursive: true, force: true }));
