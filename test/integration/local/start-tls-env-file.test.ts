import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { testDynamoEndpoint } from '../../support/env';
import { Client } from '../apigw/helpers';
import { handlerEnv } from '../../../local/handler-env';
import { ConfigError } from '../../../lib/errors';

const SECRET = 'a-local-test-secret-of-at-least-32-bytes!';

function startCli(args: string[], env: Record<string, string | undefined> = {}): { proc: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'local/start.ts', ...args], {
    env: { ...process.env, NODE_EXTRA_CA_CERTS: '', AUTH_MODE: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group: the re-executed child stops with it
  });
  let out = '';
  proc.stdout!.on('data', (c) => (out += c));
  proc.stderr!.on('data', (c) => (out += c));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return { proc, output: () => out, exited };
}

describe('npm start: --tls and --env-file', function () {
  this.timeout(90_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rtg-start-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('handler settings: the file gives them, the shell wins, stack-wired and unknown keys are refused by name', () => {
    const file = path.join(dir, 'a.env');
    fs.writeFileSync(file, `# local jwt mode\nAUTH_MODE=jwt\nJWT_HS256_SECRET="${SECRET}"\nITEM_KEYS=vehicleId\n`);
    expect(handlerEnv({ ITEM_KEYS: 'batteryId', AWS_REGION: 'eu-west-1', HOME: '/x' }, file)).to.deep.equal({
      AUTH_MODE: 'jwt',
      JWT_HS256_SECRET: SECRET,
      ITEM_KEYS: 'batteryId',
    });
    fs.writeFileSync(file, 'WS_MANAGEMENT_ENDPOINT=https://example.com/prod\n');
    expect(() => handlerEnv({}, file)).to.throw(ConfigError, /^WS_MANAGEMENT_ENDPOINT: .* set by the local stack/);
    fs.writeFileSync(file, 'JWT_HS256_SECERT=x\n');
    expect(() => handlerEnv({}, file)).to.throw(ConfigError, /^JWT_HS256_SECERT: .* not a handler setting/);
    expect(() => handlerEnv({}, path.join(dir, 'missing.env'))).to.throw(ConfigError, /^--env-file: cannot read/);
  });

  it('a bad --env-file stops npm start before anything starts, naming the key', async () => {
    const file = path.join(dir, 'bad.env');
    fs.writeFileSync(file, 'COMMAND_QUEUE_URL=http://elsewhere\n');
    const run = startCli(['--env-file', file, '--dynamodb-endpoint', testDynamoEndpoint()]);
    expect(await run.exited).to.equal(1);
    expect(run.output()).to.include('COMMAND_QUEUE_URL').and.include('set by the local stack');
  });

  it('runs in jwt mode from the env file and over wss://, fan-out posting through https:// inside the stack', async () => {
    const envFile = path.join(dir, 'jwt.env');
    fs.writeFileSync(envFile, `AUTH_MODE=jwt\nJWT_HS256_SECRET=${SECRET}\nITEM_KEYS=vehicleId\n`);
    const endpointsFile = path.join(dir, 'endpoints.json');
    const run = startCli([
      '--tls',
      '--ca-dir', path.join(dir, 'ca'),
      '--env-file', envFile,
      '--dynamodb-endpoint', testDynamoEndpoint(),
      '--ws-port', '0',
      '--http-port', '0',
      '--agent=false',
      '--endpoints-file', endpointsFile,
    ]);
    const sockets: WebSocket[] = [];
    try {
      const deadline = Date.now() + 60_000;
      while (!run.output().includes('local stack ready')) {
        if (run.proc.exitCode !== null || Date.now() > deadline) throw new Error(`npm start did not come up:\n${run.output()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const endpoints = JSON.parse(fs.readFileSync(endpointsFile, 'utf8')) as Record<string, string>;
      expect(endpoints.websocketUrl).to.match(/^wss:\/\//);
      expect(endpoints.managementUrl).to.match(/^https:\/\//);
      expect(endpoints.caFile).to.equal(path.join(dir, 'ca', 'ca.pem'));
      expect(run.output()).to.include('Handler settings  AUTH_MODE, ITEM_KEYS, JWT_HS256_SECRET').and.not.include(SECRET);
      const ca = fs.readFileSync(endpoints.caFile, 'utf8');

      const open = (headers: Record<string, string>) =>
        new Promise<Client | number>((resolve) => {
          const ws = new WebSocket(`${endpoints.websocketUrl}?vehicleId=3`, { ca, headers });
          sockets.push(ws);
          ws.once('open', () => resolve(new Client(ws)));
          ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
          ws.once('error', () => resolve(-1));
        });
      // jwt mode came from the file: no token, no connection.
      expect(await open({})).to.equal(401);

      const token = await new SignJWT({ topics: ['vehicleId:*'] })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject('alice')
        .setExpirationTime('10m')
        .sign(new TextEncoder().encode(SECRET));
      const client = await open({ Authorization: `Bearer ${token}` });
      expect(client).to.be.instanceOf(Client);
      const c = client as Client;
      await c.send(JSON.stringify({ action: 'subscribe', topic: 'vehicleId:3' }));
      expect(JSON.parse(await c.text(0))).to.include({ type: 'snapshot', topic: 'vehicleId:3' });
      const res = await fetch(`${endpoints.httpUrl}/publish`, { method: 'POST', body: JSON.stringify({ topic: 'vehicleId:3', data: { lat: 1 } }) });
      expect(res.status).to.equal(202);
      // Fan-out in the stack process posted this over https:// to the emulator.
      const event = JSON.parse((await c.message(1, 15_000)).data.toString());
      expect(event).to.include({ type: 'event', topic: 'vehicleId:3', seq: 1 });
      expect(run.output()).to.not.match(/self.signed|UNABLE_TO_VERIFY/i);
    } finally {
      for (const s of sockets) s.terminate();
      if (run.proc.exitCode === null) process.kill(-run.proc.pid!, 'SIGTERM');
      expect(await run.exited).to.equal(0);
    }
  });
});
