import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Native addons (onnxruntime-node, usearch) are not safe to load into worker threads
    // that get recycled, so every test file runs in its own forked process.
    pool: 'forks',
    include: ['test/**/*.test.ts'],
    reporters: ['default', './test/support/summary-reporter.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // The AWS SDK warns on Node 20 (older releases read the first variable, newer the second).
    env: {
      AWS_SDK_JS_SUPPRESS_NODE_DEPRECATION_WARNING: '1',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
  },
});
