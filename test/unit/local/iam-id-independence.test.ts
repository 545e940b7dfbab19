import { expect } from 'chai';
import { LocalIamAuthorizer, type LocalPrincipal } from '../../../local/iam/authorizer';
import type { IncomingMessage } from 'node:http';
import { idClass, patternIgnoresId } from '../../../local/iam/id-independence';
import { managementAuthorize } from '../../../local/iam/management';
import { LOCAL_ACCOUNT, localAccessKeyId, localPrincipals } from '../../../local/iam/principals';
import { TEST_LOCAL_RESOURCES } from '../../support/local-resources';

const API = `arn:aws:execute-api:us-east-1:${LOCAL_ACCOUNT}:abc123`;
const POST = `${API}/local/POST/@connections/`;
/** What the emulator's ids look like (base64 of 11 random bytes), with and without `/`. */
const IDS = ['Abc0Abc0Abc0Ab=', 'Xyz0Xyz0Xyz0Xy=', 'Ab/c0Abc0Abc0A=', 'Q/r+s0Qr+s0Qr=', 'AAAAAAAAAAAAAA='];

describe('local IAM: connection ids a policy cannot tell apart', () => {
  it('ids are classed by whether they hold a "/"; anything but base64 is decided on its own', () => {
    expect(idClass('L0SM9cOFvHcCIhw=')).to.equal('plain');
    expect(idClass('L0SM9c/FvHc+Ihw=')).to.equal('slashed');
    for (const id of ['', 'a:b', 'a*', 'a?', '${aws:username}', 'x'.repeat(129)]) expect(idClass(id), id).to.equal(undefined);
  });

  it('patterns that match every id, or none, are blind to it; patterns that name ids are not', () => {
    const cases: [pattern: string, plain: boolean, slashed: boolean][] = [
      ['*', true, true],
      [`${POST}*`, true, true],
      [`${API}/local/*`, true, true],
      [`${POST.toUpperCase()}*`, true, true],
      [`arn:aws:execute-api:*:*:abc123/local/POST/@connections/*`, true, false],
      [`${API}/local/DELETE/@connections/*`, true, true],
      [`arn:aws:dynamodb:us-east-1:${LOCAL_ACCOUNT}:table/p-items`, true, true],
      [`arn:aws:execute-api:us-east-1:${LOCAL_ACCOUNT}:abc123`, false, false],
      [`${POST}L0SM9cOFvHcCIhw=`, false, false],
      [`${POST}A*`, false, false],
      [`${POST}*=`, false, false],
      [`${POST}\${aws:username}`, false, false],
    ];
    for (const [pattern, plain, slashed] of cases) {
      expect(patternIgnoresId(pattern, POST, 'plain'), `${pattern} (plain ids)`).to.equal(plain);
      expect(patternIgnoresId(pattern, POST, 'slashed'), `${pattern} (ids with /)`).to.equal(slashed);
    }
  });

  it('decisions shared across ids are the ones the evaluator gives for each id alone', async () => {
    const policies: Record<string, unknown> = {
      'every connection': { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'execute-api:ManageConnections', Resource: `${POST}*` }] },
      'one connection': { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'execute-api:ManageConnections', Resource: `${POST}${IDS[0]}` }] },
      'ids starting with A': { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'execute-api:ManageConnections', Resource: `${POST}A*` }] },
      'all but one, by a Deny on NotResource': {
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Action: 'execute-api:ManageConnections', Resource: '*' },
          { Effect: 'Deny', Action: 'execute-api:ManageConnections', NotResource: `${POST}${IDS[0]}` },
        ],
      },
      'wildcards inside the ARN': { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'execute-api:ManageConnections', Resource: 'arn:aws:execute-api:*:*:abc123/local/POST/@connections/*' }] },
      'another verb only': { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'execute-api:ManageConnections', Resource: `${API}/local/DELETE/@connections/*` }] },
    };
    for (const [name, policy] of Object.entries(policies)) {
      const principal: LocalPrincipal = { accessKeyId: 'AKIDLOCALTEST', roleName: 'test-role', sessionName: 'test', policy: policy as LocalPrincipal['policy'] };
      const shared = new LocalIamAuthorizer(LOCAL_ACCOUNT);
      const exact = new LocalIamAuthorizer(LOCAL_ACCOUNT);
      shared.register(principal);
      exact.register(principal);
      for (const id of IDS) {
        const check = { action: 'execute-api:ManageConnections', resource: POST + id };
        const alone = (await exact.authorize(principal.accessKeyId, [check])) === undefined;
        const viaPrefix = (await shared.authorize(principal.accessKeyId, [{ ...check, idPrefix: POST }])) === undefined;
        expect(viaPrefix, `${name}: ${id}`).to.equal(alone);
      }
    }
  });

  it("the fan-out role's posts to 100 new connections take one policy evaluation per id class, not one per connection", async () => {
    const resources = TEST_LOCAL_RESOURCES;
    const authorizer = new LocalIamAuthorizer(LOCAL_ACCOUNT);
    for (const p of localPrincipals(resources)) authorizer.register(p);
    const check = managementAuthorize(authorizer, { arns: resources.arns, apiId: 'abc123', stage: 'local' });
    const ids = Array.from({ length: 100 }, (_, i) => (i % 2 ? `c${i}/x=` : `c${i}x=`));
    // The request the WebSocket emulator hands the check: the id URL-encoded in the path, as the SDK sends it.
    const post = (principal: string, id: string) =>
      check({
        method: 'POST',
        url: `/local/@connections/${encodeURIComponent(id)}`,
        headers: { authorization: `AWS4-HMAC-SHA256 Credential=${localAccessKeyId(principal)}/20260101/us-east-1/execute-api/aws4_request, SignedHeaders=host, Signature=0` },
      } as unknown as IncomingMessage);
    for (const id of ids) expect(await post('fanout', id), id).to.equal(undefined);
    expect(authorizer.evaluations).to.equal(2);
    // A role without the grant is refused for every connection, each refusal naming its own.
    for (const id of ids.slice(0, 3)) expect((await post('connect', id))?.message).to.include(`on resource: ${POST}${id} `);
    expect(authorizer.evaluations).to.equal(4);
  });
});
