import { expect } from 'chai';
import { InputError } from '../../../lib/errors';
import { assertOwner, authorizeTopic, CONTROL_SCOPE, controlCaller, type ControlAuthorizer } from '../../../lib/upstream/control-auth';

function refusal(fn: () => unknown): InputError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(InputError);
    return err as InputError;
  }
  throw new Error('expected a refusal');
}

describe('control API authorisation (lib/upstream/control-auth.ts)', () => {
  describe('the caller', () => {
    const accepted: [string, ControlAuthorizer, string | undefined][] = [
      ['no authoriser (local stack): trusted, no principal', {}, undefined],
      ['scope as an OAuth space-separated string', { jwt: { claims: { sub: 'alice', scope: 'openid upstream:admin' } } }, 'jwt:alice'],
      ['scp as an array', { jwt: { claims: { sub: 'alice', scp: ['read', CONTROL_SCOPE] } } }, 'jwt:alice'],
      ["scope in API Gateway's flattened \"[a b]\" form", { jwt: { claims: { sub: 'alice', scope: '[upstream:admin other]' } } }, 'jwt:alice'],
      ['IAM authorisation: the caller ARN', { iam: { userArn: 'arn:aws:iam::123456789012:user/ops' } }, 'iam:arn:aws:iam::123456789012:user/ops'],
    ];
    for (const [what, authorizer, principal] of accepted) {
      it(`accepts ${what}`, () => expect(controlCaller(authorizer).principal).to.equal(principal));
    }
    it('treats an undefined authoriser as the local stack', () => expect(controlCaller(undefined)).to.deep.equal({}));

    const refused: [string, Record<string, unknown>, string][] = [
      ['a subscriber token (no scope)', { sub: 'alice', topics: ['*'], publish: ['*'] }, 'insufficient_scope'],
      ['a look-alike scope', { sub: 'alice', scope: 'upstream:admins upstream' }, 'insufficient_scope'],
      ['the scope under another claim name', { sub: 'alice', publish: CONTROL_SCOPE }, 'insufficient_scope'],
      ['no sub', { scope: CONTROL_SCOPE }, 'forbidden'],
      ['a blank sub', { sub: '  ', scope: CONTROL_SCOPE }, 'forbidden'],
    ];
    for (const [what, claims, code] of refused) {
      it(`refuses ${what} with 403 ${code}`, () => {
        const e = refusal(() => controlCaller({ jwt: { claims } }));
        expect([e.status, e.code]).to.deep.equal([403, code]);
      });
    }
  });

  describe('the topic (same rule as POST /publish)', () => {
    const admin = (publish: unknown) => controlCaller({ jwt: { claims: { sub: 'a', scope: CONTROL_SCOPE, publish } } });
    it('allows a topic the publish claim covers', () => authorizeTopic(admin(['platform:*']), 'platform:acme:veh-1', 'publish'));
    it('uses the configured publish claim name', () =>
      authorizeTopic(controlCaller({ jwt: { claims: { sub: 'a', scope: CONTROL_SCOPE, pub: 'vehicle:*' } } }), 'vehicle:4', 'pub'));
    for (const [patterns, topic] of [
      [['platform:*'], 'vehicle:4'],
      [undefined, 'platform:acme:veh-1'],
      [['vehicle:1'], 'vehicle:4'],
    ] as const) {
      it(`refuses ${topic} when the publish claim is ${JSON.stringify(patterns)}`, () => {
        const e = refusal(() => authorizeTopic(admin(patterns), topic, 'publish'));
        expect([e.status, e.code]).to.deep.equal([403, 'forbidden']);
      });
    }
    it('trusts callers without claims (IAM, local)', () => {
      authorizeTopic({}, 'vehicle:4', 'publish');
      authorizeTopic({ principal: 'iam:arn:x' }, 'vehicle:4', 'publish');
    });
  });

  describe('ownership', () => {
    it('lets the creator, a trusted caller, or anyone on a row without a creator through', () => {
      assertOwner({ principal: 'jwt:alice' }, 's', 'jwt:alice');
      assertOwner({}, 's', 'jwt:alice');
      assertOwner({ principal: 'jwt:bob' }, 's', undefined);
    });
    it('refuses another principal with 403 not_owner', () => {
      const e = refusal(() => assertOwner({ principal: 'jwt:bob' }, 's', 'jwt:alice'));
      expect([e.status, e.code]).to.deep.equal([403, 'not_owner']);
    });
    it('does not confuse a JWT subject with an IAM ARN of the same text', () => {
      const arn = 'arn:aws:iam::1:user/x';
      expect(controlCaller({ jwt: { claims: { sub: arn, scope: CONTROL_SCOPE } } }).principal).to.not.equal(controlCaller({ iam: { userArn: arn } }).principal);
    });
  });
});
