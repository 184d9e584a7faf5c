import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { SCIFACT_DIR } from '../support/shared-fixtures.js';

it('npm run bench -- --quick runs and writes every figure (no timing is asserted)', async () => {
  const work = mkdtempSync(join(tmpdir(), 'bisearch-bench-'));
  try {
    const out = join(work, 'bench.json');
    const { stdout } = await promisify(execFile)(
      'npx',
      [
        'tsx',
        'test/bench/run-bench.ts',
        '--quick',
        '--dataset',
        SCIFACT_DIR,
        '--work-dir',
        work,
        '--out',
        out,
      ],
      { env: { ...process.env, AWS_SDK_JS_SUPPRESS_NODE_DEPRECATION_WARNING: '1' } },
    );
    expect(stdout).toMatch(/\| HNSW top-10 \| [\d.]+ \|/);
    const results = JSON.parse(readFileSync(out, 'utf8'));
    expect(results.settings).toMatchObject({ quick: true, documents: 300, queries: 30 });
    for (const figure of [
      results.search.hnswMs.p50,
      results.search.exactMs.p99,
      results.embedding.passagesPerSecond.batch32,
    ]) {
      expect(Number.isFinite(figure) && figure > 0).toBe(true);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}, 180_000);
