// Mocha runs TypeScript through tsx's ESM loader. `forbid-only` keeps a stray `.only` from
// silently shrinking the suite in CI; `forbid-pending` does the same for skips (a test that
// cannot run here fails, there is no opt-in: see README, Testing); `fail-zero` fails a run
// that found no test.
module.exports = {
  'node-option': ['import=tsx'],
  require: ['test/support/hooks.ts'],
  extension: ['ts'],
  timeout: 30000,
  'forbid-only': true,
  'forbid-pending': true,
  'fail-zero': true,
  reporter: 'test/support/reporter.cjs',
};
