import { expect } from 'chai';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SecretsManagerStore } from '../../../lib/upstream/secrets-aws';
import { SecretNotFoundError } from '../../../lib/upstream/secret-store';
import { LOCAL_CREDENTIALS } from '../../support/env';

/**
 * SecretsManagerStore through the real AWS SDK against a strict stand-in of the Secrets
 * Manager JSON protocol on loopback: it implements CreateSecret, PutSecretValue and
 * GetSecretValue with AWS's error types and refuses any other call, so the test fails if the
 * store calls anything unexpected.
 */
describe('Secrets Manager secret store (real SDK, strict loopback stand-in)', () => {
  let server: http.Server;
  let client: SecretsManagerClient;
  const secrets = new Map<string, string>();
  const calls: string[] = [];

  before(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const op = String(req.headers['x-amz-target'] ?? '').replace('secretsmanager.', '');
        calls.push(op);
        const input = JSON.parse(body || '{}');
        const fail = (type: string, message: string) => {
          res.writeHead(400, { 'content-type': 'application/x-amz-json-1.1' });
          res.end(JSON.stringify({ __type: type, message }));
        };
        const ok = (out: unknown) => {
          res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
          res.end(JSON.stringify(out));
        };
        switch (op) {
          case 'CreateSecret':
            if (secrets.has(input.Name)) return fail('ResourceExistsException', `The operation failed because the secret ${input.Name} already exists.`);
            secrets.set(input.Name, input.SecretString);
            return ok({ ARN: `arn:aws:secretsmanager:us-east-1:000000000000:secret:${input.Name}`, Name: input.Name });
          case 'PutSecretValue':
            if (!secrets.has(input.SecretId)) return fail('ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
            secrets.set(input.SecretId, input.SecretString);
            return ok({ Name: input.SecretId });
          case 'GetSecretValue':
            if (!secrets.has(input.SecretId)) return fail('ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
            return ok({ Name: input.SecretId, SecretString: secrets.get(input.SecretId) });
          default:
            return fail('UnknownOperationException', `unexpected call ${op}`);
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    client = new SecretsManagerClient({
      region: 'us-east-1',
      endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      credentials: LOCAL_CREDENTIALS,
      maxAttempts: 1,
    });
  });
  after(async () => {
    client.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('creates on first put, adds a version on the next, and reads it back', async () => {
    const store = new SecretsManagerStore(client);
    await store.put('rtg/dev/upstream/abc', { email: 'a@b.c', pass: 'one' });
    await store.put('rtg/dev/upstream/abc', { email: 'a@b.c', pass: 'two' });
    expect(calls).to.deep.equal(['CreateSecret', 'CreateSecret', 'PutSecretValue']);
    expect(await store.get('rtg/dev/upstream/abc')).to.deep.equal({ email: 'a@b.c', pass: 'two' });
  });

  it('maps ResourceNotFoundException to SecretNotFoundError', async () => {
    const store = new SecretsManagerStore(client);
    try {
      await store.get('rtg/dev/upstream/missing');
      expect.fail('expected a rejection');
    } catch (err) {
      expect(err).to.be.instanceOf(SecretNotFoundError);
    }
  });
});
