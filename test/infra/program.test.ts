import { expect } from 'chai';
import { installMocks, ROOT, settle, stackFileValues, value, type MockRun } from './support/mocks';

/**
 * infra/index.ts, the repository's own program, as `pulumi up --stack dev` runs it: the stack
 * file's config handed to the component. Stacks deployed before the component existed had the
 * same resources at the stack's root under bare names; the aliases keep their identities.
 */
describe('infra: the stack program (infra/index.ts) under Pulumi mocks', function () {
  this.timeout(180_000);
  let run: MockRun;
  let program: typeof import('../../infra/index');

  before(async () => {
    run = await installMocks('dev');
    const pulumi = await import('@pulumi/pulumi');
    const config = Object.fromEntries(Object.entries(stackFileValues('dev', ROOT)).map(([k, v]) => [`realtime-gateway:${k}`, v]));
    pulumi.runtime.setAllConfig(config);
    program = await import('../../infra/index');
    await value(program.websocketUrl);
    await settle();
  });

  it('builds the platform as one RealtimeGateway and exports its outputs', async () => {
    expect(run.resources.filter((r) => r.type === 'realtime-gateway:index:RealtimeGateway').map((r) => r.name)).to.deep.equal(['realtime-gateway']);
    expect(Object.keys(program).sort()).to.deep.equal(
      ['agentAutoScalingGroup', 'alarmTopicArn', 'commandQueueUrl', 'dashboardName', 'inboundQueueUrl', 'httpApiUrl', 'httpControlInvokePolicyArn', 'httpPublishInvokePolicyArn', 'managementEndpoint', 'tableNames', 'websocketUrl'].sort(),
    );
    expect(await value(program.tableNames)).to.deep.include({ connections: 'rtg-dev-connections', items: 'rtg-dev-items' });
  });

  it('aliases each resource the program used to create at the root to its old name there', () => {
    const top = run.resources.filter((r) => r.options.parent.endsWith('realtime-gateway:index:RealtimeGateway::realtime-gateway'));
    expect(top.map((r) => r.name)).to.include.members(['realtime-gateway-tables', 'realtime-gateway-queues', 'realtime-gateway-secrets', 'realtime-gateway-websocket', 'realtime-gateway-http', 'realtime-gateway-agents', 'realtime-gateway-monitoring', 'realtime-gateway-fn-fanout']);
    for (const r of top) {
      const old = r.name.slice('realtime-gateway-'.length);
      expect(JSON.parse(JSON.stringify(r.options.aliases)), r.name).to.deep.equal([{ spec: { name: old, type: '', stack: '', project: '', noparent: true } }]);
    }
  });
});
