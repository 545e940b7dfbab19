import { expect } from 'chai';
import { FUNCTIONS, type TableAccess } from '../../lib/functions';
import { TABLE_NAMES, TABLES, type QueueName, type TableName } from '../../lib/schema';
import { agentPolicy, dynamoStatements, functionPolicy, policyProblems, type TableArns } from '../../infra/iam';

const ACC = '123456789012';
const tableArns = Object.fromEntries(
  TABLE_NAMES.map((t) => {
    const arn = `arn:aws:dynamodb:eu-west-1:${ACC}:table/rtg-dev-${t}`;
    return [t, { arn, indexArns: TABLES[t].indexes.map((i) => `${arn}/index/${i.name}`), streamArn: TABLES[t].stream ? `${arn}/stream/2025-01-01T00:00:00.000` : undefined }];
  }),
) as unknown as Record<TableName, TableArns>;
const queues = { commands: `arn:aws:sqs:eu-west-1:${ACC}:rtg-dev-commands`, commandsDlq: `arn:aws:sqs:eu-west-1:${ACC}:rtg-dev-commandsDlq`, fanoutDlq: `arn:aws:sqs:eu-west-1:${ACC}:rtg-dev-fanoutDlq`, inbound: `arn:aws:sqs:eu-west-1:${ACC}:rtg-dev-inbound`, inboundDlq: `arn:aws:sqs:eu-west-1:${ACC}:rtg-dev-inboundDlq`, fanoutPartitions: `arn:aws:sqs:eu-west-1:${ACC}:rtg-dev-fanoutPartitions.fifo`, fanoutPartitionsDlq: `arn:aws:sqs:eu-west-1:${ACC}:rtg-dev-fanoutPartitionsDlq.fifo` } as Record<QueueName, string>;
const arns = {
  tables: tableArns,
  queues,
  connections: { executionArn: `arn:aws:execute-api:eu-west-1:${ACC}:abc123`, stage: 'dev' },
  logGroup: `arn:aws:logs:eu-west-1:${ACC}:log-group:/aws/lambda/rtg-dev-x`,
  secretPrefix: `arn:aws:secretsmanager:eu-west-1:${ACC}:secret:realtime-gateway/dev/upstream/*`,
};

