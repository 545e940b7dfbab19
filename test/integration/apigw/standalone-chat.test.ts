import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { expect } from 'chai';
import WebSocket from 'ws';
import { CreateTableCommand, DeleteTableCommand, DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { LOCAL_CREDENTIALS, testDynamoEndpoint, uniquePrefix } from '../../support/env';
import { Client, WAIT_MS } from './helpers';

/**
 * `npm run emulate` with AWS's chat sample handlers, unchanged (test/fixtures/chat-sample): CJS and
 * ESM, async and callback style, SDK v3 and v2 management clients built as
 * `https://${domainName}/${stage}`. The emulator runs as its own process with --tls and nothing
 * set by the test but the sample's own environment (TABLE_NAME, region, DynamoDB endpoint).
 */

const ROUTES = path.resolve('test/fixtures/chat-sample/routes.json');

interface Started {
  proc: ChildProcess;
  endpoints: { websocketUrl: string; managementUrl: string; caFile?: string };
  output: () => string;
}

async function emulate(args: string[], env: Record<string, string>): Promise<Started> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'local/emulate.ts', ...args], {
    env: { ...process.env, NODE_EXTRA_CA_CERTS: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group: the re-executed child is stopped with it
  });
  let out = '';
  proc.stderr!.on('data', (c) => (out += c));
  const lines = createInterface({ input: proc.stdout! });
  const first = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no endpoints line within 20 s; output:\n${out}`)), 20_000);
    lines.once('line', (l) => (clearTimeout(t), resolve(l)));
    proc.once('exit', (code) => (clearTimeout(t), reject(new Error(`emulate exited with ${code}:\n${out}`))));
  });
  lines.on('line', (l) => (out += l + '\n'));
  return { proc, endpoints: JSON.parse(first), output: () => out };
}

async function stopGroup(proc: ChildProcess): Promise<number | null> {
  if (proc.exitCode !== null) return proc.exitCode;
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  process.kill(-proc.pid!, 'SIGTERM');
  return exited;
}

describe('npm run emulate: AWS chat sample handlers over wss:// with a local CA', function () {
  this.timeout(60_000);
  let ddb: DynamoDBClient;
  const table = uniquePrefix('chat');
  const caDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rtg-ca-'));
  let started: Started | undefined;
  const sockets: WebSocket[] = [];

  before(async () => {
    ddb = new DynamoDBClient({ endpoint: testDynamoEndpoint(), region: 'us-east-1', credentials: LOCAL_CREDENTIALS });
    await ddb.send(
      new CreateTableCommand({
        TableName: table,
        AttributeDefinitions: [{ AttributeName: 'connectionId', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'connectionId', KeyType: 'HASH' }],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
  });
  after(async () => {
    for (const s of sockets) s.terminate();
    if (started) await stopGroup(started.proc);
    await ddb.send(new DeleteTableCommand({ TableName: table })).catch(() => {});
    ddb.destroy();
    fs.rmSync(caDir, { recursive: true, force: true });
  });

  async function connect(url: string, ca: string): Promise<Client> {
    const ws = new WebSocket(url, { ca });
    sockets.push(ws);
    const c = new Client(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return c;
  }

  it('prints the endpoints first, serves wss:// and runs the unchanged handlers end to end', async () => {
    started = await emulate(['--routes', ROUTES, '--tls', '--ws-port', '0', '--stage', 'production', '--ca-dir', path.join(caDir, 'ca')], {
      TABLE_NAME: table,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
      AWS_ENDPOINT_URL_DYNAMODB: testDynamoEndpoint(),
    });
    const { endpoints } = started;
    expect(Object.keys(endpoints)).to.deep.equal(['websocketUrl', 'managementUrl', 'caFile']);
    expect(endpoints.websocketUrl).to.match(/^wss:\/\/127\.0\.0\.1:\d+\/production$/);
    expect(endpoints.managementUrl).to.equal(endpoints.websocketUrl.replace('wss:', 'https:'));
    const ca = fs.readFileSync(endpoints.caFile!, 'utf8');
    expect(ca).to.include('BEGIN CERTIFICATE');

    // Without the CA the certificate is refused: it really is TLS with our own CA.
    const untrusted = new WebSocket(endpoints.websocketUrl);
    sockets.push(untrusted);
    const refusal = await new Promise<Error>((resolve) => untrusted.once('error', resolve));
    expect(refusal.message).to.match(/self.signed|unable to (get|verify)/i);

    const alice = await connect(endpoints.websocketUrl, ca);
    const bob = await connect(endpoints.websocketUrl, ca);
    const rows = await ddb.send(new ScanCommand({ TableName: table }));
    expect(rows.Items).to.have.length(2);

    // SDK v3 (ESM handler) and SDK v2 (CJS handler), both built from domainName/stage over https.
    await alice.send(JSON.stringify({ action: 'sendmessage', data: 'hello from v3' }));
    expect(await alice.text(0)).to.equal('hello from v3');
    expect(await bob.text(0)).to.equal('hello from v3');
    await bob.send(JSON.stringify({ action: 'sendmessagev2', data: 'hello from v2' }));
    expect(await bob.text(1), started.output()).to.equal('hello from v2');

    // The callback-style $disconnect removes the row.
    alice.ws.close();
    await alice.closed;
    const deadline = Date.now() + WAIT_MS;
    let left = 2;
    while (Date.now() < deadline && left !== 1) {
      left = (await ddb.send(new ScanCommand({ TableName: table }))).Items!.length;
      if (left !== 1) await new Promise((r) => setTimeout(r, 50));
    }
    expect(left).to.equal(1);
    expect(started.output()).to.not.match(/Internal server error|integration_failed/);

    // SIGTERM stops both the launcher and the re-executed emulator, closing the clients.
    const code = await stopGroup(started.proc);
    started = undefined;
    expect(code).to.equal(0);
    expect((await bob.closed).code).to.equal(1001);
  });

  it('a routes file naming a missing export fails at start with the route and the file named', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rtg-routes-'));
    try {
      fs.writeFileSync(path.join(dir, 'h.cjs'), 'exports.other = async () => ({});\n');
      fs.writeFileSync(path.join(dir, 'routes.json'), JSON.stringify({ routes: { $default: './h.cjs#handler' } }));
      const err = await emulate(['--routes', path.join(dir, 'routes.json'), '--ws-port', '0'], {}).catch((e: Error) => e);
      expect(err).to.be.instanceOf(Error);
      expect((err as Error).message).to.include('routes.$default.handler').and.include('no exported function "handler"');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
