// Spec output for people, plus the counts for scripts/test.mjs, which prints CI's closing line.
const fs = require('node:fs');
const Mocha = require('mocha');
const { EVENT_RUN_END } = Mocha.Runner.constants;

class CountingSpec extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once(EVENT_RUN_END, () => {
      const s = this.stats;
      const file = process.env.TEST_SUMMARY_FILE;
      // The failures' titles and first non-blank error line travel too: the runner repeats them just above
      // the closing line, where a CI log that keeps only its tail still shows what failed.
      const failures = this.failures.map((t) => ({
        title: t.fullTitle(),
        file: t.file ? require('node:path').relative(process.cwd(), t.file) : undefined,
        error: String(t.err?.message ?? t.err ?? '').split('\n').map((l) => l.trim()).filter(Boolean)[0]?.slice(0, 300) ?? '',
      }));
      if (file) fs.writeFileSync(file, JSON.stringify({ passed: s.passes, failed: s.failures, skipped: s.pending, failures }));
    });
  }
}
module.exports = CountingSpec;
