/**
 * The agent instances' user data, rendered by a pure function so it can be tested line by line.
 *
 * On boot (Amazon Linux 2023, arm64) it installs Node.js from the distribution
 * (`nodejs{major}`, binary `/usr/bin/node-{major}`), downloads the agent bundle from S3,
 * verifies its sha256, writes the non-secret settings to an EnvironmentFile and runs the agent
 * under systemd with restart. The bundle's sha256 is part of the text, so a new bundle changes
 * the launch template and the autoscaling group's instance refresh replaces the instances.
 *
 * Termination: a lifecycle hook holds a terminating instance in Terminating:Wait. A small
 * watcher polls IMDSv2 `autoscaling/target-lifecycle-state`; on `Terminated` it stops the agent
 * (systemd sends SIGTERM and waits up to TimeoutStopSec while the agent releases its leases)
 * and then completes the lifecycle action, so the instance goes away as soon as the leases are
 * free rather than at the heartbeat timeout.
 *
 * Boot failures: package install, bundle download and secret reads are retried with backoff
 * (a package mirror, S3 or Secrets Manager answering an error for a few seconds must not cost
 * an instance). A step that still fails runs the ERR trap: it reports the instance Unhealthy
 * to its autoscaling group (SetInstanceHealth, granted on the agent's own group in iam.ts),
 * which terminates and replaces it; if even that call fails, the instance powers off, and EC2
 * Auto Scaling treats an instance in any state but running as unhealthy. Without this an
 * instance whose boot failed passes EC2 status checks forever, running no agent.
 *
 * Secrets never appear here: user data is readable by anything on the instance through IMDS
 * and by anyone with ec2:DescribeLaunchTemplateVersions. The agent reads credentials by
 * reference from Secrets Manager.
 */

export interface UserDataInput {
  readonly nodeMajor: number;
  readonly region: string;
  readonly bucket: string;
  readonly objectKey: string;
  readonly sha256: string;
  /** Non-secret agent settings. */
  readonly env: Readonly<Record<string, string>>;
  /**
   * Settings whose values are Secrets Manager secrets (variable → secret ARN), fetched at boot
   * into the EnvironmentFile (mode 0640, group rtg-agent) so they never appear in user data.
   */
  readonly secretEnv?: Readonly<Record<string, string>>;
  /** systemd TimeoutStopSec: how long the agent gets to release its leases. */
  readonly stopTimeoutSeconds: number;
  readonly autoScalingGroupName: string;
  readonly lifecycleHookName: string;
}

export const AGENT_SERVICE = 'realtime-gateway-agent.service';
export const AGENT_PATH = '/opt/realtime-gateway/agent.mjs';
export const AGENT_ENV_FILE = '/etc/realtime-gateway/agent.env';

/** Attempts of each retried boot step; the pauses double from 2 s (2+4+8+16+32 s in all). */
export const BOOT_ATTEMPTS = 6;

/** IMDSv2 read (session token first), used by the boot script and the lifecycle watcher. */
const IMDS_FUNCTION = `imds() {
  local t
  t=$(curl -sf -X PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 60') &&
    curl -sf -H "X-aws-ec2-metadata-token: $t" "http://169.254.169.254/latest/meta-data/$1"
}`;

