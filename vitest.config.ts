import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts', 'test/support/web-build.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // two cores: keep the number of test files running at once small
    maxWorkers: 2,
    pool: 'forks',
    // the JSON report lets CI print a plain "N passed, N failed" line
    reporters: ['default', ['json', { outputFile: 'test-results/vitest.json' }]],
  },
});
