import { expect } from 'chai';
import { DeleteMessageCommand, ReceiveMessageCommand, type Message } from '@aws-sdk/client-sqs';
import { GetCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { createHandler } from '../../../functions/control';
import { invokeLambda } from '../../../local/lambda/invoke';
import { LocalSecretStore } from '../../../lib/upstream/secrets-local';
import { socketIdOf } from '../../../lib/upstream/socket-id';
import { httpEvent, startHarness, type Harness } from './harness';

type Res = { statusCode: number; headers?: Record<string, string>; body: string };

describe('control API (functions/control.ts) against DynamoDB Local + SQS', () => {
  let h: Harness;
  let handler: ReturnType<typeof createHandler>;
  const PASS = 'p4ss-w0rd-never-shown';
  const base = { internalID: 'veh-1', interWorkingInterface: 'ws://127.0.0.1:9/feed', platformID: 'acme' };
  const creds = { asapa_email: 'ops@acme.example', asapa_pass: PASS };

  const call = async (routeKey: string, headers: Record<string, string> = {}, query?: Record<string, string>) => {
    const r = await invokeLambda<Res>(handler as never, httpEvent(routeKey, headers, query), { functionName: 'control' });
    return { status: r.statusCode, body: JSON.parse(r.body), raw: r.body };
  };
  /** Every command waiting, deleted as read: merely received, they would come back after the queue's 60 s visibility timeout, into a later test's drain. */
  const drain = async (): Promise<Message[]> => {
    const out: Message[] = [];
    for (;;) {
      const r = await h.clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: h.queueUrls.commands, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
      if (!r.Messages?.length) return out;
      out.push(...r.Messages);
      for (const m of r.Messages) await h.clients.sqs.send(new DeleteMessageCommand({ QueueUrl: h.queueUrls.commands, ReceiptHandle: m.ReceiptHandle }));
    }
  };

  before(async () => {
    h = await startHarness();
    handler = createHandler(h.deps('control'));
  });
  after(async () => h.stop());
  beforeEach(async () => {
    await drain();
  });

  it('POST stores credentials in the secret store, desired=open in the table, sends an open command; 202', async () => {
    const r = await call('POST /websocket', { ...base, ...creds });
    const socketId = socketIdOf(base);
    expect(r.status).to.equal(202);
    expect(r.body).to.deep.equal({ socketId, status: 'pending', topic: 'platform:acme:veh-1' });

    const row = (await h.clients.doc.send(new GetCommand({ TableName: h.tables.upstreams, Key: { socketId } }))).Item!;
    expect(row).to.include({ desired: 'open', status: 'pending', countErr: 0, isActive: false, leaseExpiresAt: 0, platformID: 'acme', internalID: 'veh-1' });
    expect(row.secretRef).to.equal(`${h.config.upstream.secretPrefix}${socketId}`);
    const secrets = new LocalSecretStore({ dir: h.config.upstream.localSecretsDir!, keyHex: h.config.upstream.localSecretsKey! });
    expect(await secrets.get(row.secretRef)).to.deep.equal({ email: creds.asapa_email, pass: PASS });

    const msgs = await drain();
    expect(msgs).to.have.length(1);
    expect(JSON.parse(msgs[0].Body!)).to.include({ v: 1, type: 'open', socketId });

    // Credentials appear nowhere but the secret store.
    for (const text of [JSON.stringify(row), msgs[0].Body!, r.raw, h.logLines.join('\n')]) {
      expect(text).to.not.include(PASS);
      expect(text).to.not.include(creds.asapa_email);
    }
  });

  it('is idempotent: the same parameters twice are one socket (header names in any case)', async () => {
    const a = await call('POST /websocket', { ...base, ...creds });
    const b = await call('POST /websocket', { INTERNALID: base.internalID, InterWorkingInterface: base.interWorkingInterface, platformid: base.platformID, ASAPA_EMAIL: creds.asapa_email, Asapa_Pass: creds.asapa_pass });
    expect(b.status).to.equal(202);
    expect(b.body.socketId).to.equal(a.body.socketId);
    const rows = (await h.clients.doc.send(new ScanCommand({ TableName: h.tables.upstreams }))).Items!.filter((i) => i.socketId === a.body.socketId);
    expect(rows).to.have.length(1);
  });

  it('uses the topic header when given', async () => {
    const r = await call('POST /websocket', { ...base, internalID: 'veh-topic', topic: 'vehicle:99', ...creds });
    expect(r.body.topic).to.equal('vehicle:99');
    const g = await call('GET /websocket', { ...base, internalID: 'veh-topic' });
    expect(g.body.topic).to.equal('vehicle:99');
  });

  it('GET answers the state (by headers or ?socketId=); 404 when unknown', async () => {
    await call('POST /websocket', { ...base, internalID: 'veh-get', ...creds });
    const g = await call('GET /websocket', { ...base, internalID: 'veh-get' });
    expect(g.status).to.equal(200);
    expect(g.body).to.include({ socketId: socketIdOf({ ...base, internalID: 'veh-get' }), isActive: false, status: 'pending', countErr: 0, desired: 'open', owner: null, lastHealthyAt: null });
    expect(g.body.counters).to.deep.equal({ messagesIn: 0, messagesPersisted: 0, messagesDropped: 0, errors: 0, reconnects: 0 });
    expect(g.body).to.not.have.property('secretRef');
    const byId = await call('GET /websocket', {}, { socketId: g.body.socketId });
    expect(byId.body.socketId).to.equal(g.body.socketId);
    const missing = await call('GET /websocket', { ...base, internalID: 'never-posted' });
    expect([missing.status, missing.body.code]).to.deep.equal([404, 'not_found']);
    const bad = await call('GET /websocket', {}, { socketId: 'zzz' });
    expect([bad.status, bad.body.code]).to.deep.equal([400, 'invalid_socket_id']);
  });

  it('DELETE sets desired=closed, sends close, answers 202; GET then reports inactive', async () => {
    const p = await call('POST /websocket', { ...base, internalID: 'veh-del', ...creds });
    await drain();
    const d = await call('DELETE /websocket', { ...base, internalID: 'veh-del' });
    expect(d.status).to.equal(202);
    expect(d.body).to.include({ socketId: p.body.socketId, desired: 'closed', status: 'closed' });
    const msgs = await drain();
    expect(msgs.map((m) => JSON.parse(m.Body!))).to.deep.include.members([{ ...JSON.parse(msgs[0].Body!), type: 'close', socketId: p.body.socketId }]);
    const g = await call('GET /websocket', { ...base, internalID: 'veh-del' });
    expect(g.body).to.include({ isActive: false, desired: 'closed', status: 'closed' });
    const unknown = await call('DELETE /websocket', { ...base, internalID: 'never-posted' });
    expect(unknown.status).to.equal(404);
  });

  it('a new POST revives a failed socket (status pending, countErr 0, back in the reconcile index)', async () => {
    const p = await call('POST /websocket', { ...base, internalID: 'veh-failed', ...creds });
    await h.clients.doc.send(
      new UpdateCommand({
        TableName: h.tables.upstreams,
        Key: { socketId: p.body.socketId },
        UpdateExpression: 'SET #s = :f, countErr = :three REMOVE leaseExpiresAt',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: { ':f': 'failed', ':three': 3 },
      }),
    );
    const again = await call('POST /websocket', { ...base, internalID: 'veh-failed', ...creds });
    expect(again.body.status).to.equal('pending');
    const row = (await h.clients.doc.send(new GetCommand({ TableName: h.tables.upstreams, Key: { socketId: p.body.socketId } }))).Item!;
    expect(row).to.include({ status: 'pending', countErr: 0, leaseExpiresAt: 0 });
  });

  it('GET /websockets lists every socket page by page', async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 5; i++) ids.add((await call('POST /websocket', { ...base, internalID: `veh-list-${i}`, ...creds })).body.socketId);
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const r = await call('GET /websockets', {}, { limit: '2', ...(cursor ? { cursor } : {}) });
      expect(r.status).to.equal(200);
      expect(r.body.items.length).to.be.at.most(2);
      seen.push(...r.body.items.map((i: { socketId: string }) => i.socketId));
      cursor = r.body.cursor ?? undefined;
      pages++;
    } while (cursor && pages < 100);
    expect(pages).to.be.greaterThan(2);
    for (const id of ids) expect(seen).to.include(id);
    expect(new Set(seen).size).to.equal(seen.length);
    expect((await call('GET /websockets', {}, { limit: '0' })).status).to.equal(400);
    expect((await call('GET /websockets', {}, { cursor: 'garbage' })).body.code).to.equal('invalid_cursor');
  });

  describe('bad input', () => {
    const cases: [string, Record<string, string>, number, string, RegExp?][] = [
      ['a missing internalID', { interWorkingInterface: base.interWorkingInterface, platformID: 'acme', ...creds }, 400, 'missing_header', /internalID/],
      ['a missing platformID', { internalID: 'x', interWorkingInterface: base.interWorkingInterface, ...creds }, 400, 'missing_header', /platformID/],
      ['a missing interWorkingInterface', { internalID: 'x', platformID: 'acme', ...creds }, 400, 'missing_header', /interWorkingInterface/],
      ['a missing asapa_pass', { ...base, internalID: 'x', asapa_email: 'a@b.c' }, 400, 'missing_header', /asapa_pass/],
      ['a missing asapa_email', { ...base, internalID: 'x', asapa_pass: 'p' }, 400, 'missing_header', /asapa_email/],
      ['an ftp URL', { ...base, internalID: 'x', interWorkingInterface: 'ftp://files.example.com/', ...creds }, 400, 'invalid_url'],
      ['a URL that is not a URL', { ...base, internalID: 'x', interWorkingInterface: 'nope', ...creds }, 400, 'invalid_url'],
      ['the metadata service', { ...base, internalID: 'x', interWorkingInterface: 'http://169.254.169.254/latest/meta-data/', ...creds }, 403, 'upstream_forbidden'],
      ['a private range', { ...base, internalID: 'x', interWorkingInterface: 'wss://10.0.0.8/ws', ...creds }, 403, 'upstream_forbidden'],
      ['a 192.168 address', { ...base, internalID: 'x', interWorkingInterface: 'https://192.168.0.1/', ...creds }, 403, 'upstream_forbidden'],
      ['IPv6 link-local', { ...base, internalID: 'x', interWorkingInterface: 'ws://[fe80::1]/', ...creds }, 403, 'upstream_forbidden'],
      // Review finding 8: credentials would travel in cleartext to a host the stack does not trust.
      ['a ws:// URL on a public host', { ...base, internalID: 'x', interWorkingInterface: 'ws://93.184.216.34/feed', ...creds }, 400, 'insecure_scheme', /wss/],
      ['an http:// URL on a public host', { ...base, internalID: 'x', interWorkingInterface: 'http://[2606:4700::1111]/feed', ...creds }, 400, 'insecure_scheme', /https/],
      ['an oversized internalID', { ...base, internalID: 'x'.repeat(300), ...creds }, 400, 'header_too_long', /internalID/],
      ['IPv4-compatible IPv6 loopback', { ...base, internalID: 'x', interWorkingInterface: 'wss://[::127.0.0.1]/', ...creds }, 403, 'upstream_forbidden', /IPv4-compatible/],
      ['IPv4-compatible IPv6 metadata service', { ...base, internalID: 'x', interWorkingInterface: 'wss://[::169.254.169.254]/', ...creds }, 403, 'upstream_forbidden', /link-local\/metadata/],
      ['a socket topic over 256 characters', { ...base, platformID: 'p'.repeat(130), internalID: 'i'.repeat(130), ...creds }, 400, 'header_too_long', /headers platformID and internalID make the socket's topic .* 270 characters long; the limit is 256/],
      ['a C1 control character in platformID', { ...base, platformID: 'acme\u0085', internalID: 'x', ...creds }, 400, 'invalid_header', /header platformID: the socket's topic must not contain control characters/],
      ['a lone surrogate in internalID', { ...base, internalID: 'x\ud800', ...creds }, 400, 'invalid_header', /header internalID: .*lone UTF-16 surrogate/],
      ['an oversized URL', { ...base, internalID: 'x', interWorkingInterface: `wss://a.example/${'p'.repeat(3000)}`, ...creds }, 400, 'header_too_long'],
    ];
    for (const [what, headers, status, code, msg] of cases) {
      it(`POST with ${what} → ${status} ${code}, and nothing is written`, async () => {
        const before = (await h.clients.doc.send(new ScanCommand({ TableName: h.tables.upstreams, Select: 'COUNT' }))).Count;
        const r = await call('POST /websocket', headers);
        expect(r.status).to.equal(status);
        expect(r.body.code).to.equal(code);
        if (msg) expect(r.body.message).to.match(msg);
        expect(r.raw).to.not.include(creds.asapa_pass);
        const after = (await h.clients.doc.send(new ScanCommand({ TableName: h.tables.upstreams, Select: 'COUNT' }))).Count;
        expect(after).to.equal(before);
        expect(await drain()).to.have.length(0);
      });
    }

    it('GET and DELETE name a missing header too', async () => {
      const g = await call('GET /websocket', { internalID: 'x' });
      expect([g.status, g.body.code]).to.deep.equal([400, 'missing_header']);
      expect(g.body.message).to.include('platformID');
      const d = await call('DELETE /websocket', { platformID: 'x' });
      expect([d.status, d.body.code]).to.deep.equal([400, 'missing_header']);
    });

    it('loopback is refused where the stack does not allow-list it', async () => {
      const strict = await startHarness({ allowHosts: '' });
      try {
        const hd = createHandler(strict.deps('control'));
        const r = await invokeLambda<Res>(hd as never, httpEvent('POST /websocket', { ...base, internalID: 'x', ...creds }), { functionName: 'control' });
        expect(r.statusCode).to.equal(403);
        expect(JSON.parse(r.body).code).to.equal('upstream_forbidden');
      } finally {
        await strict.stop();
      }
    });
  });
});
