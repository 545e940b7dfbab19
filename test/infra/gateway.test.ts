import { expect } from 'chai';
import os from 'node:os';
import path from 'node:path';
import type { ConfigError } from '../../lib/errors';
import { installMocks, settle, value, type MockRun, type Recorded } from './support/mocks';

/**
 * The platform as one component (infra/gateway.ts) under strict Pulumi mocks: what a program of
 * a user's own gets from `new RealtimeGateway(name, args, opts)`.
 */

type Gateway = typeof import('../../infra/gateway');
type Pulumi = typeof import('@pulumi/pulumi');

/** The outputs of the repository's program (infra/index.ts), with httpAuth iam. */
const PROGRAM_OUTPUTS = [
  'websocketUrl',
  'managementEndpoint',
  'httpApiUrl',
  'tableNames',
  'commandQueueUrl',
  'inboundQueueUrl',
  'dashboardName',
  'alarmTopicArn',
  'agentAutoScalingGroup',
  'httpPublishInvokePolicyArn',
  'httpControlInvokePolicyArn',
];

/** `urn:pulumi:stack::project::a$b::name` → the recorded resource it names. */
function byUrn(run: MockRun, urn: string): Recorded | undefined {
  const parts = urn.split('::');
  const name = parts.slice(3).join('::');
  const type = parts[2]!.split('$').pop();
  return run.resources.find((r) => r.name === name && r.type === type);
}

/** The chain of parents up to (not including) the stack. */
function ancestors(run: MockRun, r: Recorded): Recorded[] {
  const out: Recorded[] = [];
  for (let p = r.options.parent; p; ) {
    const parent = byUrn(run, p);
    if (!parent || parent.type === 'pulumi:pulumi:Stack') break;
    out.push(parent);
    p = parent.options.parent;
  }
  return out;
}

