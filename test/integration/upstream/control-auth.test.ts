import { expect } from 'chai';
import { DeleteMessageCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { GetCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { createHandler } from '../../../functions/control';
import { invokeLambda } from '../../../local/lambda/invoke';
import { LocalSecretStore } from '../../../lib/upstream/secrets-local';
import { socketIdOf } from '../../../lib/upstream/socket-id';
import { httpEvent, startHarness, type Harness } from './harness';

type Res = { statusCode: number; body: string };

/**
 * Review finding 1: on AWS the control routes share the JWT authoriser with subscriber tokens,
 * so the API itself checks the control scope, the topic (as POST /publish does) and who created
 * the socket. The authoriser's output is put on the event the way API Gateway does (payload 2.0
 * `requestContext.authorizer.jwt.claims` / `.iam.userArn`).
 */
describe('control API authorisation against DynamoDB Local + SQS', () => {
  let h: Harness;
  let handler: ReturnType<typeof createHandler>;
  let secrets: LocalSecretStore;
  const creds = { asapa_email: 'ops@acme.example', asapa_pass: 'alice-secret' };
  const base = { interWorkingInterface: 'ws://127.0.0.1:9/feed', platformID: 'acme' };
  const alice = { jwt: { claims: { sub: 'alice', scope: 'openid upstream:admin', publish: '[platform:* vehicle:*]' } } };
  const bob = { jwt: { claims: { sub: 'bob', scope: 'upstream:admin', publish: ['*'] } } };
  const subscriber = { jwt: { claims: { sub: 'mallory', topics: ['*'], publish: ['*'] } } };
  const iamOps = { iam: { userArn: 'arn:aws:iam::123456789012:role/ops' } };
  const iamOther = { iam: { userArn: 'arn:aws:iam::123456789012:role/other' } };

  const call = async (authorizer: unknown, routeKey: string, headers: Record<string, string> = {}, query?: Record<string, string>) => {
    const ev = httpEvent(routeKey, headers, query);
    const event = authorizer ? { ...ev, requestContext: { ...ev.requestContext, authorizer } } : ev;
    const r = await invokeLambda<Res>(handler as never, event, { functionName: 'control' });
    return { status: r.statusCode, body: JSON.parse(r.body) };
  };
  const row = async (socketId: string) => (await h.clients.doc.send(new GetCommand({ TableName: h.tables.upstreams, Key: { socketId }, ConsistentRead: true }))).Item;
  const count = async () => (await h.clients.doc.send(new ScanCommand({ TableName: h.tables.upstreams, Select: 'COUNT' }))).Count;
  // Deleted as read: merely received, commands would come back after the 60 s visibility timeout.
  const drain = async () => {
    for (;;) {
      const r = await h.clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: h.queueUrls.commands, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
      if (!r.Messages?.length) return;
      for (const m of r.Messages) await h.clients.sqs.send(new DeleteMessageCommand({ QueueUrl: h.queueUrls.commands, ReceiptHandle: m.ReceiptHandle }));
    }
  };

  before(async () => {
    h = await startHarness();
    handler = createHandler(h.deps('control'));
    secrets = new LocalSecretStore({ dir: h.config.upstream.localSecretsDir!, keyHex: h.config.upstream.localSecretsKey! });
  });
  after(async () => h.stop());
  afterEach(drain);

  it('a token without the upstream:admin scope is refused on every route (403 insufficient_scope), nothing written', async () => {
    const n = await count();
    const headers = { ...base, internalID: 'veh-noscope', topic: 'vehicle:4', ...creds };
    for (const [route, q] of [['POST /websocket'], ['GET /websocket'], ['DELETE /websocket'], ['GET /websockets', {}]] as [string, Record<string, string>?][]) {
      const r = await call(subscriber, route, headers, q);
      expect([r.status, r.body.code], route).to.deep.equal([403, 'insufficient_scope']);
    }
    expect(await count()).to.equal(n);
  });

  it('the topic must pass the publish authorisation (header or default topic), nothing written', async () => {
    const n = await count();
    const narrow = { jwt: { claims: { sub: 'carol', scope: 'upstream:admin', publish: ['vehicle:1'] } } };
    const header = await call(narrow, 'POST /websocket', { ...base, internalID: 'veh-topic', topic: 'vehicle:4', ...creds });
    expect([header.status, header.body.code]).to.deep.equal([403, 'forbidden']);
    expect(header.body.message).to.include('vehicle:4');
    const dflt = await call(narrow, 'POST /websocket', { ...base, internalID: 'veh-topic', ...creds });
    expect([dflt.status, dflt.body.code]).to.deep.equal([403, 'forbidden']);
    expect(dflt.body.message).to.include('platform:acme:veh-topic');
    expect(await count()).to.equal(n);
    const ok = await call(narrow, 'POST /websocket', { ...base, internalID: 'veh-topic', topic: 'vehicle:1', ...creds });
    expect(ok.status).to.equal(202);
  });

  it('records the creating principal; another principal cannot re-POST (redirect) or DELETE it (403 not_owner)', async () => {
    const headers = { ...base, internalID: 'veh-owned' };
    const socketId = socketIdOf(headers);
    const p = await call(alice, 'POST /websocket', { ...headers, ...creds });
    expect(p.status).to.equal(202);
    const before = (await row(socketId))!;
    expect(before.createdBy).to.equal('jwt:alice');
    expect((await call(alice, 'GET /websocket', headers)).body.createdBy).to.equal('jwt:alice');

    // A takeover attempt: the same three headers, with a new topic and new credentials.
    const hijack = await call(bob, 'POST /websocket', { ...headers, topic: 'bob:inbox', asapa_email: 'bob@evil.example', asapa_pass: 'bob-pass' });
    expect([hijack.status, hijack.body.code]).to.deep.equal([403, 'not_owner']);
    const after = (await row(socketId))!;
    expect(after).to.deep.equal(before);
    expect(await secrets.get(after.secretRef)).to.deep.equal({ email: creds.asapa_email, pass: creds.asapa_pass });

    const del = await call(bob, 'DELETE /websocket', {}, { socketId });
    expect([del.status, del.body.code]).to.deep.equal([403, 'not_owner']);
    expect((await row(socketId))!.desired).to.equal('open');
    // Unknown sockets stay 404 for anyone.
    expect((await call(bob, 'DELETE /websocket', { ...base, internalID: 'never-posted' })).status).to.equal(404);

    // The creator can update and close it.
    const again = await call(alice, 'POST /websocket', { ...headers, topic: 'vehicle:9', ...creds });
    expect([again.status, again.body.topic]).to.deep.equal([202, 'vehicle:9']);
    const mine = await call(alice, 'DELETE /websocket', headers);
    expect([mine.status, mine.body.desired]).to.deep.equal([202, 'closed']);
  });

  it('IAM callers are identified by their ARN; without an authoriser (local stack) the caller is trusted', async () => {
    const headers = { ...base, internalID: 'veh-iam' };
    const socketId = socketIdOf(headers);
    expect((await call(iamOps, 'POST /websocket', { ...headers, ...creds })).status).to.equal(202);
    expect((await row(socketId))!.createdBy).to.equal('iam:arn:aws:iam::123456789012:role/ops');
    const other = await call(iamOther, 'POST /websocket', { ...headers, ...creds });
    expect([other.status, other.body.code]).to.deep.equal([403, 'not_owner']);
    // A JWT whose sub is the same text is a different principal.
    const lookalike = { jwt: { claims: { sub: iamOps.iam.userArn, scope: 'upstream:admin', publish: '*' } } };
    expect((await call(lookalike, 'DELETE /websocket', headers)).body.code).to.equal('not_owner');
    const local = await call(undefined, 'DELETE /websocket', headers);
    expect(local.status).to.equal(202);
  });

  it('an assumed role keeps its sockets across session names (new STS session per run)', async () => {
    const headers = { ...base, internalID: 'veh-role' };
    const socketId = socketIdOf(headers);
    const session = (name: string, role = 'deployer') => ({ iam: { userArn: `arn:aws:sts::123456789012:assumed-role/${role}/${name}` } });
    expect((await call(session('botocore-session-1700000000'), 'POST /websocket', { ...headers, ...creds })).status).to.equal(202);
    expect((await row(socketId))!.createdBy).to.equal('iam:arn:aws:iam::123456789012:role/deployer');
    // The next run: same role, new session name.
    const again = await call(session('botocore-session-1700003600'), 'POST /websocket', { ...headers, ...creds });
    expect(again.status).to.equal(202);
    const other = await call(session('botocore-session-1700003600', 'intruder'), 'DELETE /websocket', headers);
    expect([other.status, other.body.code]).to.deep.equal([403, 'not_owner']);
    const del = await call(session('ci-run-7'), 'DELETE /websocket', headers);
    expect([del.status, del.body.desired]).to.deep.equal([202, 'closed']);
  });

  it('two principals racing to create the same socket: one wins, and the loser never touches its credentials', async () => {
    const headers = { ...base, internalID: 'veh-race' };
    const socketId = socketIdOf(headers);
    const [a, b] = await Promise.all([
      call(alice, 'POST /websocket', { ...headers, ...creds }),
      call(bob, 'POST /websocket', { ...headers, asapa_email: 'bob@evil.example', asapa_pass: 'bob-pass' }),
    ]);
    const statuses = [a.status, b.status].sort();
    expect(statuses).to.deep.equal([202, 403]);
    const r = (await row(socketId))!;
    const winner = a.status === 202 ? 'alice' : 'bob';
    expect(r.createdBy).to.equal(`jwt:${winner}`);
    expect((await secrets.get(r.secretRef)).email).to.equal(winner === 'alice' ? creds.asapa_email : 'bob@evil.example');
  });
});
