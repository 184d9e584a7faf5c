import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { SingleBar } from 'cli-progress';
import { readBeirDataset } from '../../functions/adapters/datasets/beir-dataset.js';
import { FileVectorCache } from '../../functions/adapters/index/file-vector-cache.js';
import { FileSnapshot, writeSnapshot } from '../../functions/adapters/index/snapshot-files.js';
import type { HnswSettings } from '../../functions/adapters/index/usearch-index.js';
import { resolveModelDirectory } from '../../functions/adapters/model/model-resolution.js';
import { OnnxEmbedder } from '../../functions/adapters/model/onnx-embedder.js';
import type { SourceDocument } from '../../functions/core/documents.js';
import {
  evaluateRun,
  overlapAtK,
  perQueryNdcgAt10,
  type RetrievalMetrics,
} from '../../functions/core/eval-metrics.js';
import { chunkDocuments, embedChunks } from '../../functions/core/indexing.js';
import type { LexicalUnit } from '../../functions/core/lexical.js';
import {
  DEFAULT_FUSION_WEIGHTS,
  type FusionMethod,
  SearchEngine,
  type SearchMode,
} from '../../functions/core/search-engine.js';

export interface EvaluationOptions {
  readonly datasetDir: string;
  readonly modes: readonly SearchMode[];
  /** HNSW (`ann`) or brute force (`exact`) for the dense part of the reported modes. */
  readonly search: 'ann' | 'exact';
  /** `window`: chunk with overlap; `truncate`: one chunk per document, cut by the model (BEIR convention). */
  readonly chunking: 'window' | 'truncate';
  readonly fusion: FusionMethod;
  /** Rank of the BM25 score that is the floor of min–max fusion (default the engine's). */
  readonly lexicalFloorRank?: number;
  /** BM25 k1 and b (default the index's). */
  readonly bm25?: { k1: number; b: number };
  /** What a BM25 entry is: a whole document (default) or a chunk. */
  readonly lexicalUnit?: LexicalUnit;
  /** Dense weight of normalised fusion (lexical weight 1); default the engine's. */
  readonly denseWeight?: number;
  readonly hnsw?: Partial<HnswSettings>;
  /** Evaluate only the first N judged queries. */
  readonly queryLimit?: number;
  /**
   * Keep hits whose document id equals the query id. Default false: such hits are dropped, as
   * BEIR and MTEB do (datasets such as ArguAna and Quora hold the query itself in the corpus).
   */
  readonly keepIdenticalIds?: boolean;
  /** Keep only this many documents: every document judged for the kept queries, then the first others. */
  readonly corpusLimit?: number;
  readonly modelDir?: string;
  /** Embedding cache and snapshot directory. */
  readonly workDir: string;
  readonly progress: boolean;
}

export interface EvaluationReport {
  readonly dataset: string;
  readonly model: OnnxEmbedder['space'] & { directory: string; source: string };
  readonly settings: Omit<EvaluationOptions, 'workDir' | 'progress' | 'modelDir'> & {
    snapshotVersion: string;
    dtype: string;
  };
  readonly corpus: { documents: number; chunks: number; queries: number };
  /** Metrics per reported mode (dense part per `settings.search`). */
  readonly metrics: Partial<Record<SearchMode, RetrievalMetrics>>;
  /** Dense retrieval with exact and HNSW search, for the ANN comparison. */
  readonly dense: {
    exact: RetrievalMetrics;
    ann: RetrievalMetrics;
    /** Overlap of HNSW and exact top-10 chunks on the dataset's own queries. */
    annRecallAt10: number;
    /** What the build chose and measured for its recall target (manifest `recall`), if it tuned. */
    annTuning?: {
      target: number;
      expansionSearch: number;
      connectivity: number;
      heldOutRecall: number;
      reached: boolean;
      seconds: number;
    };
  };
  /** nDCG@10 of each evaluated query, per run (`lexical`, `dense`, `hybrid`, `dense-exact`, `dense-ann`). */
  readonly perQuery: Record<string, Record<string, number>>;
  /** What was left out and why: dataset lines, and queries whose search failed. */
  readonly skipped: {
    readonly corpus: number;
    readonly qrels: number;
    readonly queries: number;
    /** The first reasons (at most 20), with query ids or line numbers. */
    readonly examples: Array<{ file: string; line?: number; queryId?: string; reason: string }>;
  };
  readonly seconds: { embed: number; build: number; queries: number };
  readonly createdAt: string;
}

