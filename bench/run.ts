import { startDynamoDbLocal, type RunningDynamoDbLocal } from '../local/dynamodb-local';
import path from 'node:path';
import { ensureLocalCa } from '../local/apigw/tls';
import { reexecTrusting } from '../local/tls-trust';
import { writeResults, type Section } from './lib/results';

/** The local CA of `npm start -- --tls` (created on first use): the fan-out benchmark's TLS emulator uses it. */
const CA_DIR = '.local/tls/ca';

// Child processes inherit it: the SDK's "Node 22 from 2027" notice is noise in benchmark tables.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/**
 * `npm run bench [-- --quick] [--only=fanout,fanout-faults,quota,largeTopic,e2e,agent,bundles] [--variants=baseline,handler-sdk,handler-lean] [--profile]`
 *
 * Runs the benchmarks one after the other (they would otherwise compete for the 2 cores), prints
 * a table for each, and writes bench/results/latest.json. Benchmarks are programs, not tests:
 * they report figures and never fail on them; they only fail when something did not work
 * (a delivery lost, a process that did not start).
 */

const SECTIONS = ['fanout', 'fanout-faults', 'quota', 'largeTopic', 'e2e', 'agent', 'bundles'] as const;
type SectionName = (typeof SECTIONS)[number];

function parseArgs(argv: string[]) {
  const quick = argv.includes('--quick');
  const value = (name: string) => argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
  const only = value('only')?.split(',').filter(Boolean) ?? [...SECTIONS];
  for (const s of only) if (!SECTIONS.includes(s as SectionName)) throw new Error(`--only: unknown benchmark "${s}" (known: ${SECTIONS.join(', ')})`);
  const variants = value('variants')?.split(',').filter(Boolean);
  const profile = argv.includes('--profile');
  const unknown = argv.filter((a) => a !== '--quick' && a !== '--profile' && !/^--(only|variants)=/.test(a));
  if (unknown.length) throw new Error(`unknown arguments: ${unknown.join(' ')} (use --quick, --profile, --only=…, --variants=…)`);
  return { quick, profile, only: only as SectionName[], variants };
}

async function main() {
  const argv = process.argv.slice(2);
  const args = parseArgs(argv);
  // The fan-out posts to an https:// management API: like `npm start -- --tls`, this process
  // re-executes itself once trusting the local CA (Node 20 reads NODE_EXTRA_CA_CERTS only at start).
  const ca = args.only.includes('fanout') ? ensureLocalCa(CA_DIR) : undefined;
  if (ca && reexecTrusting(ca.caFile, path.dirname(ca.caFile))) return;
  const t0 = performance.now();
  const sections: Record<string, Section> = {};
  let ddb: RunningDynamoDbLocal | undefined;
  const needsDdb = args.only.some((s) => s !== 'bundles');
  try {
    if (needsDdb) ddb = await startDynamoDbLocal();
    for (const name of args.only) {
      const s0 = performance.now();
      console.log(`\n== ${name}${args.quick ? ' (quick)' : ''} ==`);
      try {
        sections[name] = await runSection(name, args, ddb?.endpoint ?? '');
      } catch (err) {
        // One broken benchmark must not hide the figures of the others.
        console.error(`${name} failed: ${(err as Error).stack ?? err}`);
        sections[name] = { error: (err as Error).message };
        process.exitCode = 1;
      }
      console.log(`  (${name}: ${((performance.now() - s0) / 1000).toFixed(1)} s)`);
    }
  } finally {
    await ddb?.stop();
  }
  const wallSeconds = Math.round((performance.now() - t0) / 100) / 10;
  const file = writeResults(sections, { quick: args.quick, argv, wallSeconds });
  console.log(`\nwrote ${file} (${wallSeconds} s)`);
}

async function runSection(name: SectionName, args: ReturnType<typeof parseArgs>, dynamodbEndpoint: string): Promise<Section> {
  switch (name) {
    case 'fanout':
      return (await import('./fanout')).benchFanout({ quick: args.quick, dynamodbEndpoint, variants: args.variants, profile: args.profile, tlsCaDir: CA_DIR });
    case 'fanout-faults':
      return (await import('./fanout-faults')).benchFanoutFaults({ quick: args.quick, dynamodbEndpoint });
    case 'quota':
      return (await import('./quota')).benchQuota({ quick: args.quick, dynamodbEndpoint });
    case 'largeTopic':
      return (await import('./large-topic')).benchLargeTopic({ quick: args.quick, dynamodbEndpoint });
    case 'e2e':
      return (await import('./e2e')).benchE2e({ quick: args.quick, dynamodbEndpoint });
    case 'agent':
      return (await import('./agent')).benchAgent({ quick: args.quick, dynamodbEndpoint, profile: args.profile });
    case 'bundles':
      return (await import('./bundles')).benchBundles({ quick: args.quick });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
