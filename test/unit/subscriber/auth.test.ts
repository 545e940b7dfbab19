import { expect } from 'chai';
import { SignJWT, generateKeyPair, exportSPKI } from 'jose';
import { createAuthenticator, patternsClaim } from '../../../lib/subscriber/auth';
import { AuthError } from '../../../lib/subscriber/errors';
import { findToken } from '../../../lib/subscriber/token';
import { authorize } from '../../../lib/subscriber/publish';
import type { AppConfig } from '../../../lib/config';

const CLAIMS = { topics: 'topics', publish: 'publish', sendToUser: 'sendToUser' };
const cfg = (auth: Omit<AppConfig['auth'], 'claims'>) => ({ auth: { ...auth, claims: CLAIMS } }) as AppConfig;
const jwtSettings = { topicsClaim: 'topics', publishClaim: 'publish', sendToUserClaim: 'sendToUser' };
const SECRET = 'unit-secret-that-is-at-least-32-bytes-long';

async function status(p: Promise<unknown>): Promise<number> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(AuthError);
    return (err as AuthError).status;
  }
  return 200;
}

describe('subscriber token placement', () => {
  const jwt = 'aaa.bbb.ccc';
  it('takes the JWT from "bearer, <jwt>" and echoes bearer', () => {
    expect(findToken({ headers: { 'Sec-WebSocket-Protocol': `bearer, ${jwt}` } })).to.deep.equal({ token: jwt, source: 'protocol', protocol: 'bearer' });
  });
  it('echoes another offered protocol, never a token, whatever the order or number of tokens', () => {
    expect(findToken({ headers: { 'sec-websocket-protocol': `rtg.v1, ${jwt}` } }).protocol).to.equal('rtg.v1');
    expect(findToken({ headers: { 'sec-websocket-protocol': `${jwt}, bearer` } }).protocol).to.equal('bearer');
    expect(findToken({ headers: { 'sec-websocket-protocol': `${jwt}, x.y.z, rtg.v1` } }).protocol).to.equal('rtg.v1');
  });
  it('refuses an offer made only of tokens, saying to offer [\'bearer\', token]', () => {
    for (const offer of [jwt, `${jwt}, x.y.z`]) {
      expect(() => findToken({ headers: { 'sec-websocket-protocol': offer } })).to.throw(/offer \['bearer', token\]/);
    }
  });
  it('falls back to Authorization, then ?token=', () => {
    expect(findToken({ headers: { authorization: `Bearer ${jwt}` }, query: { token: 'x.y.z' } })).to.include({ token: jwt, source: 'authorization' });
    expect(findToken({ query: { token: jwt } })).to.include({ token: jwt, source: 'query' });
    expect(findToken({})).to.deep.equal({ protocol: undefined });
  });
});