/** Evaluate bisearch retrieval on a BEIR dataset (see `npm run eval -- --help`). */
export async function evaluate(
  options: EvaluationOptions,
  log: (line: string) => void,
): Promise<EvaluationReport> {
  const dataset = readBeirDataset(options.datasetDir);
  for (const [file, lines] of Object.entries(dataset.skipped))
    if (lines.length > 0) log(`skipped ${lines.length} bad line(s) of ${file}; first: ${lines[0]?.reason}`);
  let queries = [...dataset.queries];
  if (options.queryLimit !== undefined) queries = queries.slice(0, options.queryLimit);
  const corpus = limitCorpus(
    dataset.corpus,
    queries.map(([id]) => id),
    dataset.qrels,
    options.corpusLimit,
  );
  const qrels = new Map(queries.map(([id]) => [id, dataset.qrels.get(id) ?? new Map<string, number>()]));

  const model = await resolveModelDirectory(options.modelDir ? { modelDir: options.modelDir } : {});
  const embedder = await OnnxEmbedder.load(model.directory);
  log(
    `model ${embedder.space.modelId} (${model.source}: ${model.directory}), ${embedder.space.dimensions}-d, ${embedder.space.pooling} pooling`,
  );

  const chunks = chunkDocuments(corpus, embedder, { strategy: options.chunking });
  log(
    `${corpus.length} documents → ${chunks.length} chunks (${options.chunking}, ≤ ${embedder.maxContentTokens} tokens), ${queries.length} queries`,
  );
  const cache = FileVectorCache.open(join(options.workDir, 'embeddings'), embedder.space);
  const embedStarted = performance.now();
  const embedded = await withProgress(options.progress, 'embedding chunks', (tick) =>
    embedChunks(chunks, embedder, { cache, onProgress: tick }),
  );
  const embedSeconds = (performance.now() - embedStarted) / 1000;

  const buildStarted = performance.now();
  const snapshotParent = join(options.workDir, 'snapshots');
  mkdirSync(snapshotParent, { recursive: true });
  const { directory, manifest } = await writeSnapshot(snapshotParent, {
    chunks: embedded,
    space: embedder.space,
    ...(options.hnsw ? { hnsw: options.hnsw } : {}),
    ...(options.lexicalUnit ? { lexicalUnit: options.lexicalUnit } : {}),
    ...(options.bm25 ? { bm25: { ...options.bm25, d: 0 } } : {}),
  });
  const snapshot = await FileSnapshot.open(directory, { expectedSpace: embedder.space });
  const buildSeconds = (performance.now() - buildStarted) / 1000;
  log(
    `snapshot ${manifest.version}: ${manifest.counts.chunks} vectors, ${manifest.index.dtype}, built in ${buildSeconds.toFixed(1)} s`,
  );

  const engine = new SearchEngine(snapshot, embedder, undefined, {
    fusion: options.fusion,
    ...(options.denseWeight !== undefined ? { fusionWeights: [options.denseWeight, 1] as const } : {}),
    ...(options.lexicalFloorRank !== undefined ? { lexicalFloorRank: options.lexicalFloorRank } : {}),
  });
  const queriesStarted = performance.now();
  const runs = new Map<string, Map<string, string[]>>();
  const record = (name: string, queryId: string, docIds: string[]) => {
    const run = runs.get(name) ?? new Map<string, string[]>();
    run.set(queryId, docIds);
    runs.set(name, run);
  };
  const annChunks = new Map<string, string[]>();
  const exactChunks = new Map<string, string[]>();
  const failedQueries: Array<{ queryId: string; reason: string }> = [];
  const keep = (queryId: string, docIds: string[]) =>
    options.keepIdenticalIds ? docIds : docIds.filter((docId) => docId !== queryId);
  await withProgress(options.progress, 'running queries', async (tick) => {
    let done = 0;
    for (const [queryId, text] of queries) {
      // One bad query (empty after trimming, too long, a model error) is reported, never fatal.
      try {
        const answers: Array<[string, string[]]> = [];
        for (const mode of options.modes) {
          if (mode === 'dense') continue;
          const response = await engine.search({
            query: text,
            k: 100,
            mode,
            exact: options.search === 'exact',
          });
          answers.push([
            mode,
            keep(
              queryId,
              response.results.map((result) => result.docId),
            ),
          ]);
        }
        for (const exact of [true, false]) {
          const response = await engine.search({ query: text, k: 100, mode: 'dense', exact });
          answers.push([
            exact ? 'dense-exact' : 'dense-ann',
            keep(
              queryId,
              response.results.map((result) => result.docId),
            ),
          ]);
        }
        const vector = await embedder.embedQuery(text);
        for (const [name, docIds] of answers) record(name, queryId, docIds);
        annChunks.set(
          queryId,
          snapshot.searchApproximate(vector, 10).map(({ row }) => snapshot.chunkAt(row).chunkId),
        );
        exactChunks.set(
          queryId,
          snapshot.searchExact(vector, 10).map(({ row }) => snapshot.chunkAt(row).chunkId),
        );
      } catch (error) {
        failedQueries.push({ queryId, reason: (error as Error).message.slice(0, 300) });
        qrels.delete(queryId);
      }
      done += 1;
      tick(done, queries.length);
    }
  });
  if (failedQueries.length > 0)
    log(`skipped ${failedQueries.length} queries whose search failed; first: ${failedQueries[0]?.reason}`);
  const queriesSeconds = (performance.now() - queriesStarted) / 1000;
  const metricsOf = (name: string) => evaluateRun(runs.get(name) ?? new Map(), qrels);
  const perQuery: Record<string, Record<string, number>> = {};
  for (const name of runs.keys()) perQuery[name] = perQueryNdcgAt10(runs.get(name) ?? new Map(), qrels);
  const metrics: EvaluationReport['metrics'] = {};
  for (const mode of options.modes)
    metrics[mode] = metricsOf(mode === 'dense' ? `dense-${options.search}` : mode);
  await embedder.dispose();
  return {
    dataset: options.datasetDir,
    model: { ...embedder.space, directory: model.directory, source: model.source },
    settings: {
      datasetDir: options.datasetDir,
      modes: options.modes,
      search: options.search,
      chunking: options.chunking,
      fusion: options.fusion,
      denseWeight: options.denseWeight ?? DEFAULT_FUSION_WEIGHTS[0],
      ...(options.queryLimit !== undefined ? { queryLimit: options.queryLimit } : {}),
      keepIdenticalIds: options.keepIdenticalIds ?? false,
      ...(options.corpusLimit !== undefined ? { corpusLimit: options.corpusLimit } : {}),
      hnsw: manifest.index,
      dtype: manifest.index.dtype,
      snapshotVersion: manifest.version,
    },
    corpus: {
      documents: corpus.length,
      chunks: chunks.length,
      queries: queries.length - failedQueries.length,
    },
    metrics,
    dense: {
      exact: metricsOf('dense-exact'),
      ann: metricsOf('dense-ann'),
      annRecallAt10: overlapAtK(annChunks, exactChunks, 10),
      ...(manifest.recall
        ? {
            annTuning: {
              target: manifest.recall.target,
              expansionSearch: manifest.recall.expansionSearch,
              connectivity: manifest.recall.connectivity,
              heldOutRecall: manifest.recall.heldOut.recall,
              reached: manifest.recall.reached,
              seconds: manifest.recall.seconds,
            },
          }
        : {}),
    },
    perQuery,
    skipped: {
      corpus: dataset.skipped.corpus.length,
      qrels: dataset.skipped.qrels.length,
      queries: dataset.skipped.queries.length + failedQueries.length,
      examples: [
        ...dataset.skipped.corpus.map((line) => ({ file: 'corpus.jsonl', ...line })),
        ...dataset.skipped.qrels.map((line) => ({ file: 'qrels', ...line })),
        ...dataset.skipped.queries.map((line) => ({ file: 'queries.jsonl', ...line })),
        ...failedQueries.map((failure) => ({ file: 'search', ...failure })),
      ].slice(0, 20),
    },
    seconds: { embed: embedSeconds, build: buildSeconds, queries: queriesSeconds },
    createdAt: new Date().toISOString(),
  };
}

function limitCorpus(
  corpus: SourceDocument[],
  queryIds: string[],
  qrels: ReadonlyMap<string, ReadonlyMap<string, number>>,
  limit: number | undefined,
): SourceDocument[] {
  if (limit === undefined || limit >= corpus.length) return corpus;
  const judged = new Set(queryIds.flatMap((id) => [...(qrels.get(id)?.keys() ?? [])]));
  const kept = corpus.filter((document) => judged.has(document.id));
  for (const document of corpus) {
    if (kept.length >= limit) break;
    if (!judged.has(document.id)) kept.push(document);
  }
  return kept;
}

async function withProgress<T>(
  enabled: boolean,
  label: string,
  work: (tick: (done: number, total: number) => void) => Promise<T>,
): Promise<T> {
  if (!enabled) return work(() => {});
  const bar = new SingleBar({
    format: `${label} [{bar}] {value}/{total} {eta_formatted} left`,
    stream: process.stderr,
    etaBuffer: 50,
  });
  let started = false;
  try {
    return await work((done, total) => {
      if (!started) {
        bar.start(total, done);
        started = true;
      } else bar.update(done);
    });
  } finally {
    if (started) bar.stop();
  }
}
