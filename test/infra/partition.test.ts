import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { installMocks, ROOT, settle, stackFileValues, value, type MockRun } from './support/mocks';

/**
 * The program in a partition other than `aws` (China regions use `aws-cn`): every ARN it builds
 * must come from `aws.getPartition`, never a literal `arn:aws:`. The mocks answer getPartition
 * with `aws-cn` and build every computed ARN in it, so any `arn:aws:` in what the program
 * registers was written by the program itself. Run on dev with a sink configured, which also
 * covers the dev-only secret settings.
 */

const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rtg-infra-partition-'));

/** Every string in a value, descending into JSON-encoded strings (policy documents, dashboards). */
function strings(v: unknown, out: string[] = []): string[] {
  if (typeof v === 'string') {
    out.push(v);
    const t = v.trim();
    if (t.startsWith('{') || t.startsWith('[')) {
      try {
        strings(JSON.parse(t), out);
      } catch {
        // not JSON: the string itself was recorded
      }
    }
  } else if (Array.isArray(v)) {
    for (const x of v) strings(x, out);
  } else if (v && typeof v === 'object') {
    for (const x of Object.values(v)) strings(x, out);
  }
  return out;
}

describe('infra: ARNs follow the partition (dev stack in aws-cn, with a sink)', function () {
  this.timeout(180_000);
  let run: MockRun;

  before(async () => {
    run = await installMocks('dev', { partition: 'aws-cn' });
    const cfg = await import('../../infra/config');
    const platform = await import('../../infra/platform');
    const bundle = await import('../../infra/bundle');
    const config = cfg.parseStackConfig('dev', {
      ...stackFileValues('dev', ROOT),
      sink: JSON.stringify({ url: 'https://lake.example.com/ingest' }),
      sinkCredentials: 'Bearer dev-sink-token-0123456789',
    });
    const p = platform.createPlatform(config, { bundler: bundle.createBundler(ROOT, outDir) });
    for (const v of Object.values(p)) await value(v);
    await settle();
  });
  after(() => fs.rmSync(outDir, { recursive: true, force: true }));

  it('builds every ARN with the partition aws.getPartition answers', () => {
    const arns = run.resources.flatMap((r) => strings(r.inputs).filter((s) => /(^|[^A-Za-z])arn:/.test(s)).map((s) => [`${r.type} ${r.name}`, s] as const));
    expect(arns.length).to.be.greaterThan(50);
    const wrong = arns.filter(([, s]) => /(^|[^A-Za-z])arn:(?!aws-cn:)/.test(s));
    expect(wrong).to.deep.equal([]);
    // The program-built ARNs are among them (not only the mocked outputs passed through).
    const attachments = run.resources.filter((r) => r.type === 'aws:iam/rolePolicyAttachment:RolePolicyAttachment').map((r) => r.inputs.policyArn);
    expect(attachments).to.include('arn:aws-cn:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs');
  });

  it('deletes the dev sink secret without a recovery window and names it by prefix', () => {
    const secret = run.resources.find((r) => r.type === 'aws:secretsmanager/secret:Secret')!;
    expect(secret.inputs.recoveryWindowInDays).to.equal(0);
    expect(secret.inputs.name).to.equal(undefined);
    expect(secret.inputs.namePrefix).to.equal('realtime-gateway/dev/sink/credentials-');
  });

  it('creates the launch template only after the sink secret has its value', () => {
    const lt = run.resources.find((r) => r.type === 'aws:ec2/launchTemplate:LaunchTemplate')!;
    const version = run.resources.find((r) => r.type === 'aws:secretsmanager/secretVersion:SecretVersion')!;
    expect(lt.options.dependencies.some((urn) => urn.endsWith(`::${version.name}`))).to.equal(true);
  });
});
