import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BOOT_ATTEMPTS, envFileLine, renderUserData, type UserDataInput } from '../../infra/userdata';

const base: UserDataInput = {
  nodeMajor: 22,
  region: 'eu-west-1',
  bucket: 'rtg-dev-agent-abc',
  objectKey: `agent/${'a'.repeat(64)}.mjs`,
  sha256: 'a'.repeat(64),
  env: { STACK: 'dev', COMMAND_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/1/q' },
  stopTimeoutSeconds: 90,
  autoScalingGroupName: 'rtg-dev-agents',
  lifecycleHookName: 'release-leases',
};

describe('infra: agent user data', () => {
  it('installs Node.js, verifies and runs the bundle under systemd with restart', () => {
    const ud = renderUserData(base);
    expect(ud.startsWith('#!/bin/bash\n')).to.equal(true);
    expect(ud).to.include('set -euo pipefail');
    expect(ud).to.include('retry dnf install -y nodejs22');
    expect(ud).to.include(`aws s3 cp --only-show-errors --region eu-west-1 s3://rtg-dev-agent-abc/${base.objectKey}`);
    expect(ud).to.include(`echo "${base.sha256}  /opt/realtime-gateway/agent.mjs.download" | sha256sum --check --strict`);
    expect(ud).to.include('ExecStart=/usr/bin/node-22 /opt/realtime-gateway/agent.mjs');
    expect(ud).to.include('Restart=always');
    expect(ud).to.include('TimeoutStopSec=90');
    expect(ud).to.include('User=rtg-agent');
    expect(ud).to.include('systemctl enable --now realtime-gateway-agent.service rtg-lifecycle-watch.service');
    expect(ud).to.include('--auto-scaling-group-name rtg-dev-agents');
    expect(ud).to.include('--lifecycle-hook-name release-leases');
    expect(ud).to.include('autoscaling/target-lifecycle-state');
    expect(ud).to.include('X-aws-ec2-metadata-token'); // IMDSv2 calls only
  });

  it('changes whenever the bundle hash changes (drives the instance refresh)', () => {
    expect(renderUserData(base)).to.not.equal(renderUserData({ ...base, sha256: 'b'.repeat(64) }));
  });

  it('writes settings to the EnvironmentFile, sorted and quoted', () => {
    const ud = renderUserData(base);
    const block = ud.split("<<'RTG_ENV'\n")[1]!.split('\nRTG_ENV')[0]!;
    expect(block.split('\n')).to.deep.equal(['COMMAND_QUEUE_URL="https://sqs.eu-west-1.amazonaws.com/1/q"', 'STACK="dev"']);
  });

  it('fetches secret settings at boot by ARN, never rendering their values', () => {
    const arn = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:realtime-gateway/dev/sink/credentials-AbC123';
    const ud = renderUserData({ ...base, secretEnv: { SINK_AUTHORIZATION: arn } });
    expect(ud).to.include(`v=$(retry aws secretsmanager get-secret-value --region eu-west-1 --secret-id ${arn} --query SecretString --output text)`);
    expect(ud).to.include(`printf '%s="%s"\\n' SINK_AUTHORIZATION "$v" >> /etc/realtime-gateway/agent.env`);
    expect(() => renderUserData({ ...base, secretEnv: { STACK: arn } })).to.throw(/both a plain and a secret/);
  });

  const bad: [string, Partial<UserDataInput>, RegExp][] = [
    ['a hash that is not sha256', { sha256: 'xyz' }, /64 hex/],
    ['an old Node major', { nodeMajor: 16 }, /not a supported/],
    ['shell metacharacters in the bucket', { bucket: 'b; rm -rf /' }, /not safe/],
    ['an invalid env key', { env: { 'bad-key': 'x' } }, /not an environment variable name/],
    ['a newline in an env value', { env: { A: 'x\ny' } }, /line break/],
    ['a zero stop timeout', { stopTimeoutSeconds: 0 }, /positive/],
  ];
  for (const [what, patch, msg] of bad) it(`refuses ${what}`, () => expect(() => renderUserData({ ...base, ...patch })).to.throw(msg));

  it('escapes quotes and backslashes in EnvironmentFile values', () => {
    expect(envFileLine('A', 'say "hi" \\ bye')).to.equal('A="say \\"hi\\" \\\\ bye"');
  });

  /**
   * The boot script's retry and failure path, run by bash: the rendered preamble (helpers and
   * ERR trap) followed by one boot step, with stub `aws`, `curl`, `sleep` and `shutdown`
   * commands first on PATH that record how they were called.
   */
  describe('boot failures (run in bash with stub commands)', () => {
    let dir: string;
    beforeEach(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rtg-userdata-'));
      const bin = path.join(dir, 'bin');
      fs.mkdirSync(bin);
      const stub = (name: string, body: string) => fs.writeFileSync(path.join(bin, name), `#!/bin/bash\n${body}\n`, { mode: 0o755 });
      stub('sleep', `echo "$1" >> "${dir}/sleeps"`);
      stub('shutdown', `echo "shutdown $*" >> "${dir}/calls"`);
      stub('curl', `case "$*" in *api/token*) echo TOKEN ;; *instance-id*) echo i-0abc123 ;; *) exit 22 ;; esac`);
      // aws: autoscaling answers $AWS_AUTOSCALING_EXIT (default 0); anything else fails.
      stub('aws', `echo "aws $*" >> "${dir}/calls"; if [ "$1" = autoscaling ]; then exit "\${AWS_AUTOSCALING_EXIT:-0}"; fi; exit 1`);
      // flaky: fails $FLAKY_FAILS times, then succeeds.
      stub('flaky', `n=$(cat "${dir}/flaky" 2>/dev/null || echo 0); echo $((n + 1)) > "${dir}/flaky"; [ "$n" -ge "\${FLAKY_FAILS:-0}" ]`);
    });
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    const preamble = (ud: string) => ud.slice(0, ud.indexOf('retry dnf install'));
    const run = (script: string, env: Record<string, string> = {}) => {
      const file = path.join(dir, 'boot.sh');
      fs.writeFileSync(file, script);
      const r = spawnSync('bash', [file], { env: { PATH: `${path.join(dir, 'bin')}:${process.env.PATH}`, ...env }, encoding: 'utf8', timeout: 20_000 });
      const read = (f: string) => (fs.existsSync(path.join(dir, f)) ? fs.readFileSync(path.join(dir, f), 'utf8').trim().split('\n') : []);
      return { status: r.status, stdout: r.stdout, stderr: r.stderr, calls: read('calls'), sleeps: read('sleeps'), attempts: Number(read('flaky')[0] ?? 0) };
    };

    it('retries a failing step with doubling pauses and carries on once it succeeds', () => {
      const r = run(`${preamble(renderUserData(base))}retry flaky\necho booted\n`, { FLAKY_FAILS: '2' });
      expect(r.status, r.stderr).to.equal(0);
      expect(r.stdout.trim()).to.equal('booted');
      expect(r.attempts).to.equal(3);
      expect(r.sleeps).to.deep.equal(['2', '4']);
      expect(r.calls).to.deep.equal([]); // healthy: nothing reported
    });

    it('after the last attempt stops the boot and reports this instance Unhealthy to its group', () => {
      const r = run(`${preamble(renderUserData(base))}retry flaky\necho booted\n`, { FLAKY_FAILS: '100' });
      expect(r.status).to.not.equal(0);
      expect(r.stdout).to.not.include('booted');
      expect(r.attempts).to.equal(BOOT_ATTEMPTS);
      expect(r.calls).to.deep.equal(['aws autoscaling set-instance-health --region eu-west-1 --instance-id i-0abc123 --health-status Unhealthy --no-should-respect-grace-period']);
      expect(r.stderr).to.match(/rtg-boot: failed with status 1 at line \d+/);
    });

    it('powers the instance off when even the health report fails (EC2 Auto Scaling replaces a stopped instance)', () => {
      const r = run(`${preamble(renderUserData(base))}false\n`, { AWS_AUTOSCALING_EXIT: '1' });
      expect(r.status).to.not.equal(0);
      expect(r.calls.filter((c) => c.startsWith('aws autoscaling set-instance-health'))).to.have.length(BOOT_ATTEMPTS);
      expect(r.calls.at(-1)).to.equal('shutdown -h now');
    });

    it('a secret that cannot be read is retried, then fails the boot without writing a value', () => {
      const arn = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:realtime-gateway/dev/sink/credentials-AbC123';
      const ud = renderUserData({ ...base, secretEnv: { SINK_AUTHORIZATION: arn } });
      const block = ud.slice(ud.indexOf('v=$(retry aws secretsmanager'), ud.indexOf('unset v') + 'unset v'.length);
      const r = run(`${preamble(ud)}${block.replaceAll('/etc/realtime-gateway/agent.env', path.join(dir, 'agent.env'))}\necho booted\n`);
      expect(r.status).to.not.equal(0);
      expect(r.stdout).to.not.include('booted');
      expect(r.calls.filter((c) => c.startsWith('aws secretsmanager get-secret-value'))).to.have.length(BOOT_ATTEMPTS);
      expect(r.calls.at(-1)).to.match(/^aws autoscaling set-instance-health .* --health-status Unhealthy/);
      expect(fs.existsSync(path.join(dir, 'agent.env'))).to.equal(false);
    });
  });
});
