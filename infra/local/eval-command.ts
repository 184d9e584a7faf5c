/**
 * `npm run eval -- [options]` (also `bisearch eval`): retrieval quality of bisearch on a BEIR dataset (default SciFact).
 * Prints nDCG@10, Recall@10, Recall@100, MRR@10 per mode and the HNSW-vs-exact comparison, and
 * writes a JSON report.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { pairedRandomizationTest, type RetrievalMetrics } from '../../functions/core/eval-metrics.js';
import type { SearchMode } from '../../functions/core/search-engine.js';
import { type EvaluationReport, evaluate } from './evaluation.js';

const HELP = `Usage: npm run eval -- [options]

  --dataset DIR        BEIR dataset directory (default ../shared/datasets/scifact)
  --mode MODE          lexical | dense | hybrid | all (default all)
  --ann | --exact      dense part by HNSW (default) or brute force
  --chunking KIND      window (default: overlapping windows of the model's max tokens)
                       | truncate (one chunk per document, cut at max tokens: the BEIR convention)
  --lexical-unit UNIT  document (default: BM25 over whole documents, title weighted twice)
                       | chunk (BM25 over each chunk, as before)
  --fusion KIND        normalized (default) | rrf
  --dense-weight W     dense weight of normalized fusion, lexical weight 1 (default 0.2)
  --bm25 K1,B          BM25 parameters (default 0.9,0.4, Anserini's)
  --lexical-floor N    rank of the BM25 score that is the floor of min–max fusion (default 1000)
  --dtype TYPE         HNSW vector type f32 | f16 (default) | i8
  --limit N            only the first N judged queries
  --corpus-limit N     only N documents (all judged ones for the kept queries, then others)
  --model-dir DIR      model directory (default: resolution order of the engine)
  --work-dir DIR       embedding cache and snapshots (default .bisearch/eval)
  --keep-identical-ids keep hits whose document id is the query id (dropped by default, as BEIR
                       and MTEB do)
  --compare FILE       an earlier JSON report: per run, the nDCG@10 difference over the queries
                       both evaluated and a paired randomisation test (10,000 sign flips)
  --out FILE           JSON report path (default test/eval/reports/<time>-<mode>.json)
  --json               print the JSON report instead of the table
  --help`;

/** A bad command line: the message and usage are printed and the process exits with 2. */
class UsageError extends Error {}

