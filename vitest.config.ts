import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { defineConfig } from 'vitest/config';

/**
 * The shared models and datasets (`../shared` beside the checkout; `BISEARCH_SHARED_DIR` to point
 * elsewhere, as test/support/shared-fixtures.ts does). Without them, the test files that need
 * them (those importing the shared fixtures, directly or through a support module) are left out
 * with the reason printed, and the rest run.
 */
const sharedDirectory = resolve(process.env.BISEARCH_SHARED_DIR ?? '../shared');
const sharedPresent = existsSync(join(sharedDirectory, 'models', 'use-lite'));

function filesNeedingShared(): string[] {
  const read = (path: string) => readFileSync(path, 'utf8');
  const supportFiles = readdirSync('test/support').filter((name) => name.endsWith('.ts'));
  // local-process starts `npm start`, whose model is ../shared's use-lite on a machine without the
  // Hugging Face Hub (elsewhere it downloads the production model, 23 MB).
  const needing = new Set(['shared-fixtures', 'local-process']);
  // Support modules that reach the fixtures through other support modules.
  for (let grew = true; grew; ) {
    grew = false;
    for (const name of supportFiles) {
      const module = name.replace(/\.ts$/, '');
      if (needing.has(module)) continue;
      const source = read(join('test/support', name));
      if ([...needing].some((other) => source.includes(`./${other}.js'`))) {
        needing.add(module);
        grew = true;
      }
    }
  }
  const tests: string[] = [];
  for (const folder of readdirSync('test')) {
    if (folder === 'support' || !existsSync(join('test', folder))) continue;
    for (const name of readdirSync(join('test', folder), { recursive: true }) as string[]) {
      if (!name.endsWith('.test.ts')) continue;
      const path = join('test', folder, name);
      const source = read(path);
      if ([...needing].some((module) => source.includes(`support/${module}.js'`))) tests.push(path);
    }
  }
  return tests;
}

const skipped = sharedPresent ? [] : filesNeedingShared();
if (skipped.length > 0)
  console.warn(
    `bisearch: ${skipped.length} test files skipped: they need the shared models and datasets at ${sharedDirectory} (see README "Quick start"): ${skipped.join(', ')}`,
  );

export default defineConfig({
  test: {
    // Native addons (onnxruntime-node, usearch) are not safe to load into worker threads
    // that get recycled, so every test file runs in its own forked process.
    pool: 'forks',
    include: ['test/**/*.test.ts'],
    exclude: ['**/node_modules/**', ...skipped],
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
