import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import type { EvaluationReport } from '../../infra/local/evaluation.js';
import { SCIFACT_DIR } from '../support/shared-fixtures.js';

const run = promisify(execFile);
const work = mkdtempSync(join(tmpdir(), 'bisearch-eval-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** `npm run eval` as users call it, on a SciFact subset small enough for the test suite. */
async function evalCli(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(
    'npx',
    ['tsx', 'infra/local/eval-command.ts', '--dataset', SCIFACT_DIR, '--work-dir', work, ...args],
    {
      env: { ...process.env, AWS_SDK_JS_SUPPRESS_NODE_DEPRECATION_WARNING: '1' },
      maxBuffer: 16 * 1024 * 1024,
    },
  );
}

describe('npm run eval (SciFact subset)', () => {
  it('reports every metric per mode, exact vs HNSW, and writes the JSON report', async () => {
    const out = join(work, 'report.json');
    const { stdout } = await evalCli(
      '--limit',
      '12',
      '--corpus-limit',
      '120',
      '--chunking',
      'truncate',
      '--out',
      out,
      '--json',
    );
    const report = JSON.parse(stdout) as EvaluationReport;
    expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual(report);
    expect(report.corpus).toEqual({ documents: 120, chunks: 120, queries: 12 });
    expect(report.model).toMatchObject({ modelId: 'use-lite', dimensions: 512, source: 'bundled' });
    expect(Object.keys(report.metrics).sort()).toEqual(['dense', 'hybrid', 'lexical']);
    for (const metrics of [...Object.values(report.metrics), report.dense.exact, report.dense.ann]) {
      expect(metrics?.queries).toBe(12);
      for (const value of [metrics?.ndcgAt10, metrics?.recallAt10, metrics?.recallAt100, metrics?.mrrAt10]) {
        expect(value).toBeGreaterThanOrEqual(0);
        expect(value).toBeLessThanOrEqual(1);
      }
    }
    // With 120 documents every relevant one is in the corpus: BM25 finds most of them.
    expect(report.metrics.lexical?.ndcgAt10).toBeGreaterThan(0.6);
    expect(report.metrics.hybrid?.ndcgAt10).toBeGreaterThan(report.metrics.dense?.ndcgAt10 ?? 1);
    expect(report.dense.annRecallAt10).toBeGreaterThanOrEqual(0.95);
    expect(Math.abs(report.dense.ann.ndcgAt10 - report.dense.exact.ndcgAt10)).toBeLessThanOrEqual(0.02);
  });

  it('prints the markdown table for a windowed, exact-search hybrid run', async () => {
    const { stdout } = await evalCli(
      '--limit',
      '5',
      '--corpus-limit',
      '40',
      '--mode',
      'hybrid',
      '--exact',
      '--out',
      join(work, 'table.json'),
    );
    expect(stdout).toMatch(/\| run \| nDCG@10 \| Recall@10 \| Recall@100 \| MRR@10 \|/);
    expect(stdout).toMatch(/\| hybrid \(exact\) \| 0\.\d{4} \|/);
    expect(stdout).toMatch(/ANN recall@10 vs exact \(chunks\): [01]\.\d{4}/);
    expect(stdout).toMatch(/\(window\)/);
  });

  it('is also `bisearch eval`', async () => {
    const { stdout } = await run(process.execPath, ['infra/local/bin/bisearch.mjs', 'eval', '--help']);
    expect(stdout).toMatch(/Usage: npm run eval -- \[options\]/);
    expect(stdout).toMatch(/--dense-weight W/);
  });

  it('rejects bad options with usage and exit code 2', async () => {
    const error = (await evalCli('--mode', 'fuzzy').catch((caught: unknown) => caught)) as {
      code: number;
      stderr: string;
    };
    expect(error.code).toBe(2);
    expect(error.stderr).toMatch(/unknown --mode fuzzy/);
    expect(error.stderr).toMatch(/Usage: npm run eval/);
  });
});
