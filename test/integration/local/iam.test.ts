import { expect } from 'chai';
import { DeleteCommand, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { GetRecordsCommand } from '@aws-sdk/client-dynamodb-streams';
import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { CreateSecretCommand, GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { DeleteConnectionCommand, PostToConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import WebSocket from 'ws';
import { createClients } from '../../../lib/aws/clients';
import { AGENT, FUNCTIONS, functionSpec } from '../../../lib/functions';
import { LocalIamAuthorizer } from '../../../local/iam/authorizer';
import { ADMIN, ADMIN_PRINCIPAL, AGENT_PRINCIPAL, LOCAL_ACCOUNT, localAccessKeyId, localPrincipals, localSecretArn } from '../../../local/iam/principals';
import { TEST_LOCAL_RESOURCES } from '../../support/local-resources';
import { LOCAL_CREDENTIALS } from '../../support/env';
import { startTestStack, type LocalStack } from '../../support/stack';
import { waitFor } from '../client/helpers';

/**
 * The local stack enforces each principal's policy (the documents infra/iam.ts builds) at the
 * service edge. The whole integration suite running under enforcement is the proof that every
 * principal's needed calls pass; these are the refusals.
 */
describe('local stack: IAM enforcement', function () {
  this.timeout(60_000);
  let stack: LocalStack;
  before(async () => {
    stack = await startTestStack();
  });
  after(() => stack?.stop());

  // SQS's SDK names the error by its query-compatible code, as it does against AWS.
  const denied = async (p: Promise<unknown>, action: string, resource: RegExp) => {
    const err = (await p.then(
      () => undefined,
      (e: unknown) => e,
    )) as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } } | undefined;
    expect(err, `${action} should be refused`).to.not.equal(undefined);
    expect(err!.name).to.equal(action.startsWith('sqs:') ? 'AccessDenied' : 'AccessDeniedException');
    expect(err!.$metadata?.httpStatusCode).to.equal(400);
    expect(err!.message).to.match(new RegExp(`^User: arn:aws:sts::${LOCAL_ACCOUNT}:assumed-role/[^ ]+ is not authorized to perform: ${action} on resource: `));
    expect(err!.message).to.match(resource);
    expect(err!.message).to.include(`because no identity-based policy allows the ${action} action`);
  };

  it('the fan-out role may not delete an item: AccessDeniedException naming action and resource, and the item stays', async () => {
    const admin = stack.clientsFor(ADMIN_PRINCIPAL);
    await admin.doc.send(new PutCommand({ TableName: stack.tables.items, Item: { topic: 'iam:1', seq: 1, data: {} } }));
    await denied(stack.clientsFor('fanout').doc.send(new DeleteCommand({ TableName: stack.tables.items, Key: { topic: 'iam:1' } })), 'dynamodb:DeleteItem', new RegExp(`table/${stack.tables.items} `));
    const left = await admin.doc.send(new GetCommand({ TableName: stack.tables.items, Key: { topic: 'iam:1' }, ConsistentRead: true }));
    expect(left.Item?.seq).to.equal(1);
  });

  it('the internet-facing connect role may not overwrite items, nor read what it never reads', async () => {
    const connect = stack.clientsFor('connect').doc;
    await denied(connect.send(new PutCommand({ TableName: stack.tables.items, Item: { topic: 'iam:2', seq: 9 } })), 'dynamodb:PutItem', /table\/.*-items /);
    await denied(connect.send(new GetCommand({ TableName: stack.tables.connections, Key: { connectionId: 'x' } })), 'dynamodb:GetItem', /-connections /);
  });

  it('only the stream reader reads the items stream; only the agent receives commands; the agent sends none', async () => {
    const { Table } = await stack.clients.dynamodb.send(new DescribeTableCommand({ TableName: stack.tables.items }));
    const iterator = `${Table!.LatestStreamArn}|001|AAAA`;
    await denied(stack.clientsFor('publish').streams.send(new GetRecordsCommand({ ShardIterator: iterator })), 'dynamodb:GetRecords', /\/stream\//);
    await denied(stack.clientsFor('control').sqs.send(new ReceiveMessageCommand({ QueueUrl: stack.queueUrls.commands, WaitTimeSeconds: 0 })), 'sqs:ReceiveMessage', /-commands /);
    await denied(stack.clientsFor(AGENT_PRINCIPAL).sqs.send(new SendMessageCommand({ QueueUrl: stack.queueUrls.commands, MessageBody: '{}' })), 'sqs:SendMessage', /-commands /);
  });

  it('secrets: control stores but never reads back credentials, nor writes under another stack; the agent reads only under its prefix', async () => {
    const prefix = stack.config.upstream.secretPrefix;
    const value = JSON.stringify({ email: 'a@example.com', pass: 'p' });
    const control = stack.clientsFor('control').secrets;
    await control.send(new CreateSecretCommand({ Name: `${prefix}iam-test`, SecretString: value }));
    await denied(control.send(new GetSecretValueCommand({ SecretId: `${prefix}iam-test` })), 'secretsmanager:GetSecretValue', /:secret:.*iam-test-[A-Za-z0-9]{6} /);
    await denied(control.send(new CreateSecretCommand({ Name: 'realtime-gateway/prod/upstream/x', SecretString: value })), 'secretsmanager:CreateSecret', /prod\/upstream\/x-/);
    const agent = stack.clientsFor(AGENT_PRINCIPAL).secrets;
    expect((await agent.send(new GetSecretValueCommand({ SecretId: `${prefix}iam-test` }))).SecretString).to.equal(value);
    await stack.clientsFor(ADMIN_PRINCIPAL).secrets.send(new CreateSecretCommand({ Name: 'database/password', SecretString: value }));
    await denied(agent.send(new GetSecretValueCommand({ SecretId: 'database/password' })), 'secretsmanager:GetSecretValue', /:secret:database\/password-/);
  });

  it('a client signing with a key that is no local principal is refused', async () => {
    const c = createClients({ region: 'us-east-1', credentials: LOCAL_CREDENTIALS, endpoints: { dynamodb: stack.clients.dynamodb.config.endpoint ? await endpointOf(stack) : '' } });
    try {
      const err = await c.doc.send(new GetCommand({ TableName: stack.tables.items, Key: { topic: 'x' } })).then(() => undefined, (e: Error) => e);
      expect(err?.name).to.equal('AccessDeniedException');
      expect(err?.message).to.match(/"local" is no local principal/);
    } finally {
      c.destroy();
    }
  });

  describe('@connections', () => {
    let ws: WebSocket;
    let id: string;
    before(async () => {
      ws = new WebSocket(`${stack.endpoints.websocketUrl}?userId=iam`);
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
      await waitFor(() => stack.websocket.connectionIds().length === 1, 5000, 'the connection');
      id = stack.websocket.connectionIds()[0]!;
    });
    after(() => ws?.close());

    const forbidden = async (p: Promise<unknown>, verb: string) => {
      const err = (await p.then(() => undefined, (e: unknown) => e)) as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
      expect(err?.name).to.equal('ForbiddenException');
      expect(err.$metadata?.httpStatusCode).to.equal(403);
      expect(err.message).to.include(`execute-api:ManageConnections on resource: arn:aws:execute-api:us-east-1:${LOCAL_ACCOUNT}:${stack.websocket.apiId}/${stack.websocket.stage}/${verb}/@connections/${id}`);
    };

    it('a role without ManageConnections may not post to a connection (403 ForbiddenException)', async () => {
      await forbidden(stack.clientsFor('connect').management(stack.endpoints.managementUrl).send(new PostToConnectionCommand({ ConnectionId: id, Data: Buffer.from('x') })), 'POST');
    });

    it('a role granted POST may post, but may not DELETE a connection it was not granted DELETE on', async () => {
      const fanout = stack.clientsFor('fanout').management(stack.endpoints.managementUrl);
      const got: string[] = [];
      ws.on('message', (d) => got.push(String(d)));
      await fanout.send(new PostToConnectionCommand({ ConnectionId: id, Data: Buffer.from('allowed') }));
      await waitFor(() => got.includes('allowed'), 5000, 'the posted frame');
      if (!functionSpec('fanout').manageConnections.includes('DELETE')) {
        await forbidden(fanout.send(new DeleteConnectionCommand({ ConnectionId: id })), 'DELETE');
        expect(ws.readyState).to.equal(WebSocket.OPEN);
      }
    });
  });
});

describe('local IAM: the policies infra/iam.ts builds, evaluated', () => {
  const resources = TEST_LOCAL_RESOURCES;
  const authorizer = new LocalIamAuthorizer(LOCAL_ACCOUNT);
  for (const p of [...localPrincipals(resources), ADMIN]) authorizer.register(p);
  const allowed = async (principal: string, action: string, resource: string) =>
    (await authorizer.authorize(localAccessKeyId(principal), [{ action, resource }])) === undefined;
  const secret = (name: string) => localSecretArn(resources.arns, name);
  const table = (t: string) => `arn:aws:dynamodb:us-east-1:${LOCAL_ACCOUNT}:table/p-${t}`;

  it('control stores credentials under its own stack prefix only, and never reads them back', async () => {
    expect(await allowed('control', 'secretsmanager:CreateSecret', secret('realtime-gateway/local/upstream/abc'))).to.equal(true);
    expect(await allowed('control', 'secretsmanager:PutSecretValue', secret('realtime-gateway/local/upstream/abc'))).to.equal(true);
    expect(await allowed('control', 'secretsmanager:GetSecretValue', secret('realtime-gateway/local/upstream/abc'))).to.equal(false);
    expect(await allowed('control', 'secretsmanager:GetSecretValue', secret('realtime-gateway/prod/upstream/abc'))).to.equal(false);
    expect(await allowed('control', 'secretsmanager:PutSecretValue', secret('realtime-gateway/prod/upstream/abc'))).to.equal(false);
  });

  it('the agent reads secrets under its prefix only', async () => {
    expect(await allowed(AGENT_PRINCIPAL, 'secretsmanager:GetSecretValue', secret('realtime-gateway/local/upstream/abc'))).to.equal(true);
    expect(await allowed(AGENT_PRINCIPAL, 'secretsmanager:GetSecretValue', secret('realtime-gateway/local/other'))).to.equal(false);
    expect(await allowed(AGENT_PRINCIPAL, 'secretsmanager:GetSecretValue', secret('database/password'))).to.equal(false);
    expect(await allowed(AGENT_PRINCIPAL, 'secretsmanager:DescribeSecret', secret('realtime-gateway/local/upstream/abc'))).to.equal(false);
  });

  it('unsubscribe may read the subscription it checks (SubscriptionStore.exists); with only DeleteItem, as before, it could not', async () => {
    expect(await allowed('unsubscribe', 'dynamodb:GetItem', table('subscriptions'))).to.equal(true);
    // The grant the issue found missing: the same spec with subscriptions: ['DeleteItem'] only.
    const spec = functionSpec('unsubscribe');
    const old = { ...spec, tables: { ...spec.tables, subscriptions: ['DeleteItem' as const] } };
    const narrow = new LocalIamAuthorizer(LOCAL_ACCOUNT);
    for (const p of localPrincipals(resources, [old])) narrow.register(p);
    expect(await narrow.authorize(localAccessKeyId('unsubscribe'), [{ action: 'dynamodb:GetItem', resource: table('subscriptions') }])).to.not.equal(undefined);
    expect(await narrow.authorize(localAccessKeyId('unsubscribe'), [{ action: 'dynamodb:DeleteItem', resource: table('subscriptions') }])).to.equal(undefined);
  });

  it('no principal but the admin may call a table it declares nothing on', async () => {
    for (const f of FUNCTIONS) {
      for (const t of Object.keys(resources.tables)) {
        if ((f.tables as Record<string, unknown>)[t]) continue;
        expect(await allowed(f.name, 'dynamodb:GetItem', table(t)), `${f.name} on ${t}`).to.equal(false);
      }
    }
    expect(Object.keys(AGENT.tables)).to.not.include('connections');
    expect(await allowed(AGENT_PRINCIPAL, 'dynamodb:GetItem', table('connections'))).to.equal(false);
    expect(await allowed(ADMIN_PRINCIPAL, 'dynamodb:DeleteTable', table('items'))).to.equal(true);
  });
});

async function endpointOf(stack: LocalStack): Promise<string> {
  const e = await stack.clients.dynamodb.config.endpoint!();
  return `${e.protocol}//${e.hostname}:${e.port}`;
}