describe('infra: the RealtimeGateway component under Pulumi mocks', function () {
  this.timeout(180_000);
  let gw: Gateway;
  let pulumi: Pulumi;

  describe('built in a program of its own, from another working directory', () => {
    let run: MockRun;
    let gateway: InstanceType<Gateway['RealtimeGateway']>;
    const cwd = process.cwd();

    before(async () => {
      run = await installMocks('dev');
      gw = await import('../../infra/gateway');
      pulumi = await import('@pulumi/pulumi');
      // Bundles are found relative to the package, not to where `pulumi up` was started.
      process.chdir(os.tmpdir());
      try {
        gateway = new gw.RealtimeGateway('shop', {
          stack: 'dev',
          authMode: 'none',
          httpAuth: 'iam',
          fleet: { vpc: 'existing', vpcId: pulumi.output('vpc-0abc123'), subnetIds: pulumi.output(['subnet-0aaa111', 'subnet-0bbb222']) },
          alarms: { topicArn: pulumi.output('arn:aws:sns:eu-west-1:123456789012:team-ops') },
        });
      } finally {
        process.chdir(cwd);
      }
      await value(gateway.websocketUrl);
      await settle();
    });

    it('registers one component of type realtime-gateway:index:RealtimeGateway and parents every other resource to it', () => {
      const components = run.resources.filter((r) => r.type === 'realtime-gateway:index:RealtimeGateway');
      expect(components.map((r) => r.name)).to.deep.equal(['shop']);
      const others = run.resources.filter((r) => r.type !== 'realtime-gateway:index:RealtimeGateway' && r.type !== 'pulumi:pulumi:Stack');
      expect(others.length).to.be.greaterThan(50);
      for (const r of others) {
        const chain = ancestors(run, r);
        expect(chain.at(-1)?.type, `${r.type} ${r.name}`).to.equal('realtime-gateway:index:RealtimeGateway');
        expect(r.name.startsWith('shop-'), `${r.type} ${r.name}`).to.equal(true);
      }
    });

    it('registers the outputs of the stack program as its own', () => {
      const [urn, names] = [...run.registeredOutputs].find(([u]) => u.endsWith('realtime-gateway:index:RealtimeGateway::shop'))!;
      expect(urn).to.be.a('string');
      expect([...names].sort()).to.deep.equal([...PROGRAM_OUTPUTS].sort());
    });

    it('bundles the handlers from the package directory whatever the working directory', async () => {
      const fns = run.resources.filter((r) => r.type === 'aws:lambda/function:Function');
      expect(fns).to.not.have.length(0);
      for (const f of fns) expect(path.dirname(await f.inputs.code.path)).to.equal(path.join(gw.PACKAGE_ROOT, '.build', 'dev', 'lambda'));
    });

    it('runs the agents in the subnets handed in from another resource, with no VPC of its own', () => {
      expect(run.resources.filter((r) => r.type.startsWith('awsx:ec2:'))).to.have.length(0);
      const group = run.resources.find((r) => r.type === 'aws:autoscaling/group:Group')!;
      expect(group.inputs.vpcZoneIdentifiers).to.deep.equal(['subnet-0aaa111', 'subnet-0bbb222']);
      const sg = run.resources.find((r) => r.type === 'aws:ec2/securityGroup:SecurityGroup')!;
      expect(sg.inputs.vpcId).to.equal('vpc-0abc123');
      const lt = run.resources.find((r) => r.type === 'aws:ec2/launchTemplate:LaunchTemplate')!;
      expect(lt.inputs.networkInterfaces[0].associatePublicIpAddress).to.equal('false');
    });

    it('notifies the alarm topic handed in and creates none of its own', async () => {
      expect(run.resources.filter((r) => r.type === 'aws:sns/topic:Topic')).to.have.length(0);
      const alarms = run.resources.filter((r) => r.type === 'aws:cloudwatch/metricAlarm:MetricAlarm');
      expect(alarms).to.not.have.length(0);
      for (const a of alarms) expect(a.inputs.alarmActions, a.name).to.deep.equal(['arn:aws:sns:eu-west-1:123456789012:team-ops']);
      expect(await value(gateway.alarmTopicArn)).to.equal('arn:aws:sns:eu-west-1:123456789012:team-ops');
    });
  });

  describe('takes the JWT issuer and audience from the identity provider\'s resources', () => {
    let run: MockRun;
    const ISSUER_PREFIX = 'https://cognito-idp.eu-west-1.amazonaws.com/';

    before(async () => {
      run = await installMocks('dev');
      gw = await import('../../infra/gateway');
      pulumi = await import('@pulumi/pulumi');
      const aws = await import('@pulumi/aws');
      // A user's own Cognito user pool and app client: the issuer and audience are Outputs of them.
      const pool = new aws.cognito.UserPool('users', { name: 'shop-users' });
      const app = new aws.cognito.UserPoolClient('web', { name: 'shop-web', userPoolId: pool.id });
      const gateway = new gw.RealtimeGateway('idp', {
        stack: 'dev',
        authMode: 'jwt',
        httpAuth: 'jwt',
        jwt: {
          issuer: pulumi.interpolate`${ISSUER_PREFIX}${pool.id}`,
          audience: app.id,
          jwksUrl: `${ISSUER_PREFIX}eu-west-1_AbC/.well-known/jwks.json`,
        },
      });
      await value(gateway.httpApiUrl);
      await settle();
    });

    it('hands them to the HTTP API\'s JWT authoriser', () => {
      const pool = run.resources.find((r) => r.type === 'aws:cognito/userPool:UserPool')!;
      const app = run.resources.find((r) => r.type === 'aws:cognito/userPoolClient:UserPoolClient')!;
      const authorizer = run.resources.find((r) => r.type === 'aws:apigatewayv2/authorizer:Authorizer')!;
      expect(authorizer.inputs.jwtConfiguration).to.deep.equal({ issuer: `${ISSUER_PREFIX}${pool.id}`, audiences: [app.id] });
    });

    it('hands them to the handlers that verify subscriber tokens', () => {
      const pool = run.resources.find((r) => r.type === 'aws:cognito/userPool:UserPool')!;
      const app = run.resources.find((r) => r.type === 'aws:cognito/userPoolClient:UserPoolClient')!;
      const connect = run.resources.find((r) => r.type === 'aws:lambda/function:Function' && r.inputs.name === 'rtg-dev-connect')!;
      expect(connect.inputs.environment.variables).to.deep.include({ JWT_ISSUER: `${ISSUER_PREFIX}${pool.id}`, JWT_AUDIENCE: app.id });
    });
  });

  describe('refuses bad args before it registers anything', () => {
    let run: MockRun;
    before(async () => {
      run = await installMocks('dev');
      gw = await import('../../infra/gateway');
    });

    const cases: [string, Record<string, unknown>, string][] = [
      ['min above max', { fleet: { minSize: 3, maxSize: 2 } }, 'realtime-gateway:fleet.minSize: is 3, above fleet.maxSize 2'],
      ['an unknown setting', { fleet: { maxsize: 3 } }, 'realtime-gateway:fleet.maxsize: is not a known setting'],
      ['subnets without fleet.vpc existing', { fleet: { subnetIds: ['subnet-0aaa111'] } }, 'realtime-gateway:fleet.subnetIds: only applies to fleet.vpc existing (fleet.vpc is default)'],
      ['fleet.vpc existing without subnets', { fleet: { vpc: 'existing', vpcId: 'vpc-0abc' } }, 'realtime-gateway:fleet.subnetIds: is required when fleet.vpc is existing'],
      ['a topic ARN that is not one', { alarms: { topicArn: 'ops' } }, 'realtime-gateway:alarms.topicArn: is "ops"; expected an SNS topic ARN'],
      ['a prod gateway open to anyone', { stack: 'prod', authMode: 'none' }, 'realtime-gateway:authMode: is "none", which is refused on the prod stack'],
      ['a plain issuer that is not https', { jwt: { issuer: 'http://idp.example.com/' } }, 'realtime-gateway:jwt.issuer: is "http://idp.example.com/"; expected a https URL'],
    ];
    for (const [what, extra, message] of cases) {
      it(what, async () => {
        const before = run.resources.length;
        const args = { stack: 'dev', authMode: 'none', httpAuth: 'iam', ...extra } as unknown as ConstructorParameters<Gateway['RealtimeGateway']>[1];
        let err: unknown;
        try {
          new gw.RealtimeGateway('bad', args);
        } catch (e) {
          err = e;
        }
        // The stack config's error: its code and its message, word for word.
        expect((err as ConfigError | undefined)?.code, String(err)).to.equal('config_invalid');
        expect((err as Error).message.startsWith(message), (err as Error).message).to.equal(true);
        await settle();
        expect(run.resources.slice(before).map((r) => `${r.type} ${r.name}`)).to.deep.equal([]);
      });
    }
  });
});
