// Mocha runs TypeScript through tsx's ESM loader. `forbid-only` keeps a stray `.only` from
// silently shrinking the suite in CI.
module.exports = {
  'node-option': ['import=tsx'],
  require: ['test/support/hooks.ts'],
  extension: ['ts'],
  timeout: 30000,
  'forbid-only': true,
  reporter: 'test/support/reporter.cjs',
};