/** One `KEY="value"` line of a systemd EnvironmentFile. */
export function envFileLine(key: string, value: string): string {
  if (!/^[A-Z_][A-Z0-9_]*$/.test(key)) throw new Error(`agent env key "${key}" is not an environment variable name`);
  if (/[\r\n\0]/.test(value)) throw new Error(`agent env ${key} contains a line break or NUL`);
  return `${key}="${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

const shellWord = (s: string, what: string) => {
  if (!/^[A-Za-z0-9._/:@+=-]+$/.test(s)) throw new Error(`${what} "${s}" has characters that are not safe in user data`);
  return s;
};

export function renderUserData(i: UserDataInput): string {
  if (!/^[0-9a-f]{64}$/.test(i.sha256)) throw new Error(`agent bundle sha256 "${i.sha256}" is not 64 hex characters`);
  if (!Number.isInteger(i.nodeMajor) || i.nodeMajor < 18) throw new Error(`nodeMajor ${i.nodeMajor} is not a supported Node.js major`);
  if (!Number.isInteger(i.stopTimeoutSeconds) || i.stopTimeoutSeconds < 1) throw new Error('stopTimeoutSeconds must be a positive integer');
  const region = shellWord(i.region, 'region');
  const bucket = shellWord(i.bucket, 'bucket');
  const key = shellWord(i.objectKey, 'object key');
  const asg = shellWord(i.autoScalingGroupName, 'autoscaling group name');
  const hook = shellWord(i.lifecycleHookName, 'lifecycle hook name');
  const node = `/usr/bin/node-${i.nodeMajor}`;
  const envLines = Object.keys(i.env)
    .sort()
    .map((k) => envFileLine(k, i.env[k]!));
  const secretLines = Object.keys(i.secretEnv ?? {})
    .sort()
    .map((k) => {
      if (!/^[A-Z_][A-Z0-9_]*$/.test(k)) throw new Error(`agent env key "${k}" is not an environment variable name`);
      if (k in i.env) throw new Error(`agent env ${k} is both a plain and a secret setting`);
      const arn = shellWord(i.secretEnv![k]!, `secret ARN of ${k}`);
      // Escaped for a double-quoted EnvironmentFile value; the value itself never hits a log.
      return `v=$(retry aws secretsmanager get-secret-value --region ${region} --secret-id ${arn} --query SecretString --output text)
v=\${v//\\\\/\\\\\\\\}; v=\${v//\\"/\\\\\\"}
printf '%s="%s"\\n' ${k} "$v" >> ${AGENT_ENV_FILE}
unset v`;
    });

  return `#!/bin/bash
# realtime-gateway upstream agent bootstrap (rendered by infra/userdata.ts)
# agent bundle sha256: ${i.sha256}
set -euo pipefail

${IMDS_FUNCTION}

# retry CMD...: runs CMD up to ${BOOT_ATTEMPTS} times, pausing 2, 4, 8, … s between attempts.
retry() {
  local attempt=1 pause=2
  until "$@"; do
    if [ "$attempt" -ge ${BOOT_ATTEMPTS} ]; then
      echo "rtg-boot: $1 failed ${BOOT_ATTEMPTS} times" >&2
      return 1
    fi
    sleep "$pause"
    attempt=$((attempt + 1))
    pause=$((pause * 2))
  done
}

# A failed boot: let the group replace this instance instead of keeping it, agentless, in service.
boot_failed() {
  local status=$?
  trap - ERR
  echo "rtg-boot: failed with status $status at line $1; marking this instance Unhealthy" >&2
  local id
  id=$(imds instance-id || true)
  if [ -z "$id" ] || ! retry aws autoscaling set-instance-health --region ${region} --instance-id "$id" \
    --health-status Unhealthy --no-should-respect-grace-period; then
    echo "rtg-boot: could not report Unhealthy; powering off" >&2
    shutdown -h now
  fi
  exit "$status"
}
trap 'boot_failed $LINENO' ERR

# Download and verify as one step, so a truncated or corrupted download is fetched again.
fetch_bundle() {
  aws s3 cp --only-show-errors --region ${region} s3://${bucket}/${key} ${AGENT_PATH}.download &&
    echo "${i.sha256}  ${AGENT_PATH}.download" | sha256sum --check --strict --quiet
}

retry dnf install -y nodejs${i.nodeMajor}
id -u rtg-agent >/dev/null 2>&1 || useradd --system --no-create-home --shell /sbin/nologin rtg-agent
install -d -m 0755 /opt/realtime-gateway
install -d -m 0750 -g rtg-agent /etc/realtime-gateway

retry fetch_bundle
mv ${AGENT_PATH}.download ${AGENT_PATH}
chmod 0644 ${AGENT_PATH}

cat > ${AGENT_ENV_FILE} <<'RTG_ENV'
${envLines.join('\n')}
RTG_ENV
chmod 0640 ${AGENT_ENV_FILE}
chgrp rtg-agent ${AGENT_ENV_FILE}
${secretLines.join('\n')}

cat > /etc/systemd/system/${AGENT_SERVICE} <<'RTG_UNIT'
[Unit]
Description=realtime-gateway upstream agent
Wants=network-online.target
After=network-online.target

[Service]
User=rtg-agent
EnvironmentFile=${AGENT_ENV_FILE}
ExecStart=${node} ${AGENT_PATH}
Restart=always
RestartSec=2
KillSignal=SIGTERM
TimeoutStopSec=${i.stopTimeoutSeconds}
NoNewPrivileges=true
ProtectSystem=strict
ProtectHome=true
PrivateTmp=true

[Install]
WantedBy=multi-user.target
RTG_UNIT

cat > /usr/local/bin/rtg-lifecycle-watch <<'RTG_WATCH'
#!/bin/bash
set -u
${IMDS_FUNCTION}
while true; do
  if [ "$(imds autoscaling/target-lifecycle-state || true)" = "Terminated" ]; then
    systemctl stop ${AGENT_SERVICE}
    aws autoscaling complete-lifecycle-action --region ${region} --auto-scaling-group-name ${asg} \\
      --lifecycle-hook-name ${hook} --instance-id "$(imds instance-id)" --lifecycle-action-result CONTINUE
    exit 0
  fi
  sleep 5
done
RTG_WATCH
chmod 0755 /usr/local/bin/rtg-lifecycle-watch

cat > /etc/systemd/system/rtg-lifecycle-watch.service <<'RTG_UNIT'
[Unit]
Description=release agent leases before autoscaling terminates this instance
After=${AGENT_SERVICE}

[Service]
ExecStart=/usr/local/bin/rtg-lifecycle-watch
Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
RTG_UNIT

systemctl daemon-reload
systemctl enable --now ${AGENT_SERVICE} rtg-lifecycle-watch.service
trap - ERR
`;
}
