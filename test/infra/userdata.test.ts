import { expect } from 'chai';
import { envFileLine, renderUserData, type UserDataInput } from '../../infra/userdata';

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
    expect(ud).to.include('dnf install -y nodejs22');
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
    expect(ud).to.include(`aws secretsmanager get-secret-value --region eu-west-1 --secret-id ${arn} --query SecretString --output text`);
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
});
