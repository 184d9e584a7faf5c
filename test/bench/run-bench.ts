/**
 * `npm run bench [-- --quick]`: a first speed baseline of the retrieval core, with medians and
 * ratios measured side by side in one run (this machine is shared and noisy). Vectors are real:
 * SciFact passages embedded with the resolved model (cached by content hash under .bisearch/eval).
 * Never asserts timings; the full benchmark suite is tracked in its own issue.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { readBeirDataset } from '../../functions/adapters/beir-dataset.js';
import { FileVectorCache } from '../../functions/adapters/file-vector-cache.js';
import { resolveModelDirectory } from '../../functions/adapters/model-resolution.js';
import { OnnxEmbedder } from '../../functions/adapters/onnx-embedder.js';
import { FileSnapshot, writeSnapshot } from '../../functions/adapters/snapshot-files.js';
import { chunkDocuments, embedChunks } from '../../functions/core/indexing.js';
import { SearchEngine } from '../../functions/core/search-engine.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    dataset: { type: 'string', default: '../shared/datasets/scifact' },
    'work-dir': { type: 'string', default: '.bisearch/eval' },
    out: { type: 'string' },
  },
});
const documents = values.quick ? 300 : 5_183;
const queries = values.quick ? 30 : 300;

/** Percentile (nearest rank) of a sample, in the sample's unit. */
function percentile(sample: number[], p: number): number {
  const sorted = [...sample].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}
const summary = (sample: number[]) => ({
  p50: percentile(sample, 50),
  p95: percentile(sample, 95),
  p99: percentile(sample, 99),
});
async function time<T>(work: () => Promise<T> | T): Promise<[T, number]> {
  const started = performance.now();
  const result = await work();
  return [result, performance.now() - started];
}
const log = (line: string) => process.stderr.write(`${line}\n`);

const dataset = readBeirDataset(resolve(values.dataset));
const corpus = dataset.corpus.slice(0, documents);
const queryTexts = [...dataset.queries.values()].slice(0, queries);
const model = await resolveModelDirectory();
const embedder = await OnnxEmbedder.load(model.directory);
const chunks = chunkDocuments(corpus, embedder);
log(
  `bench: ${corpus.length} documents, ${chunks.length} chunks, ${queryTexts.length} queries, model ${embedder.space.modelId}`,
);

// Embedding: single-query latency, and passage throughput by batch size on the same 256 passages.
const singleQuery: number[] = [];
for (const text of queryTexts) singleQuery.push((await time(() => embedder.embedQuery(text)))[1]);
const passages = chunks.slice(0, 256).map((chunk) => `${chunk.title ?? ''} ${chunk.text}`);
const throughput: Record<string, number> = {};
for (const batchSize of [1, 8, 32]) {
  const batched = await OnnxEmbedder.load(model.directory, { batchSize });
  const [, ms] = await time(() => batched.embedDocuments(passages));
  throughput[`batch${batchSize}`] = passages.length / (ms / 1000);
  await batched.dispose();
}

// Search: HNSW vs exact on the same snapshot and query vectors, then the whole hybrid path.
const cache = FileVectorCache.open(join(resolve(values['work-dir']), 'embeddings'), embedder.space);
const embedded = await embedChunks(chunks, embedder, { cache });
const snapshotParent = join(resolve(values['work-dir']), 'bench-snapshots');
const { directory } = await writeSnapshot(snapshotParent, { chunks: embedded, space: embedder.space });
const snapshot = await FileSnapshot.open(directory);
const vectors = await Promise.all(queryTexts.map((text) => embedder.embedQuery(text)));
const hnsw: number[] = [];
const exact: number[] = [];
for (const vector of vectors) {
  hnsw.push((await time(() => snapshot.searchApproximate(vector, 10)))[1]);
  exact.push((await time(() => snapshot.searchExact(vector, 10)))[1]);
}
const engine = new SearchEngine(snapshot, embedder);
const hybridSearch: number[] = [];
const hybridTotal: number[] = [];
for (const text of queryTexts) {
  const response = await engine.search({ query: text, k: 10 });
  hybridSearch.push(response.timingsMs.search);
  hybridTotal.push(response.timingsMs.total);
}
await embedder.dispose();

const results = {
  createdAt: new Date().toISOString(),
  machine: { cores: availableParallelism(), cpu: cpus()[0]?.model ?? 'unknown', node: process.version },
  settings: {
    quick: values.quick,
    documents: corpus.length,
    chunks: chunks.length,
    queries: queryTexts.length,
    model: embedder.space,
    hnsw: snapshot.manifest.index,
  },
  embedding: {
    singleQueryMs: summary(singleQuery),
    passagesPerSecond: throughput,
    batch32OverBatch1: (throughput.batch32 ?? 0) / (throughput.batch1 ?? 1),
  },
  search: {
    hnswMs: summary(hnsw),
    exactMs: summary(exact),
    exactOverHnswP50: percentile(exact, 50) / percentile(hnsw, 50),
    hybridSearchMs: summary(hybridSearch),
    hybridTotalMs: summary(hybridTotal),
  },
};
const out =
  values.out ??
  join(
    'test',
    'bench',
    'results',
    `${results.createdAt.replace(/[:.]/g, '-')}${values.quick ? '-quick' : ''}.json`,
  );
mkdirSync(resolve(out, '..'), { recursive: true });
writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
const ms = (value: number) => value.toFixed(3);
process.stdout.write(
  [
    `bisearch bench (${results.settings.chunks} chunks, ${results.settings.queries} queries, ${results.machine.cores} cores, ${results.machine.cpu})`,
    '| measurement | p50 ms | p95 ms | p99 ms |',
    '|---|---|---|---|',
    ...(
      [
        ['query embedding', results.embedding.singleQueryMs],
        ['HNSW top-10', results.search.hnswMs],
        ['exact top-10', results.search.exactMs],
        ['hybrid search (no embedding)', results.search.hybridSearchMs],
        ['hybrid total', results.search.hybridTotalMs],
      ] as const
    ).map(([name, s]) => `| ${name} | ${ms(s.p50)} | ${ms(s.p95)} | ${ms(s.p99)} |`),
    `exact / HNSW at p50: ${results.search.exactOverHnswP50.toFixed(1)}×`,
    `passages/s: ${Object.entries(throughput)
      .map(([k, v]) => `${k} ${v.toFixed(1)}`)
      .join(', ')} (batch 32 / batch 1: ${results.embedding.batch32OverBatch1.toFixed(2)}×)`,
    `results: ${out}`,
    '',
  ].join('\n'),
);
