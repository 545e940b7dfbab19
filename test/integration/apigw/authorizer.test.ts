import { expect } from 'chai';
import { Emulators, Recorder } from './helpers';
import { EmulatorOptionError } from '../../../local/apigw/errors';
import type { AnyHandler } from '../../../local/lambda/invoke';

/** A REQUEST authorizer as AWS's samples write it: token from a header or the query string. */
const policy = (effect: 'Allow' | 'Deny', resource: string, context?: Record<string, unknown>) => ({
  principalId: 'user-7',
  policyDocument: { Version: '2012-10-17', Statement: [{ Action: 'execute-api:Invoke', Effect: effect, Resource: resource }] },
  ...(context ? { context } : {}),
});

describe('apigw emulator: Lambda REQUEST authorizer on $connect', () => {
  const ems = new Emulators();
  afterEach(() => ems.closeAll());

  async function start(authorizer: AnyHandler, identitySource = ['route.request.header.Auth', 'route.request.querystring.room']) {
    const rec = new Recorder();
    const calls: Record<string, unknown>[] = [];
    const em = await ems.start({
      stage: 'dev',
      apiId: 'abcdef123x',
      routes: { $connect: async (e) => rec.push(e), $default: async (e) => rec.push(e), $disconnect: async (e) => rec.push(e) },
      authorizer: {
        handler: (event: Record<string, unknown>, ctx: unknown, cb?: (e?: unknown, r?: unknown) => void) => {
          calls.push(event);
          return authorizer(event, ctx, cb);
        },
        identitySource,
      },
    });
    return { em, rec, calls };
  }

  it('Allow: $connect runs and every event of the connection carries principalId and context', async () => {
    const { em, rec, calls } = await start(async (e) =>
      e.headers.Auth === 'good' ? policy('Allow', e.methodArn, { tenant: 'acme', level: 3, admin: false }) : policy('Deny', e.methodArn),
    );
    const c = await ems.client(`${em.websocketUrl}?room=r1`, undefined, { headers: { Auth: 'good' } });
    await c.send('hi');
    await rec.waitFor((ev) => ev.length === 2);
    c.ws.close();
    await rec.waitFor((ev) => ev.length === 3);
    const expected = { tenant: 'acme', level: 3, admin: false, principalId: 'user-7' };
    for (const e of rec.events) expect(e.requestContext.authorizer).to.deep.equal(expected);
    expect(calls).to.have.length(1);
    expect(calls[0]).to.include({ type: 'REQUEST', methodArn: 'arn:aws:execute-api:us-east-1:000000000000:abcdef123x/dev/$connect' });
    expect((calls[0].queryStringParameters as Record<string, string>).room).to.equal('r1');
    // As in AWS's example input: the upgrade's own headers are there too.
    expect(calls[0].headers).to.include({ Auth: 'good', Upgrade: 'websocket', 'X-Forwarded-Proto': 'http' });
    expect(rec.byRoute('$connect')[0].headers).to.not.have.any.keys('Upgrade', 'Connection');
    expect((calls[0].requestContext as { routeKey: string }).routeKey).to.equal('$connect');
  });

  it('a callback-style authorizer with a wildcard resource is honoured', async () => {
    const { em, rec } = await start((_e, _c, cb) => cb!(null, policy('Allow', 'arn:aws:execute-api:*:*:*/dev/*')));
    await ems.client(`${em.websocketUrl}?room=r1`, undefined, { headers: { auth: 'x' } });
    await rec.waitFor((ev) => ev.length === 1);
    expect(rec.events[0].requestContext.authorizer).to.deep.equal({ principalId: 'user-7' });
  });

  it('a missing or empty identity source answers 401 without invoking the authorizer', async () => {
    const { em, rec, calls } = await start(async (e) => policy('Allow', e.methodArn));
    expect(await ems.refused(`${em.websocketUrl}?room=r1`)).to.include({ status: 401 });
    expect(await ems.refused(`${em.websocketUrl}?room=`, undefined)).to.include({ status: 401 });
    expect(calls).to.have.length(0);
    expect(rec.events).to.have.length(0);
  });

  it('Deny, or an Allow for another resource, answers 403 and $connect never runs', async () => {
    let effect: 'Allow' | 'Deny' = 'Deny';
    let resource = '';
    const { em, rec } = await start(async (e) => policy(effect, resource || e.methodArn));
    const opts = { headers: { Auth: 't' } };
    const refused = (url: string) =>
      new Promise<number | undefined>((resolve) => {
        void ems.client(url, undefined, opts).then(
          () => resolve(101),
          (err: { status?: number }) => resolve(err.status),
        );
      });
    expect(await refused(`${em.websocketUrl}?room=a`)).to.equal(403);
    effect = 'Allow';
    resource = 'arn:aws:execute-api:us-east-1:000000000000:otherapi00/dev/$connect';
    expect(await refused(`${em.websocketUrl}?room=a`)).to.equal(403);
    expect(rec.events).to.have.length(0);
  });

  it('throwing "Unauthorized" answers 401; any other error or a non-scalar context value answers 500', async () => {
    let mode = 'unauthorized';
    const { em, rec } = await start(async (e) => {
      if (mode === 'unauthorized') throw new Error('Unauthorized');
      if (mode === 'boom') throw new Error('database down');
      return policy('Allow', e.methodArn, { nested: { no: 1 } });
    });
    const status = async () => {
      try {
        await ems.client(`${em.websocketUrl}?room=a`, undefined, { headers: { Auth: 't' } });
        return 101;
      } catch (err) {
        return (err as { status?: number }).status;
      }
    };
    expect(await status()).to.equal(401);
    mode = 'boom';
    expect(await status()).to.equal(500);
    mode = 'nested';
    expect(await status()).to.equal(500);
    expect(rec.events).to.have.length(0);
  });

  it('refuses an identity source that is not a header or query string, naming it', async () => {
    const err = await ems
      .start({ routes: {}, authorizer: { handler: async () => ({}), identitySource: ['route.request.header.A', 'context.foo'] } })
      .catch((e: unknown) => e);
    expect(err).to.be.instanceOf(EmulatorOptionError);
    expect((err as Error).message).to.include('authorizer.identitySource[1]').and.include('context.foo');
  });
});
