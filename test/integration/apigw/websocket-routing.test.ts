import { expect } from 'chai';
import { PostToConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import type { WebsocketEvent } from '../../../local/apigw/events';
import { EmulatorOptionError } from '../../../local/apigw/errors';
import { WebSocketEmulator } from '../../../local/apigw/websocket-emulator';
import { Emulators, Recorder, rawRequest } from './helpers';
import { waitFor } from '../../support/wait';

/** Event shapes, $connect decisions, subprotocols and route selection, with real `ws` clients. */
describe('apigw emulator: events, $connect and route selection', () => {
  const ems = new Emulators();
  afterEach(() => ems.closeAll());

  describe('event shapes', () => {
    it('CONNECT carries headers, multi-value headers, query parameters and the request context', async () => {
      const rec = new Recorder();
      const em = await ems.start({
        stage: 'dev',
        apiId: 'abcdefghij',
        routes: { $connect: async (e) => (rec.push(e), { statusCode: 200 }) },
      });
      await ems.client(`${em.websocketUrl}?userId=u1&tag=a&tag=b`, undefined, { headers: { 'User-Agent': 'ua/1', 'X-Custom': 'v' } });
      const e = rec.byRoute('$connect')[0];
      const ctx = e.requestContext;
      expect(ctx).to.include({
        routeKey: '$connect',
        eventType: 'CONNECT',
        messageDirection: 'IN',
        stage: 'dev',
        apiId: 'abcdefghij',
        domainName: `127.0.0.1:${em.port}`,
        connectionId: em.connectionIds()[0],
      });
      expect(ctx).to.not.have.property('messageId');
      // Every field API Gateway sends, null where there is no value.
      expect(ctx.identity).to.deep.equal({
        accessKey: null,
        accountId: null,
        caller: null,
        cognitoAuthenticationProvider: null,
        cognitoAuthenticationType: null,
        cognitoIdentityId: null,
        cognitoIdentityPoolId: null,
        principalOrgId: null,
        sourceIp: '127.0.0.1',
        user: null,
        userAgent: 'ua/1',
        userArn: null,
      });
      expect(e.headers).to.include({ 'X-Forwarded-Proto': 'http', 'X-Forwarded-Port': String(em.port) });
      expect(ctx.requestId).to.match(/^[A-Za-z0-9+/]{15}=$/);
      expect(ctx.extendedRequestId).to.be.a('string').and.not.equal(ctx.requestId);
      expect(ctx.requestTime).to.match(/^\d\d\/[A-Z][a-z]{2}\/\d{4}:\d\d:\d\d:\d\d \+0000$/);
      expect(ctx.requestTimeEpoch).to.be.a('number');
      expect(ctx.connectedAt).to.be.at.most(ctx.requestTimeEpoch);
      expect(e.isBase64Encoded).to.equal(false);
      expect(e.headers).to.include({ 'User-Agent': 'ua/1', 'X-Custom': 'v', 'Sec-WebSocket-Version': '13', 'X-Forwarded-For': '127.0.0.1' });
      expect(e.headers).to.have.property('Host', `127.0.0.1:${em.port}`);
      expect(e.headers).to.not.have.any.keys('Connection', 'Upgrade');
      expect(e.multiValueHeaders!['X-Custom']).to.deep.equal(['v']);
      expect(e.queryStringParameters).to.deep.equal({ userId: 'u1', tag: 'b' });
      expect(e.multiValueQueryStringParameters).to.deep.equal({ userId: ['u1'], tag: ['a', 'b'] });
    });

    it('CONNECT without a query has no query fields; MESSAGE and DISCONNECT have their own fields', async () => {
      const rec = new Recorder();
      const em = await ems.start({
        routes: { $connect: async (e) => rec.push(e), $default: async (e) => rec.push(e), $disconnect: async (e) => rec.push(e) },
      });
      const c = await ems.client(em.websocketUrl);
      await c.send('hello there');
      await rec.waitFor((ev) => ev.length === 2);
      c.ws.close(4000, 'bye now');
      await rec.waitFor((ev) => ev.length === 3);
      const [conn, msg, disc] = rec.events;
      expect(conn).to.not.have.any.keys('queryStringParameters', 'multiValueQueryStringParameters');
      expect(msg).to.not.have.any.keys('headers', 'queryStringParameters');
      expect(msg.body).to.equal('hello there');
      expect(msg.requestContext).to.include({ routeKey: '$default', eventType: 'MESSAGE', connectionId: conn.requestContext.connectionId });
      expect(msg.requestContext.messageId).to.match(/^[A-Za-z0-9+/]{15}=$/);
      expect(msg.requestContext.connectedAt).to.equal(conn.requestContext.connectedAt);
      // ws sends no User-Agent: the field is there, null.
      expect(msg.requestContext.identity).to.include({ sourceIp: '127.0.0.1', userAgent: null, userArn: null });
      expect(disc.requestContext).to.include({
        routeKey: '$disconnect',
        eventType: 'DISCONNECT',
        disconnectStatusCode: 4000,
        disconnectReason: 'bye now',
      });
      expect(disc.headers).to.include({ 'x-api-key': '', 'x-restapi': '' });
      const ids = rec.events.map((e) => e.requestContext.requestId);
      expect(new Set(ids).size).to.equal(3);
    });

    it('a client close without a status reports 1005; an abrupt reset reports 1006', async () => {
      const rec = new Recorder();
      const em = await ems.start({ routes: { $disconnect: async (e) => rec.push(e) } });
      const a = await ems.client(em.websocketUrl);
      a.ws.close();
      await rec.waitFor((ev) => ev.length === 1);
      expect(rec.events[0].requestContext).to.include({ disconnectStatusCode: 1005, disconnectReason: 'Client-side close frame status not set' });
      const b = await ems.client(em.websocketUrl);
      b.ws.terminate();
      await rec.waitFor((ev) => ev.length === 2);
      expect(rec.events[1].requestContext.disconnectStatusCode).to.equal(1006);
    });

    it('handlers cannot mutate the emulator state through the event (it is a copy)', async () => {
      const rec = new Recorder();
      const em = await ems.start({
        routes: {
          $connect: async (e: WebsocketEvent) => {
            e.requestContext.connectionId = 'hijacked';
            return { statusCode: 200 };
          },
          $default: async (e) => rec.push(e),
        },
      });
      const c = await ems.client(em.websocketUrl);
      await c.send('x');
      await rec.waitFor((ev) => ev.length === 1);
      expect(rec.events[0].requestContext.connectionId).to.equal(em.connectionIds()[0]).and.not.equal('hijacked');
    });
  });

  describe('$connect', () => {
    it('a non-2xx status rejects the upgrade with that status; no connection, no $disconnect', async () => {
      const rec = new Recorder();
      const em = await ems.start({
        routes: {
          $connect: async (e) => ({ statusCode: Number(e.queryStringParameters?.status ?? 200) }),
          $disconnect: async (e) => rec.push(e),
        },
      });
      for (const status of [401, 403, 429, 500]) {
        const r = await ems.refused(`${em.websocketUrl}?status=${status}`);
        expect(r.status, String(status)).to.equal(status);
      }
      expect(em.connectionIds()).to.deep.equal([]);
      const accepted = await ems.client(`${em.websocketUrl}?status=204`); // any 2xx accepts
      expect(em.connectionIds()).to.have.length(1);
      const [acceptedId] = em.connectionIds();
      // The accepted connection's $disconnect comes after any a refused one could have had:
      // once it is there, it must be the only one.
      accepted.ws.close();
      await rec.waitFor((ev) => ev.length >= 1);
      expect(rec.events.map((e) => [e.requestContext.routeKey, e.requestContext.connectionId])).to.deep.equal([['$disconnect', acceptedId]]);
    });

    it('a throwing or timed-out $connect rejects with 500; no return value or no statusCode accepts', async () => {
      let mode = 'throw';
      const em = await ems.start({
        routes: {
          $connect: {
            timeoutMs: 100,
            handler: async () => {
              if (mode === 'throw') throw new Error('boom');
              if (mode === 'hang') return new Promise(() => {});
              if (mode === 'string') return { statusCode: 'teapot' };
              if (mode === 'undefined') return undefined;
              return {};
            },
          },
        },
      });
      expect((await ems.refused(em.websocketUrl)).status).to.equal(500);
      mode = 'hang';
      expect((await ems.refused(em.websocketUrl)).status).to.equal(500);
      mode = 'string';
      expect((await ems.refused(em.websocketUrl)).status).to.equal(502);
      mode = 'undefined';
      await ems.client(em.websocketUrl);
      mode = 'empty';
      await ems.client(em.websocketUrl);
      expect(em.connectionIds()).to.have.length(2);
    });

    it('callback-style handlers work (Lambda runtime semantics from invokeLambda)', async () => {
      const em = await ems.start({
        routes: {
          $connect: (_e: unknown, _ctx: unknown, cb?: (err?: unknown, r?: unknown) => void) => cb!(null, { statusCode: 403 }),
        },
      });
      expect((await ems.refused(em.websocketUrl)).status).to.equal(403);
    });

    it('upgrades to another path, or malformed upgrades, are refused without running $connect', async () => {
      let calls = 0;
      const em = await ems.start({ routes: { $connect: async () => (calls++, { statusCode: 200 }) } });
      expect((await ems.refused(`ws://127.0.0.1:${em.port}/other`)).status).to.equal(404);
      const status = await rawRequest(em.port, `GET /${em.stage} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n`);
      expect(status).to.match(/^HTTP\/1.1 400 /);
      const notGet = await rawRequest(em.port, `POST /${em.stage} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n`);
      expect(notGet).to.match(/^HTTP\/1.1 400 /);
      expect(calls).to.equal(0);
    });
  });

  describe('subprotocols', () => {
    it('echoes Sec-WebSocket-Protocol only when $connect sets it (header name case-insensitive)', async () => {
      const em = await ems.start({
        routes: {
          $connect: async (e) => {
            const offered = e.headers?.['Sec-WebSocket-Protocol'];
            return offered?.includes('chosen') ? { statusCode: 200, headers: { 'sec-websocket-protocol': 'chosen' } } : { statusCode: 200 };
          },
        },
      });
      const a = await ems.client(em.websocketUrl, ['other', 'chosen']);
      expect(a.ws.protocol).to.equal('chosen');
      // Offered, but the handler selected none: no header, which a compliant client (ws, browsers) refuses.
      const b = await ems.refused(em.websocketUrl, ['jwt.token.value']);
      expect(b.error).to.match(/Server sent no subprotocol/);
      const c = await ems.client(em.websocketUrl);
      expect(c.ws.protocol).to.equal('');
    });

    it('sends the handler header even when the client offered none (as API Gateway does)', async () => {
      const em = await ems.start({ routes: { $connect: async () => ({ statusCode: 200, headers: { 'Sec-WebSocket-Protocol': 'x' } }) } });
      const r = await ems.refused(em.websocketUrl);
      expect(r.error).to.match(/Server sent a subprotocol but none was requested/);
    });
  });

  describe('route selection', () => {
    it('routes by $request.body.action, falls back to $default for unknown, missing or non-JSON', async () => {
      const rec = new Recorder();
      const em = await ems.start({
        routes: {
          subscribe: async (e) => rec.push(e),
          $default: async (e) => rec.push(e),
          $connect: async () => ({ statusCode: 200 }),
        },
      });
      const c = await ems.client(em.websocketUrl);
      const frames = ['{"action":"subscribe","topic":"t"}', '{"action":"nope"}', '{"other":1}', 'not json{', '[1,2]', '{"action":"$connect"}', '{"action":{"x":1}}'];
      for (const f of frames) await c.send(f);
      await rec.waitFor((ev) => ev.length === frames.length);
      expect(rec.events.map((e) => [e.requestContext.routeKey, e.body])).to.deep.equal([
        ['subscribe', frames[0]],
        ...frames.slice(1).map((f) => ['$default', f]),
      ]);
    });

    it('supports a nested expression, and numeric/boolean values match route keys as strings', async () => {
      const rec = new Recorder();
      const em = await ems.start({
        routeSelectionExpression: '$request.body.meta.type',
        routes: { chat: async (e) => rec.push(e), '42': async (e) => rec.push(e), $default: async (e) => rec.push(e) },
      });
      const c = await ems.client(em.websocketUrl);
      await c.send('{"meta":{"type":"chat"}}');
      await c.send('{"meta":{"type":42}}');
      await c.send('{"action":"chat"}');
      await rec.waitFor((ev) => ev.length === 3);
      expect(rec.events.map((e) => e.requestContext.routeKey)).to.deep.equal(['chat', '42', '$default']);
    });

    it('with no matching route and no $default, the client gets the AWS "Forbidden" error frame and stays connected', async () => {
      const em = await ems.start({ routes: { ping: async () => ({ statusCode: 200, body: 'pong' }) } });
      const c = await ems.client(em.websocketUrl);
      await c.send('{"action":"unknown"}');
      const text = await c.text(0);
      expect(text).to.match(/^\{"message": "Forbidden", "connectionId":"[^"]+", "requestId":"[^"]+"\}$/);
      const frame = JSON.parse(text);
      expect(frame.connectionId).to.equal(em.connectionIds()[0]);
      await c.send('garbage');
      expect(JSON.parse(await c.text(1)).message).to.equal('Forbidden');
      expect(em.connectionIds()).to.have.length(1);
    });

    it('a throwing or timed-out route handler gives "Internal server error"; the connection keeps working', async () => {
      const em = await ems.start({
        routes: {
          boom: async () => {
            throw new Error('handler bug');
          },
          slow: { handler: () => new Promise(() => {}), timeoutMs: 50 },
          echo: { handler: async (e) => ({ statusCode: 200, body: e.body }), returnResponse: true },
        },
      });
      const c = await ems.client(em.websocketUrl);
      await c.send('{"action":"boom"}');
      await c.send('{"action":"slow"}');
      await c.send('{"action":"echo","n":1}');
      const [a, b, d] = [JSON.parse(await c.text(0)), JSON.parse(await c.text(1)), await c.text(2)];
      expect(a).to.include({ message: 'Internal server error', connectionId: em.connectionIds()[0] });
      expect(a.requestId).to.be.a('string');
      expect(b.message).to.equal('Internal server error');
      expect(d).to.equal('{"action":"echo","n":1}');
    });

    it('two-way routes send the response body; one-way routes send nothing back', async () => {
      const em = await ems.start({
        routes: {
          twoWay: { handler: async () => ({ statusCode: 200, body: '{"type":"pong"}' }), returnResponse: true },
          oneWay: async () => ({ statusCode: 200, body: 'not sent' }),
        },
      });
      const c = await ems.client(em.websocketUrl);
      await c.send('{"action":"oneWay"}');
      await c.send('{"action":"twoWay"}');
      expect(await c.text(0)).to.equal('{"type":"pong"}');
      await new Promise((r) => setTimeout(r, 50));
      expect(c.messages).to.have.length(1);
    });

    it('invokes one connection in arrival order, different connections in parallel', async () => {
      const log: string[] = [];
      // a's first handler is held until b's handler has started (by a gate, not a delay, so a
      // slow host cannot end it first). Invoked one after another, b would never start while
      // a:1 is held: a:1 gives up after GIVE_UP_MS and the order below shows it.
      const GIVE_UP_MS = 5000;
      let bStarted!: () => void;
      const bHasStarted = new Promise<void>((r) => (bStarted = r));
      const em = await ems.start({
        routes: {
          $default: async (e) => {
            const { n, hold } = JSON.parse(e.body);
            const id = e.requestContext.connectionId;
            log.push(`start ${id}:${n}`);
            if (id === idb) bStarted();
            if (hold) await Promise.race([bHasStarted, new Promise((r) => setTimeout(r, GIVE_UP_MS).unref())]);
            log.push(`end ${id}:${n}`);
          },
        },
      });
      const a = await ems.client(em.websocketUrl);
      const b = await ems.client(em.websocketUrl);
      const [ida, idb] = em.connectionIds();
      await a.send('{"n":1,"hold":true}');
      await a.send('{"n":2}');
      await b.send('{"n":1}');
      await waitFor(() => log.length === 6, GIVE_UP_MS + 5000, () => `six log lines, got ${log.join(', ')}`);
      const ofA = log.filter((l) => l.includes(ida));
      expect(ofA).to.deep.equal([`start ${ida}:1`, `end ${ida}:1`, `start ${ida}:2`, `end ${ida}:2`]);
      // b's handler started while a's first handler was still running.
      expect(log.indexOf(`start ${idb}:1`)).to.be.lessThan(log.indexOf(`end ${ida}:1`));
    });

    it('a handler can post back to its own connection through domainName + stage (as in AWS)', async () => {
      const { ApiGatewayManagementApiClient } = await import('@aws-sdk/client-apigatewaymanagementapi');
      const em = await ems.start({
        routes: {
          $default: async (e) => {
            const { domainName, stage, connectionId } = e.requestContext;
            const mgmt = new ApiGatewayManagementApiClient({
              endpoint: `http://${domainName}/${stage}`,
              region: 'us-east-1',
              credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
            });
            try {
              await mgmt.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: Buffer.from(`echo:${e.body}`) }));
            } finally {
              mgmt.destroy();
            }
          },
        },
      });
      const c = await ems.client(em.websocketUrl);
      await c.send('hi');
      expect(await c.text(0)).to.equal('echo:hi');
    });
  });

  describe('options', () => {
    it('rejects bad options with EmulatorOptionError naming the option', async () => {
      const bad: Array<[Parameters<typeof WebSocketEmulator.start>[0], string]> = [
        [{ routes: {}, routeSelectionExpression: '$request.header.x' }, 'routeSelectionExpression'],
        [{ routes: {}, routeSelectionExpression: '$request.body.' }, 'routeSelectionExpression'],
        [{ routes: { x: 'nope' as never } }, 'routes.x'],
        [{ routes: {}, idleTimeoutMs: 0 }, 'idleTimeoutMs'],
        [{ routes: {}, stage: 'a/b' }, 'stage'],
      ];
      for (const [opts, option] of bad) {
        const err = await WebSocketEmulator.start(opts).catch((e) => e);
        expect(err, option).to.be.instanceOf(EmulatorOptionError);
        expect(err.option).to.equal(option);
        expect(err.code).to.equal('apigw_option_invalid');
      }
    });
  });
});
