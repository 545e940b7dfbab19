import { expect } from 'chai';
import { FUNCTIONS, type TableAccess } from '../../lib/functions';
import { TABLE_NAMES, TABLES, type QueueName, type TableName } from '../../lib/schema';
import { agentPolicy, DYNAMODB_ACTIONS, dynamoStatements, functionPolicy, policyProblems, type TableArns } from '../../infra/iam';

const ACC = '123456789012';
const tableArns = Object.fromEntries(
  TABLE_NAMES.map((t) => {
    const arn = `arn:aws:dynamodb:eu-west-1:${ACC}:table/rtg-dev-${t}`;
    return [t, { arn, indexArns: TABLES[t].indexes.map((i) => `${arn}/index/${i.name}`), streamArn: TABLES[t].stream ? `${arn}/stream/2025-01-01T00:00:00.000` : undefined }];
  }),
) as unknown as Record<TableName, TableArns>;
const queues = { commands: `arn:aws:sqs:eu-west-1:${ACC}:rtg-dev-commands`, commandsDlq: `arn:aws:sqs:eu-west-1:${ACC}:rtg-dev-commandsDlq`, fanoutDlq: `arn:aws:sqs:eu-west-1:${ACC}:rtg-dev-fanoutDlq` } as Record<QueueName, string>;
const arns = {
  tables: tableArns,
  queues,
  manageConnections: `arn:aws:execute-api:eu-west-1:${ACC}:abc123/dev/POST/@connections/*`,
  logGroup: `arn:aws:logs:eu-west-1:${ACC}:log-group:/aws/lambda/rtg-dev-x`,
  secretPrefix: `arn:aws:secretsmanager:eu-west-1:${ACC}:secret:realtime-gateway/dev/upstream/*`,
};

describe('infra: IAM policy builders', () => {
  describe('DynamoDB access levels map to exact actions', () => {
    const cases: [string, readonly TableAccess[], TableName, { table: string[]; index: string[]; stream: string[] }][] = [
      ['read on a table with an index', ['read'], 'connections', { table: ['dynamodb:BatchGetItem', 'dynamodb:GetItem', 'dynamodb:Query'], index: ['dynamodb:Query'], stream: [] }],
      ['read on a table without indexes', ['read'], 'history', { table: ['dynamodb:BatchGetItem', 'dynamodb:GetItem', 'dynamodb:Query'], index: [], stream: [] }],
      ['scan only where declared', ['read', 'scan'], 'upstreams', { table: ['dynamodb:BatchGetItem', 'dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:Scan'], index: ['dynamodb:Query'], stream: [] }],
      ['write (transactions need ConditionCheckItem)', ['write'], 'items', { table: ['dynamodb:BatchWriteItem', 'dynamodb:ConditionCheckItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'], index: [], stream: [] }],
      ['delete', ['delete'], 'subscriptions', { table: ['dynamodb:BatchWriteItem', 'dynamodb:DeleteItem'], index: [], stream: [] }],
      ['read + delete merge without duplicates', ['read', 'delete'], 'subscriptions', { table: ['dynamodb:BatchGetItem', 'dynamodb:BatchWriteItem', 'dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:Query'], index: ['dynamodb:Query'], stream: [] }],
      ['stream (ListStreams scoped to the stream ARN, as in the AWS example policy)', ['stream'], 'items', { table: [], index: [], stream: ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator', 'dynamodb:ListStreams'] }],
    ];
    for (const [what, access, table, want] of cases) {
      it(what, () => {
        const st = dynamoStatements(table, access, tableArns[table]);
        const on = (r: string) => st.filter((s) => s.Resource.includes(r)).flatMap((s) => s.Action).sort();
        expect(on(tableArns[table].arn)).to.deep.equal(want.table);
        for (const ix of tableArns[table].indexArns) expect(on(ix)).to.deep.equal(want.index);
        if (tableArns[table].streamArn) expect(on(tableArns[table].streamArn!)).to.deep.equal(want.stream);
        expect(st.flatMap((s) => s.Resource).some((r) => r.endsWith('/index/*'))).to.equal(false);
      });
    }
    it('refuses stream access on a table without a stream', () => {
      expect(() => dynamoStatements('connections', ['stream'], tableArns.connections)).to.throw(/has no stream/);
    });
    it('never lists a wildcard action', () => {
      for (const level of Object.values(DYNAMODB_ACTIONS)) for (const a of [...level.table, ...level.index, ...level.stream]) expect(a).to.not.include('*');
    });
  });

  describe('function policies from lib/functions.ts', () => {
    for (const spec of FUNCTIONS) {
      it(`${spec.name}: scoped, and exactly the grants its spec declares`, () => {
        const doc = functionPolicy(spec, arns);
        expect(policyProblems(doc)).to.deep.equal([]);
        const actions = doc.Statement.flatMap((s) => s.Action);
        expect(actions.includes('execute-api:ManageConnections')).to.equal(spec.manageConnections);
        expect(actions.some((a) => a.startsWith('secretsmanager:'))).to.equal(spec.secrets !== undefined);
        expect(actions.includes('sqs:SendMessage')).to.equal(Object.values(spec.queues).some((ops) => ops!.includes('send')));
        const tablesTouched = new Set(doc.Statement.flatMap((s) => s.Resource).filter((r) => r.includes(':table/')).map((r) => r.split(':table/')[1]!.split('/')[0]!.replace('rtg-dev-', '')));
        expect([...tablesTouched].sort()).to.deep.equal(Object.keys(spec.tables).sort());
        expect(doc.Statement[0]).to.deep.include({ Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: [`${arns.logGroup}:*`] });
      });
    }
  });

  it('agent policy is scoped; PutMetricData is "*" only under a namespace condition', () => {
    const doc = agentPolicy({ tables: tableArns, commandQueue: queues.commands, secretPrefix: arns.secretPrefix, bundleObject: 'arn:aws:s3:::b/agent/x.mjs', metricsNamespace: 'RealtimeGateway/dev' });
    expect(policyProblems(doc)).to.deep.equal([]);
    const receive = doc.Statement.find((s) => s.Sid === 'CommandQueue')!;
    expect(receive.Action).to.include.members(['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility']);
    expect(receive.Resource).to.deep.equal([queues.commands]);
    // Its item writes carry a ConditionCheck on its lease row (ItemStore write guard).
    const onUpstreams = doc.Statement.filter((s) => (s.Resource as string[]).includes(tableArns.upstreams.arn)).flatMap((s) => s.Action as string[]);
    expect(onUpstreams).to.include('dynamodb:ConditionCheckItem');
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
      ['scoped connections are fine', { Effect: 'Allow', Action: ['execute-api:ManageConnections'], Resource: [arns.manageConnections] }, null],
      ['closing scoped connections is fine', { Effect: 'Allow', Action: ['execute-api:ManageConnections'], Resource: [arns.manageConnections.replace('/POST/', '/DELETE/')] }, null],
      ['every method on connections', { Effect: 'Allow', Action: ['execute-api:ManageConnections'], Resource: [arns.manageConnections.replace('/POST/', '/*/')] }, /wildcard outside/],
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