/** Run the evaluation with these arguments (`npm run eval -- …`, `bisearch eval …`). */
export async function runEvalCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      dataset: { type: 'string', default: '../shared/datasets/scifact' },
      mode: { type: 'string', default: 'all' },
      ann: { type: 'boolean', default: false },
      exact: { type: 'boolean', default: false },
      chunking: { type: 'string', default: 'window' },
      fusion: { type: 'string', default: 'normalized' },
      'lexical-unit': { type: 'string', default: 'document' },
      'lexical-floor': { type: 'string' },
      bm25: { type: 'string' },
      'dense-weight': { type: 'string' },
      dtype: { type: 'string', default: 'f16' },
      limit: { type: 'string' },
      'corpus-limit': { type: 'string' },
      'model-dir': { type: 'string' },
      'work-dir': { type: 'string', default: '.bisearch/eval' },
      out: { type: 'string' },
      'keep-identical-ids': { type: 'boolean', default: false },
      compare: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });

  function fail(message: string): never {
    process.stderr.write(`eval: ${message}\n\n${HELP}\n`);
    throw new UsageError(message);
  }

  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return;
  }
  const modes: SearchMode[] =
    values.mode === 'all' ? ['lexical', 'dense', 'hybrid'] : [values.mode as SearchMode];
  if (!modes.every((mode) => ['lexical', 'dense', 'hybrid'].includes(mode)))
    fail(`unknown --mode ${values.mode}`);
  if (values.ann && values.exact) fail('--ann and --exact exclude each other');
  if (!['window', 'truncate'].includes(values.chunking)) fail(`unknown --chunking ${values.chunking}`);
  if (!['rrf', 'normalized'].includes(values.fusion)) fail(`unknown --fusion ${values.fusion}`);
  if (!['document', 'chunk'].includes(values['lexical-unit']))
    fail(`unknown --lexical-unit ${values['lexical-unit']}`);
  if (!['f32', 'f16', 'i8'].includes(values.dtype)) fail(`unknown --dtype ${values.dtype}`);
  const positive = (name: string, value: string | undefined) => {
    if (value === undefined) return undefined;
    const number = Number(value);
    if (!Number.isInteger(number) || number < 1) fail(`--${name} must be a positive integer`);
    return number;
  };
  const queryLimit = positive('limit', values.limit);
  const denseWeight = values['dense-weight'] === undefined ? undefined : Number(values['dense-weight']);
  if (denseWeight !== undefined && !(denseWeight >= 0)) fail('--dense-weight must be a number >= 0');
  const corpusLimit = positive('corpus-limit', values['corpus-limit']);
  const lexicalFloorRank = positive('lexical-floor', values['lexical-floor']);
  const bm25Values = values.bm25?.split(',').map(Number);
  if (bm25Values && (bm25Values.length !== 2 || !bm25Values.every((value) => value >= 0)))
    fail('--bm25 must be K1,B with two numbers >= 0');
  const bm25 = bm25Values ? { k1: bm25Values[0] as number, b: bm25Values[1] as number } : undefined;

  let baseline: EvaluationReport | undefined;
  if (values.compare) {
    try {
      baseline = JSON.parse(readFileSync(values.compare, 'utf8')) as EvaluationReport;
    } catch (error) {
      fail(`--compare ${values.compare}: ${(error as Error).message}`);
    }
    if (!baseline?.perQuery)
      fail(`--compare ${values.compare}: the report has no per-query scores (made before they existed)`);
  }
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const evaluated = await evaluate(
    {
      datasetDir: resolve(values.dataset),
      modes,
      search: values.exact ? 'exact' : 'ann',
      chunking: values.chunking as 'window' | 'truncate',
      fusion: values.fusion as 'rrf' | 'normalized',
      lexicalUnit: values['lexical-unit'] as 'document' | 'chunk',
      ...(lexicalFloorRank !== undefined ? { lexicalFloorRank } : {}),
      ...(bm25 ? { bm25 } : {}),
      ...(denseWeight !== undefined ? { denseWeight } : {}),
      hnsw: { dtype: values.dtype as 'f32' | 'f16' | 'i8' },
      ...(queryLimit !== undefined ? { queryLimit } : {}),
      ...(corpusLimit !== undefined ? { corpusLimit } : {}),
      ...(values['model-dir'] ? { modelDir: values['model-dir'] } : {}),
      keepIdenticalIds: values['keep-identical-ids'],
      workDir: resolve(values['work-dir']),
      progress: Boolean(process.stderr.isTTY),
    },
    log,
  );
  const comparison = baseline
    ? Object.fromEntries(
        Object.keys(evaluated.perQuery)
          .filter((name) => baseline?.perQuery[name])
          .map((name) => [
            name,
            pairedRandomizationTest(baseline?.perQuery[name] ?? {}, evaluated.perQuery[name] ?? {}),
          ]),
      )
    : undefined;
  const report = {
    ...evaluated,
    ...(comparison ? { comparison: { baseline: values.compare, ndcgAt10: comparison } } : {}),
  };

  const out =
    values.out ??
    join(
      'test',
      'eval',
      'reports',
      `${report.createdAt.replace(/[:.]/g, '-')}-${values.mode}-${values.chunking}.json`,
    );
  mkdirSync(resolve(out, '..'), { recursive: true });
  writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);

  if (values.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } else {
    const format = (value: number) => value.toFixed(4);
    const rows: Array<[string, RetrievalMetrics]> = [
      ...Object.entries(report.metrics).map(([mode, m]): [string, RetrievalMetrics] => [
        `${mode}${mode === 'lexical' ? '' : ` (${report.settings.search})`}`,
        m,
      ]),
      ['dense (exact)', report.dense.exact],
      ['dense (hnsw)', report.dense.ann],
    ];
    process.stdout.write(
      `\n${report.corpus.queries} queries, ${report.corpus.documents} documents, ${report.corpus.chunks} chunks (${report.settings.chunking}), model ${report.model.modelId}\n\n`,
    );
    process.stdout.write('| run | nDCG@10 | Recall@10 | Recall@100 | MRR@10 |\n|---|---|---|---|---|\n');
    for (const [name, m] of rows) {
      process.stdout.write(
        `| ${name} | ${format(m.ndcgAt10)} | ${format(m.recallAt10)} | ${format(m.recallAt100)} | ${format(m.mrrAt10)} |\n`,
      );
    }
    process.stdout.write(
      `\nANN recall@10 vs exact (chunks): ${format(report.dense.annRecallAt10)}  (HNSW ${report.settings.dtype}, M=${report.settings.hnsw?.connectivity}, ef=${report.settings.hnsw?.expansionSearch})\n`,
    );
    const tuning = report.dense.annTuning;
    if (tuning)
      process.stdout.write(
        `ef chosen at build: ${tuning.expansionSearch} for target ${tuning.target} (${tuning.reached ? 'reached' : 'NOT reached'}; held-out recall@10 ${format(tuning.heldOutRecall)}, M=${tuning.connectivity}, ${tuning.seconds.toFixed(1)} s)\n`,
      );
    if (report.skipped.queries + report.skipped.corpus + report.skipped.qrels > 0)
      process.stdout.write(
        `skipped: ${report.skipped.queries} queries, ${report.skipped.corpus} corpus lines, ${report.skipped.qrels} qrels lines (reasons in the report)\n`,
      );
    if (comparison) {
      process.stdout.write(`\nagainst ${values.compare} (nDCG@10, paired randomisation test):\n`);
      for (const [name, test] of Object.entries(comparison))
        process.stdout.write(
          `  ${name}: ${test.meanDifference >= 0 ? '+' : ''}${test.meanDifference.toFixed(4)} over ${test.queries} queries, p = ${test.pValue.toFixed(4)}\n`,
        );
    }
    process.stdout.write(
      `embedding ${report.seconds.embed.toFixed(1)} s, build ${report.seconds.build.toFixed(1)} s, queries ${report.seconds.queries.toFixed(1)} s\nreport: ${out}\n`,
    );
  }
}

if (fileURLToPath(import.meta.url) === resolve(process.argv[1] ?? '')) {
  runEvalCommand(process.argv.slice(2)).catch((error: Error & { code?: string }) => {
    if (error instanceof UsageError) process.exit(2);
    if (error.code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`eval: ${error.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`eval: ${error.message}\n`);
    process.exit(1);
  });
}
