import { expect } from 'chai';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The real test command (scripts/test.mjs) in a child process, fed the deliberately bad spec
 * files under test/fixtures/runner/ (only a path argument runs them). Each bad run must end
 * non-zero with a closing line that counts a failure, the line CI reads.
 */
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

interface Run {
  code: number | null;
  output: string;
  lastLine: string;
}

// Never rejects: a stored promise that rejected before its test awaits it would be unhandled.
function runTestCommand(...args: string[]): Promise<Run> {
  return runTestCommandWith({}, ...args);
}

function runTestCommandWith(extraEnv: Record<string, string>, ...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const env = { ...process.env, ...extraEnv };
    delete env.TEST_SUMMARY_FILE; // this mocha's own summary, not the child's
    const child = spawn(process.execPath, ['scripts/test.mjs', ...args], { cwd: repo, env });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', (e) => resolve({ code: null, output: `${output}\n${e.message}`, lastLine: '' }));
    child.on('close', (code) => {
      const lines = output.trim().split('\n');
      resolve({ code, output, lastLine: lines[lines.length - 1] });
    });
  });
}

const fixture = (name: string) => `test/fixtures/runner/${name}.fixture.ts`;

/** The open-handle fixture's group timeout: its run must end well within it (see `before`). */
const OPEN_HANDLE_GROUP_TIMEOUT_MS = 30_000;

describe('the test command (scripts/test.mjs) refuses a run that cannot be trusted', () => {
  // Started together: each is a mocha process of about a second.
  const runs = new Map<string, Promise<Run>>();
  before(() => {
    for (const name of ['passing', 'unhandled-rejection', 'late-rejection', 'uncaught-exception', 'exit-zero', 'pending']) {
      // The sound one is named with a leading ./, which must mean the same file.
      runs.set(name, runTestCommand(name === 'passing' ? `./${fixture(name)}` : fixture(name)));
    }
    // The group timeout counts from mocha's start, so it must cover the fixture's whole run (tsx
    // start-up, seven of these mochas at once on a loaded host took more than 8 s) before the
    // open timer is what keeps it alive: only then is its pass counted beside the kill.
    runs.set('open-handle', runTestCommandWith({ TEST_GROUP_TIMEOUT_MS: String(OPEN_HANDLE_GROUP_TIMEOUT_MS) }, fixture('open-handle')));
  });
  after(async () => {
    await Promise.all(runs.values());
  });
  const run = (name: string) => runs.get(name)!;

  it('passes a sound fixture (named as ./test/…) and closes with its counts, so the bad ones below fail for their own fault', async function () {
    this.timeout(60_000);
    const r = await run('passing');
    expect(r.lastLine, r.output).to.equal('1 passed, 0 failed, 0 skipped');
    expect(r.code, r.output).to.equal(0);
  });

  it('fails a test whose un-awaited async code rejects with a failing expectation', async function () {
    this.timeout(60_000);
    const r = await run('unhandled-rejection');
    expect(r.output).to.include("Uncaught AssertionError: expected 'un-awaited' to equal 'awaited'");
    // Mocha may count the test once more when its own promise settles after the failure
    // ("done() called multiple times"), depending on timing: at least one failure, no pass.
    expect(r.lastLine, r.output).to.match(/^0 passed, [12] failed, 0 skipped$/);
    expect(r.code, r.output).to.equal(1);
  });

  it('fails a run when a promise rejects unhandled after the last test', async function () {
    this.timeout(60_000);
    const r = await run('late-rejection');
    expect(r.output).to.include('rejected after the run');
    // Counted by the exit code after the summary, or, on a machine so loaded that the run has
    // not ended yet, by mocha as an error outside any test: either way the run fails.
    expect(r.lastLine, r.output).to.equal('1 passed, 1 failed, 0 skipped');
    expect(r.code, r.output).to.equal(1);
  });

  it('fails a test during which a timer throws', async function () {
    this.timeout(60_000);
    const r = await run('uncaught-exception');
    expect(r.output).to.include('Uncaught Error: thrown from a timer');
    expect(r.lastLine, r.output).to.match(/^0 passed, [12] failed, 0 skipped$/); // as above
    expect(r.code, r.output).to.equal(1);
  });

  it('fails a run whose mocha exits 0 without writing its summary', async function () {
    this.timeout(60_000);
    const r = await run('exit-zero');
    expect(r.output).to.include('mocha ended (exit 0) without writing its summary');
    expect(r.lastLine, r.output).to.equal('0 passed, 1 failed, 0 skipped');
    expect(r.code, r.output).to.equal(1);
  });

  it('fails skipped tests, both it.skip and this.skip(): no test is skipped silently', async function () {
    this.timeout(60_000);
    const r = await run('pending');
    const [mochaSection, failedList] = r.output.split('\n# failed (2)\n');
    expect(mochaSection.match(/Pending test forbidden/g)).to.have.length(2);
    // Repeated above the closing line, with the file, for a CI log that keeps only its tail.
    expect(failedList.match(/^- .*\[test\/fixtures\/runner\/pending\.fixture\.ts\]: Pending test forbidden/gm), r.output).to.have.length(2);
    expect(r.lastLine, r.output).to.equal('1 passed, 2 failed, 0 skipped');
    expect(r.code, r.output).to.equal(1);
  });

  it('kills a mocha that does not exit after its run (a timer left open) and counts it as a failure, saying why', async function () {
    this.timeout(OPEN_HANDLE_GROUP_TIMEOUT_MS + 30_000);
    const r = await run('open-handle');
    expect(r.output).to.match(/mocha had not exited after [\d.]+ min \(a test left a timer or socket open\?\): killed, counted as a failure/);
    expect(r.lastLine, r.output).to.equal('1 passed, 1 failed, 0 skipped');
    expect(r.code, r.output).to.equal(1);
  });

  for (const [arg, why] of [
    ['test/unit/foundation/confg.test.ts', 'test/unit/foundation/confg.test.ts: no such file or folder'],
    ['tests/unit/foundation/config.test.ts', 'tests/unit/foundation/config.test.ts is in no test group'],
    ['test/integration/apigw/helpers.ts', 'test/integration/apigw/helpers.ts is not a test file'],
    ['test/infra/support', 'test/infra/support holds no test file'],
    ['--grep', 'unknown option --grep'],
  ]) {
    it(`refuses the argument ${arg}, saying why, without running anything`, async () => {
      const r = await runTestCommand(arg);
      expect(r.output).to.include(`# test command refused: ${why}`);
      expect(r.output, 'no section but the refusal').not.to.match(/^# (?!test command refused)/m);
      expect(r.lastLine, r.output).to.equal('0 passed, 1 failed, 0 skipped');
      expect(r.code, r.output).to.equal(1);
    });
  }
});
