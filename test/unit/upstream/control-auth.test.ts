import { expect } from 'chai';
import { InputError } from '../../../lib/errors';
import { assertOwner, authorizeTopic, CONTROL_SCOPE, controlCaller, iamPrincipal, type ControlAuthorizer } from '../../../lib/upstream/control-auth';

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

    // Review 2 finding 1: an assumed-role session is its role, whatever the session name.
    it('identifies an assumed-role session by its role, so a new session name is the same principal', () => {
      const session = (name: string) => controlCaller({ iam: { userArn: `arn:aws:sts::123456789012:assumed-role/deployer/${name}` } }).principal;
      expect(session('botocore-session-1700000000')).to.equal('iam:arn:aws:iam::123456789012:role/deployer');
      expect(session('botocore-session-1700000999')).to.equal(session('botocore-session-1700000000'));
      expect(session('ci-run-42')).to.equal(session('alice@example.com'));
    });
    const arns: [string, string, string][] = [
      ['another partition', 'arn:aws-cn:sts::123456789012:assumed-role/ops/s1', 'arn:aws-cn:iam::123456789012:role/ops'],
      ['an SSO role (e-mail session name)', 'arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Admin_0123abcd/jo@example.com', 'arn:aws:iam::123456789012:role/AWSReservedSSO_Admin_0123abcd'],
      ['an IAM user (kept)', 'arn:aws:iam::123456789012:user/ops', 'arn:aws:iam::123456789012:user/ops'],
      ['a role with a path (kept)', 'arn:aws:iam::123456789012:role/team/ops', 'arn:aws:iam::123456789012:role/team/ops'],
      ['a federated user (kept)', 'arn:aws:sts::123456789012:federated-user/bob', 'arn:aws:sts::123456789012:federated-user/bob'],
      ['an assumed-role ARN without a session (kept)', 'arn:aws:sts::123456789012:assumed-role/ops', 'arn:aws:sts::123456789012:assumed-role/ops'],
    ];
    for (const [what, arn, principal] of arns) {
      it(`normalises ${what}`, () => expect(iamPrincipal(arn)).to.equal(principal));
    }
    it('keeps roles of different accounts apart', () =>
      expect(iamPrincipal('arn:aws:sts::111111111111:assumed-role/ops/s')).to.not.equal(iamPrincipal('arn:aws:sts::222222222222:assumed-role/ops/s')));

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