describe('infra: IAM policy builders', () => {
  describe('declared table access maps to exact grants', () => {
    const cases: [string, readonly TableAccess[], TableName, { table: string[]; index: Record<string, string[]>; stream: string[] }][] = [
      ['exact table actions only', ['GetItem', 'UpdateItem'], 'connections', { table: ['dynamodb:GetItem', 'dynamodb:UpdateItem'], index: { byUser: [] }, stream: [] }],
      ['Query on the named index only, never on the table', ['Query:byConnection'], 'subscriptions', { table: [], index: { byConnection: ['dynamodb:Query'] }, stream: [] }],
      ['a batch of deletes needs BatchWriteItem itself', ['BatchWriteItem'], 'subscriptions', { table: ['dynamodb:BatchWriteItem'], index: { byConnection: [] }, stream: [] }],
      ['duplicates merge', ['GetItem', 'GetItem', 'Scan'], 'upstreams', { table: ['dynamodb:GetItem', 'dynamodb:Scan'], index: { byDesiredLease: [] }, stream: [] }],
      ['stream read on the stream ARN (ListStreams is not there)', ['stream'], 'items', { table: [], index: {}, stream: ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator'] }],
    ];
    for (const [what, access, table, want] of cases) {
      it(what, () => {
        const st = dynamoStatements(table, access, tableArns[table]);
        const on = (r: string) => st.filter((s) => s.Resource.includes(r)).flatMap((s) => s.Action).sort();
        expect(on(tableArns[table].arn)).to.deep.equal(want.table);
        for (const ix of tableArns[table].indexArns) expect(on(ix)).to.deep.equal(want.index[ix.split('/index/')[1]!] ?? []);
        if (tableArns[table].streamArn) expect(on(tableArns[table].streamArn!)).to.deep.equal(want.stream);
        expect(st.flatMap((s) => s.Resource).some((r) => r.endsWith('/index/*'))).to.equal(false);
      });
    }
    it('refuses stream access on a table without a stream', () => {
      expect(() => dynamoStatements('connections', ['stream'], tableArns.connections)).to.throw(/has no stream/);
    });
    it('refuses a Query on an index the table does not have', () => {
      expect(() => dynamoStatements('history', ['Query:byUser'], tableArns.history)).to.throw(/has no index byUser/);
    });
  });

  describe('function policies from lib/functions.ts', () => {
    for (const spec of FUNCTIONS) {
      it(`${spec.name}: scoped, and exactly the grants its spec declares`, () => {
        const doc = functionPolicy(spec, arns);
        expect(policyProblems(doc)).to.deep.equal([]);
        const actions = doc.Statement.flatMap((s) => s.Action);
        const mc = doc.Statement.find((s) => s.Sid === 'ManageConnections');
        expect(mc?.Resource ?? []).to.deep.equal([...spec.manageConnections].sort().map((v) => `arn:aws:execute-api:eu-west-1:${ACC}:abc123/dev/${v}/@connections/*`));
        expect(actions.filter((a) => a.startsWith('secretsmanager:')).sort()).to.deep.equal((spec.secrets ?? []).map((a) => `secretsmanager:${a}`).sort());
        // Per queue: exactly the actions declared on it, on its ARN only.
        const sqsGrants = doc.Statement.filter((s) => s.Action.some((a) => a.startsWith('sqs:'))).map((s) => `${s.Resource.join(',')} ${[...s.Action].sort().join(',')}`);
        const declaredSqs = (Object.entries(spec.queues) as [QueueName, readonly string[]][])
          .filter(([, ops]) => ops.length)
          .map(([q, ops]) => `${queues[q]} ${[...new Set(ops.map((o) => `sqs:${o}`))].sort().join(',')}`);
        expect(sqsGrants.sort()).to.deep.equal(declaredSqs.sort());
        const tablesTouched = new Set(doc.Statement.flatMap((s) => s.Resource).filter((r) => r.includes(':table/')).map((r) => r.split(':table/')[1]!.split('/')[0]!.replace('rtg-dev-', '')));
        expect([...tablesTouched].sort()).to.deep.equal(Object.keys(spec.tables).sort());
        // Every DynamoDB grant is one the spec names: nothing rides along with an access level.
        const declaredDdb = Object.values(spec.tables).flatMap((l) => l!.map((a) => (a === 'stream' ? 'stream' : `dynamodb:${a.split(':')[0]}`)));
        for (const a of actions.filter((x) => x.startsWith('dynamodb:'))) {
          const viaStream = ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator', 'dynamodb:ListStreams'].includes(a);
          expect(viaStream ? declaredDdb.includes('stream') : declaredDdb.includes(a), `${spec.name} ${a}`).to.equal(true);
        }
        expect(doc.Statement[0]).to.deep.include({ Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: [`${arns.logGroup}:*`] });
      });
    }
    it('the stream reader gets ListStreams on "*" in a statement of its own (it has no resource type)', () => {
      const doc = functionPolicy(FUNCTIONS.find((f) => f.name === 'fanout')!, arns);
      expect(doc.Statement.filter((s) => s.Action.includes('dynamodb:ListStreams'))).to.deep.equal([{ Sid: 'ListStreams', Effect: 'Allow', Action: ['dynamodb:ListStreams'], Resource: ['*'] }]);
      expect(policyProblems(doc)).to.deep.equal([]);
    });
    it('no function but the stream reader can list streams, and none but control can Scan', () => {
      for (const spec of FUNCTIONS) {
        const actions = functionPolicy(spec, arns).Statement.flatMap((s) => s.Action);
        expect(actions.includes('dynamodb:ListStreams'), spec.name).to.equal(spec.trigger.kind === 'stream');
        expect(actions.includes('dynamodb:Scan'), spec.name).to.equal(spec.name === 'control');
      }
    });
  });

  it('agent policy is scoped; PutMetricData is "*" only under a namespace condition', () => {
    const doc = agentPolicy({ tables: tableArns, commandQueue: queues.commands, secretPrefix: arns.secretPrefix, bundleObject: 'arn:aws:s3:::b/agent/x.mjs', metricsNamespace: 'RealtimeGateway/dev' });
    expect(policyProblems(doc)).to.deep.equal([]);
    const receive = doc.Statement.find((s) => s.Sid === 'CommandsQueue')!;
    expect(receive.Action).to.deep.equal(['sqs:DeleteMessage', 'sqs:ReceiveMessage']);
    expect(receive.Resource).to.deep.equal([queues.commands]);
    expect(doc.Statement.find((s) => s.Sid === 'UpstreamSecrets')!.Action).to.deep.equal(['secretsmanager:GetSecretValue']);
    // Its item writes carry a ConditionCheck on its lease row (ItemStore write guard).
    const onUpstreams = doc.Statement.filter((s) => (s.Resource as string[]).includes(tableArns.upstreams.arn)).flatMap((s) => s.Action as string[]);
    expect(onUpstreams).to.include('dynamodb:ConditionCheckItem');
    const all = doc.Statement.flatMap((s) => s.Action);
    for (const never of ['dynamodb:BatchWriteItem', 'dynamodb:DeleteItem', 'dynamodb:Scan', 'secretsmanager:DescribeSecret', 'sqs:GetQueueAttributes', 'sqs:ChangeMessageVisibility']) {
      expect(all, never).to.not.include(never);
    }
    const withoutCondition = { ...doc, Statement: doc.Statement.map((s) => (s.Sid === 'Metrics' ? { ...s, Condition: undefined } : s)) };
    expect(policyProblems(withoutCondition).join()).to.match(/without a cloudwatch:namespace condition/);
  });

  describe('policyProblems flags what is not least-privilege', () => {
    const doc = (st: object) => ({ Version: '2012-10-17', Statement: [st] });
    const cases: [string, object, RegExp | null][] = [
      ['wildcard action', { Effect: 'Allow', Action: ['dynamodb:*'], Resource: [tableArns.items.arn] }, /not one exact action/],
      ['prefix wildcard action', { Effect: 'Allow', Action: 'dynamodb:Get*', Resource: tableArns.items.arn }, /not one exact action/],
      ['"*" resource', { Effect: 'Allow', Action: ['dynamodb:GetItem'], Resource: '*' }, /on Resource "\*"/],
      ['every index', { Effect: 'Allow', Action: ['dynamodb:Query'], Resource: [`${tableArns.connections.arn}/index/*`] }, /name each index ARN/],
      ['every table', { Effect: 'Allow', Action: ['dynamodb:GetItem'], Resource: [`arn:aws:dynamodb:eu-west-1:${ACC}:table/*`] }, /wildcard outside the scoped forms/],
      ['every API', { Effect: 'Allow', Action: ['execute-api:ManageConnections'], Resource: [`arn:aws:execute-api:eu-west-1:${ACC}:*/dev/POST/@connections/*`] }, /wildcard outside/],
      ['every secret', { Effect: 'Allow', Action: ['secretsmanager:GetSecretValue'], Resource: [`arn:aws:secretsmanager:eu-west-1:${ACC}:secret:*`] }, /wildcard outside/],
      ['NotAction', { Effect: 'Allow', NotAction: ['iam:*'], Resource: ['*'] }, /NotAction/],
      ['scoped log streams are fine', { Effect: 'Allow', Action: ['logs:PutLogEvents'], Resource: [`${arns.logGroup}:*`] }, null],
      ['scoped connections are fine', { Effect: 'Allow', Action: ['execute-api:ManageConnections'], Resource: [`arn:aws:execute-api:eu-west-1:${ACC}:abc123/dev/POST/@connections/*`] }, null],
      ['DeleteConnection on one stage is fine', { Effect: 'Allow', Action: ['execute-api:ManageConnections'], Resource: [`arn:aws:execute-api:eu-west-1:${ACC}:abc123/dev/DELETE/@connections/*`] }, null],
      ['connections on every stage', { Effect: 'Allow', Action: ['execute-api:ManageConnections'], Resource: [`arn:aws:execute-api:eu-west-1:${ACC}:abc123/*/DELETE/@connections/*`] }, /wildcard outside/],
      ['ListStreams on "*" is fine (its only form)', { Effect: 'Allow', Action: ['dynamodb:ListStreams'], Resource: ['*'] }, null],
      ['a secret prefix is fine', { Effect: 'Allow', Action: ['secretsmanager:GetSecretValue'], Resource: [arns.secretPrefix] }, null],
      ['a Deny only narrows', { Effect: 'Deny', Action: 's3:*', Resource: '*' }, null],
    ];
    for (const [what, st, want] of cases) {
      it(what, () => {
        const problems = policyProblems(doc(st));
        if (want) expect(problems.join('\n')).to.match(want);
        else expect(problems).to.deep.equal([]);
      });
    }
  });
});
