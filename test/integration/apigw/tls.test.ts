import { execFile } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { ApiGatewayManagementApiClient, PostToConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { ensureLocalCa, issueServerCert } from '../../../local/apigw/tls';
import { Emulators, Recorder } from './helpers';
import { LOCAL_CREDENTIALS } from '../../support/env';

const run = promisify(execFile);

describe('apigw emulator: wss:// and https:// with a locally made CA', () => {
  const ems = new Emulators();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rtg-tls-'));
  afterEach(() => ems.closeAll());
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('the CA is made once and reused; each leaf is new and signed by it', () => {
    const a = ensureLocalCa(path.join(dir, 'ca'));
    const b = ensureLocalCa(path.join(dir, 'ca'));
    expect(b.caFile).to.equal(a.caFile);
    expect(b.certPem).to.equal(a.certPem);
    expect((fs.statSync(path.join(dir, 'ca', 'ca-key.pem')).mode & 0o777).toString(8)).to.equal('600');
    expect(issueServerCert(a).cert).to.not.equal(issueServerCert(a).cert);
  });

  it('events say https; SDK v3 and v2 clients built from domainName/stage reach the management API with NODE_EXTRA_CA_CERTS', async () => {
    const ca = ensureLocalCa(path.join(dir, 'ca'));
    const rec = new Recorder();
    const em = await ems.start({ stage: 'prod', routes: { $connect: async (e) => rec.push(e) }, tls: issueServerCert(ca) });
    expect(em.websocketUrl).to.match(/^wss:\/\/127\.0\.0\.1:\d+\/prod$/);
    expect(em.managementUrl).to.match(/^https:\/\/127\.0\.0\.1:\d+\/prod$/);
    const client = await ems.client(em.websocketUrl, undefined, { ca: ca.certPem });
    const e = rec.byRoute('$connect')[0];
    expect(e.headers).to.include({ 'X-Forwarded-Proto': 'https', 'X-Forwarded-Port': String(em.port) });
    const { domainName, stage, connectionId } = e.requestContext;
    expect(`https://${domainName}/${stage}`).to.equal(em.managementUrl);

    // In this process, with the CA given to the client's agent.
    const sdk = new ApiGatewayManagementApiClient({
      endpoint: `https://${domainName}/${stage}`,
      region: 'us-east-1',
      credentials: LOCAL_CREDENTIALS,
      requestHandler: new NodeHttpHandler({ httpsAgent: new https.Agent({ ca: ca.certPem }) }),
    });
    try {
      await sdk.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: Buffer.from('agent') }));
    } finally {
      sdk.destroy();
    }
    expect(await client.text(0)).to.equal('agent');

    // Stock clients, as a handler writes them, in a process started with NODE_EXTRA_CA_CERTS.
    const script = `
      const { ApiGatewayManagementApiClient, PostToConnectionCommand } = require('@aws-sdk/client-apigatewaymanagementapi');
      const AWS = require('aws-sdk');
      const [domainName, stage, id] = process.argv.slice(1);
      (async () => {
        const v3 = new ApiGatewayManagementApiClient({ endpoint: 'https://' + domainName + '/' + stage });
        await v3.send(new PostToConnectionCommand({ ConnectionId: id, Data: 'v3' }));
        const v2 = new AWS.ApiGatewayManagementApi({ apiVersion: '2018-11-29', endpoint: domainName + '/' + stage });
        await v2.postToConnection({ ConnectionId: id, Data: 'v2' }).promise();
      })().catch((e) => { console.error(e); process.exit(1); });`;
    const env = { ...process.env, NODE_EXTRA_CA_CERTS: ca.caFile, AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'x' };
    await run(process.execPath, ['-e', script, domainName, stage, connectionId], { env, cwd: process.cwd() });
    expect(await client.text(1)).to.equal('v3');
    expect(await client.text(2)).to.equal('v2');
  });

  it('refuses a tls option without PEM strings, naming it', async () => {
    const err = await ems.start({ routes: {}, tls: { cert: 'x' } as never }).catch((e: unknown) => e);
    expect((err as Error).message).to.match(/^tls: /);
  });
});
