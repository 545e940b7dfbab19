import { expect } from 'chai';
import { installMocks, settle, value, type MockRun } from './support/mocks';

/**
 * examples/embed: a program of a user's own (their table and topic, the gateway notifying that
 * topic, a parameter holding the gateway's URL) run as Pulumi would run it, under the mocks.
 */
describe('examples/embed: the component in a program of a user\'s own', function () {
  this.timeout(180_000);
  let run: MockRun;
  let program: typeof import('../../examples/embed/index');

  before(async () => {
    run = await installMocks('dev');
    program = await import('../../examples/embed/index');
    await value(program.websocketUrl);
    await settle();
  });

  it('creates the user\'s own resources next to the gateway', () => {
    const counts: Record<string, number> = {};
    for (const r of run.resources) counts[r.type] = (counts[r.type] ?? 0) + 1;
    const own = run.resources.filter((r) => ['orders', 'ops', 'push-url'].includes(r.name));
    expect(own.map((r) => r.type).sort()).to.deep.equal(['aws:dynamodb/table:Table', 'aws:sns/topic:Topic', 'aws:ssm/parameter:Parameter']);
    expect(counts['realtime-gateway:index:RealtimeGateway']).to.equal(1);
    // The figure docs/deploy.md quotes; printed so a change shows up in the test log.
    const registered = run.resources.filter((r) => r.type !== 'pulumi:pulumi:Stack');
    const cloud = registered.filter((r) => r.type.startsWith('aws:'));
    console.log(`      examples/embed registers ${registered.length} resources: ${cloud.length} AWS resources (${own.length} of them the user's) and ${registered.length - cloud.length} component resources`);
  });

  it('sends every gateway alarm to the user\'s topic and creates no topic of its own', () => {
    const topics = run.resources.filter((r) => r.type === 'aws:sns/topic:Topic');
    expect(topics.map((t) => t.inputs.name)).to.deep.equal(['shop-ops']);
    const alarms = run.resources.filter((r) => r.type === 'aws:cloudwatch/metricAlarm:MetricAlarm');
    expect(alarms).to.not.have.length(0);
    for (const a of alarms) {
      expect(a.inputs.alarmActions, a.name).to.deep.equal([topics[0]!.state.arn]);
      expect(a.inputs.okActions, a.name).to.deep.equal([topics[0]!.state.arn]);
    }
  });

  it('hands the gateway\'s WebSocket URL to the user\'s parameter', async () => {
    const param = run.resources.find((r) => r.type === 'aws:ssm/parameter:Parameter')!;
    expect(param.inputs.value).to.equal(await value(program.websocketUrl));
    expect(param.inputs.value).to.match(/^wss:\/\/.+\.execute-api\.eu-west-1\.amazonaws\.com\/dev$/);
  });

  it('subscribes on connect by the item key the user chose', () => {
    const fn = run.resources.find((r) => r.type === 'aws:lambda/function:Function' && r.inputs.name === 'rtg-dev-connect')!;
    expect(fn.inputs.environment.variables.ITEM_KEYS).to.equal('orderId');
  });
});
