import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { readBeirDataset } from '../../functions/adapters/datasets/beir-dataset.js';
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
    // The build's ef choice for the recall target is in the report beside the real queries' recall.
    expect(report.dense.annTuning).toMatchObject({
      target: 0.98,
      reached: true,
      expansionSearch: report.settings.hnsw?.expansionSearch,
    });
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

/** A small BEIR-format dataset with what real ones contain: CRLF, graded and TREC qrels, bad lines, self-hits. */
function hostileDataset(): string {
  const directory = join(work, 'hostile');
  mkdirSync(join(directory, 'qrels'), { recursive: true });
  const corpus = [
    { _id: 'd1', title: 'Passwords', text: 'Reset a forgotten password from the login page.' },
    { _id: 'd2', title: 'Invoices', text: 'Download invoices as PDF from the billing page.' },
    { _id: 'd3', title: 'Shipping', text: 'Parcels are shipped within two business days.' },
    { _id: 'q-self', title: 'Refunds', text: 'How do refunds work for returned parcels?' },
    { _id: 'd5', title: 'Refund policy', text: 'Refunds are paid within five days of a returned parcel.' },
  ];
  writeFileSync(
    join(directory, 'corpus.jsonl'),
    `${[...corpus.map((d) => JSON.stringify(d)), '{"_id": "broken", "text": '].join('\r\n')}\r\n`,
  );
  const queries = [
    JSON.stringify({ _id: 'q1', text: 'forgot my password' }),
    JSON.stringify({ _id: 'q2', text: `${'Where is my invoice for the last order? '.repeat(130)}billing` }),
    JSON.stringify({ _id: 'q-self', text: 'How do refunds work for returned parcels?' }),
    JSON.stringify({ _id: 'q-blank', text: '   ' }),
    '{"_id": "q-bad", "text": ',
    JSON.stringify({ _id: 'q-notext' }),
  ];
  writeFileSync(join(directory, 'queries.jsonl'), `${queries.join('\r\n')}\r\n`);
  writeFileSync(
    join(directory, 'qrels', 'test.tsv'),
    [
      'query-id\tcorpus-id\tscore',
      'q1\td1\t2',
      'q1\td2\t0',
      'q2\t0\td2\t1',
      'q-self\td5\t1',
      'q-blank\td3\t1',
      'q1\tmissing-grade',
      '',
    ].join('\r\n'),
  );
  return directory;
}

describe('npm run eval on any BEIR-format dataset', () => {
  it('reads CRLF files, graded and TREC qrels; bad lines and failing queries are skipped with reasons', () => {
    const dataset = readBeirDataset(hostileDataset());
    expect(dataset.corpus.map((document) => document.id)).toEqual(['d1', 'd2', 'd3', 'q-self', 'd5']);
    expect([...(dataset.qrels.get('q1') ?? [])]).toEqual([
      ['d1', 2],
      ['d2', 0],
    ]);
    expect(dataset.qrels.get('q2')?.get('d2')).toBe(1);
    expect(dataset.skipped.corpus).toHaveLength(1);
    expect(dataset.skipped.qrels).toEqual([{ line: 7, reason: expect.stringMatching(/integer score/) }]);
    expect(dataset.skipped.queries.map((query) => query.line)).toEqual([5, 6]);
    expect([...dataset.queries.keys()]).toEqual(['q1', 'q2', 'q-self', 'q-blank']);
  });

  it('drops self-hits unless asked, reports per-query scores and skips, and compares two reports with a paired test', async () => {
    const directory = hostileDataset();
    const first = join(work, 'hostile-1.json');
    const second = join(work, 'hostile-2.json');
    const args = ['--dataset', directory, '--mode', 'lexical', '--chunking', 'truncate', '--json'];
    const dropped = JSON.parse(
      (await evalCli(...args, '--out', first)).stdout.slice(0),
    ) as EvaluationReport & { comparison?: unknown };
    expect(dropped.skipped).toMatchObject({ corpus: 1, qrels: 1, queries: 3 });
    expect(dropped.skipped.examples.some((example) => example.queryId === 'q-blank')).toBe(true);
    expect(dropped.corpus.queries).toBe(3);
    expect(Object.keys(dropped.perQuery.lexical ?? {}).sort()).toEqual(['q-self', 'q1', 'q2']);
    expect(dropped.perQuery.lexical?.q1).toBe(1);
    const kept = JSON.parse(
      (await evalCli(...args, '--keep-identical-ids', '--out', second, '--compare', first)).stdout,
    ) as EvaluationReport & { comparison: { ndcgAt10: Record<string, { queries: number; pValue: number }> } };
    // With the self-hit kept, q-self's own corpus entry takes rank 1 ahead of d5.
    expect(kept.perQuery.lexical?.['q-self']).toBeLessThan(dropped.perQuery.lexical?.['q-self'] ?? 0);
    expect(kept.comparison.ndcgAt10.lexical).toMatchObject({ queries: 3, pValue: expect.any(Number) });
  }, 180_000);
});