describe('subscriber authenticator', () => {
  it('none mode: ?userId=, the seed-004 protocol id, or an anonymous id; every topic allowed', async () => {
    const a = createAuthenticator(cfg({ mode: 'none' }));
    expect(await a.connect({ query: { userId: 'u1' } }, 'c1')).to.include({ userId: 'u1' });
    expect(await a.connect({ headers: { 'Sec-WebSocket-Protocol': 'client-42' } }, 'c1')).to.include({ userId: 'client-42', protocol: 'client-42' });
    const anon = await a.connect({}, 'c9');
    expect(anon.userId).to.equal('anon:c9');
    expect(anon.allowedTopics).to.deep.equal(['*']);
  });

  it('refuses a token-only subprotocol offer with 401 in both modes, naming the fix', async () => {
    const t = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('u').setExpirationTime('5m').sign(new TextEncoder().encode(SECRET));
    for (const a of [createAuthenticator(cfg({ mode: 'none' })), createAuthenticator(cfg({ mode: 'jwt', jwt: { ...jwtSettings, hs256Secret: SECRET } }))]) {
      const err = await a.connect({ headers: { 'Sec-WebSocket-Protocol': t } }, 'c1').then(() => undefined, (e: AuthError) => e);
      expect(err?.status).to.equal(401);
      expect(err?.message).to.match(/offer \['bearer', token\]/);
      expect((await a.connect({ headers: { 'Sec-WebSocket-Protocol': `bearer, ${t}` } }, 'c1')).protocol).to.equal('bearer');
    }
  });

  it('refuses user ids with a lone UTF-16 surrogate (?userId= and the "sub" claim)', async () => {
    const none = createAuthenticator(cfg({ mode: 'none' }));
    expect(await status(none.connect({ query: { userId: 'bob\ud800' } }, 'c1'))).to.equal(401);
    expect(await status(none.connect({ query: { userId: 'bob\u{1F600}' } }, 'c1'))).to.equal(200);
    const jwtAuth = createAuthenticator(cfg({ mode: 'jwt', jwt: { ...jwtSettings, hs256Secret: SECRET } }));
    const t = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('\udc00bob').setExpirationTime('5m').sign(new TextEncoder().encode(SECRET));
    const err = await jwtAuth.verify(t).then(() => undefined, (e: AuthError) => e);
    expect(err?.status).to.equal(401);
    expect(err?.message).to.match(/"sub" claim must not contain a lone UTF-16 surrogate/);
  });

  it('HS256: valid, expired, forged, missing sub', async () => {
    const a = createAuthenticator(cfg({ mode: 'jwt', jwt: { ...jwtSettings, hs256Secret: SECRET } }));
    const sign = (claims: object, secret = SECRET, exp: string | number = '1m', sub?: string) => {
      const j = new SignJWT({ ...claims }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(exp);
      if (sub) j.setSubject(sub);
      return j.sign(new TextEncoder().encode(secret));
    };
    const p = await a.verify(await sign({ topics: ['vehicle:*'], publish: 'vehicle:1' }, SECRET, '1m', 'u'));
    expect(p).to.deep.include({ userId: 'u', allowedTopics: ['vehicle:*'], publishTopics: ['vehicle:1'] });
    expect(await status(a.verify(await sign({}, SECRET, Math.floor(Date.now() / 1000) - 10, 'u')))).to.equal(401);
    expect(await status(a.verify(await sign({}, SECRET + 'x', '1m', 'u')))).to.equal(401);
    expect(await status(a.verify(await sign({}, SECRET, '1m')))).to.equal(401);
    expect(await status(a.connect({}, 'c'))).to.equal(401);
  });

  it('refuses a token without "exp" (it would never expire)', async () => {
    const a = createAuthenticator(cfg({ mode: 'jwt', jwt: { ...jwtSettings, hs256Secret: SECRET } }));
    const noExp = await new SignJWT({ topics: ['*'] }).setProtectedHeader({ alg: 'HS256' }).setSubject('u').sign(new TextEncoder().encode(SECRET));
    const err = await a.verify(noExp).then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(AuthError);
    expect(err).to.include({ code: 'unauthorized', status: 401 });
    expect((err as Error).message).to.equal('the token has no "exp" claim');
  });

  it('RS256 with a PEM key; refuses an HS256 token signed with the PEM text (algorithm confusion)', async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256');
    const pem = await exportSPKI(publicKey);
    const a = createAuthenticator(cfg({ mode: 'jwt', jwt: { ...jwtSettings, rs256PublicKey: pem } }));
    const good = await new SignJWT({ topics: ['*'] }).setProtectedHeader({ alg: 'RS256' }).setSubject('r').setExpirationTime('1m').sign(privateKey);
    expect((await a.verify(good)).userId).to.equal('r');
    const confused = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('r').setExpirationTime('1m').sign(new TextEncoder().encode(pem));
    expect(await status(a.verify(confused))).to.equal(401);
  });

  it('reads pattern claims as arrays or the HTTP API authoriser\'s "[a b]" form; any other string is one pattern', () => {
    expect(patternsClaim(['a', 'b'])).to.deep.equal(['a', 'b']);
    expect(patternsClaim('[vehicle:* user:bob]')).to.deep.equal(['vehicle:*', 'user:bob']);
    expect(patternsClaim('["x","y"]')).to.deep.equal(['x', 'y']);
    expect(patternsClaim('a, b c')).to.deep.equal(['a, b c']);
    expect(patternsClaim('vehicle:1,2')).to.deep.equal(['vehicle:1,2']);
    expect(patternsClaim('vehicle:*')).to.deep.equal(['vehicle:*']);
    expect(patternsClaim('')).to.deep.equal([]);
    expect(patternsClaim(undefined)).to.deep.equal([]);
  });

  it('a string publish claim grants exactly its one pattern, not the parts of a list', () => {
    const claims = { publish: 'vehicle:1,admin:*' };
    expect(() => authorize({ kind: 'topic', topic: 'vehicle:1,admin:*', data: 1 }, claims, 'publish')).not.to.throw();
    expect(() => authorize({ kind: 'topic', topic: 'admin:x', data: 1 }, claims, 'publish')).to.throw(/does not allow topic "admin:x"/);
    expect(() => authorize({ kind: 'topic', topic: 'vehicle:1', data: 1 }, claims, 'publish')).to.throw(/does not allow/);
  });
});
