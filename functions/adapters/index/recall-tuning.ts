import type { HnswMetric, RecallTuning } from '../../core/snapshot-manifest.js';
import {
  CONFIDENCE_STANDARD_ERRORS,
  chooseExpansionSearch,
  DEFAULT_RECALL_TARGET,
  type ExpansionTrial,
  perturbedQuery,
  type RecallEstimate,
  type RecallTargetOptions,
  recallEstimate,
  sampleQueryRows,
  seededRandom,
} from '../../core/snapshot-validation.js';
import { dot, type ScoredRow } from '../../core/vectors.js';
import { usearch } from '../native-modules.js';
import { HnswIndexFile, type HnswSettings, I8_RESCORE_FACTOR, writeHnswIndex } from './usearch-index.js';

const { MetricKind, exactSearch } = usearch;

/**
 * Exact top-k rows of each query (row-major `queries`, `dimensions` wide) over the row-major
 * `vectors`, by the index's metric. usearch's brute-force kernel (SIMD, every core): at 100k × 512
 * it is ~30× faster than a JavaScript loop, which is what keeps tuning cheap at build time.
 */
export function exactNeighbours(
  vectors: Float32Array,
  dimensions: number,
  queries: Float32Array,
  k: number,
  metric: HnswMetric,
): number[][] {
  const rows = vectors.length / dimensions;
  const queryCount = queries.length / dimensions;
  const limit = Math.min(k, rows);
  if (limit === 0 || queryCount === 0) return Array.from({ length: queryCount }, () => []);
  // usearch 2.26.2's exactSearch reads each array's ArrayBuffer from its start, ignoring
  // byteOffset (javascript/lib.cpp: `dataset.ArrayBuffer().Data()`), so a view into a larger
  // buffer (a Buffer from Node's pool, a subarray) would be searched as the wrong rows: copy it.
  const ownBuffer = (array: Float32Array) => (array.byteOffset === 0 ? array : array.slice());
  vectors = ownBuffer(vectors);
  queries = ownBuffer(queries);
  const result = exactSearch(
    vectors,
    queries,
    dimensions,
    limit,
    metric === 'ip' ? MetricKind.IP : MetricKind.Cos,
    0,
  );
  if (queryCount === 1) return [Array.from(result.keys, Number)];
  const batch = result as InstanceType<typeof usearch.BatchMatches>;
  return Array.from({ length: queryCount }, (_, query) => {
    const count = Number(batch.counts[query]);
    return Array.from(batch.keys.subarray(query * limit, query * limit + count), Number);
  });
}

/** Per-query recall@k of `search` against the exact neighbours: |found ∩ exact| / |exact|. */
export function perQueryRecall(
  search: (query: Float32Array, k: number) => readonly ScoredRow[],
  queries: Float32Array,
  dimensions: number,
  exact: readonly number[][],
  k: number,
): number[] {
  return exact.map((truth, i) => {
    if (truth.length === 0) return 1;
    const found = new Set(
      search(queries.subarray(i * dimensions, (i + 1) * dimensions), k).map((hit) => hit.row),
    );
    return truth.filter((row) => found.has(row)).length / truth.length;
  });
}

/** Query vectors made from sampled rows (see {@link perturbedQuery}), row-major. */
function queriesFrom(
  vectors: Float32Array,
  dimensions: number,
  rows: readonly number[],
  noise: number,
  random: () => number,
): Float32Array {
  const queries = new Float32Array(rows.length * dimensions);
  rows.forEach((row, i) => {
    queries.set(
      perturbedQuery(vectors.subarray(row * dimensions, (row + 1) * dimensions), noise, random),
      i * dimensions,
    );
  });
  return queries;
}

/**
 * HNSW search as a query instance runs it: `ef` fixed when the index file is opened (usearch's
 * JavaScript binding takes expansion_search only at construction), and i8 answers over-fetched and
 * re-ranked by the float32 rows, as FileSnapshot.searchApproximate does.
 */
function servingSearch(
  path: string,
  vectors: Float32Array,
  dimensions: number,
  settings: HnswSettings,
  expansionSearch: number,
  keyToRow?: Int32Array,
): (query: Float32Array, k: number) => ScoredRow[] {
  const count = vectors.length / dimensions;
  const index = HnswIndexFile.open(
    path,
    { dimensions, dtype: settings.dtype, count, metric: settings.metric },
    { ...settings, expansionSearch },
    'view',
    keyToRow,
  );
  if (settings.dtype !== 'i8') return (query, k) => index.search(query, k);
  return (query, k) =>
    index
      .search(query, Math.min(k * I8_RESCORE_FACTOR, count))
      .map(({ row }) => ({
        row,
        similarity: dot(query, vectors.subarray(row * dimensions, (row + 1) * dimensions)),
      }))
      .sort((a, b) => b.similarity - a.similarity || a.row - b.row)
      .slice(0, k);
}

/**
 * Build the HNSW index at `path` and choose its search ef for a recall target: sample rows, make
 * a tuning and a held-out set of perturbed queries, compute their exact top-k, then find the
 * smallest ef whose tuning recall clears the target ({@link chooseExpansionSearch}). When even
 * `maxExpansionSearch` does not, the index is rebuilt with doubled connectivity while that stays
 * within `maxConnectivity`; if the target is still out of reach the result says `reached: false`
 * (validation then refuses the version with the reason). `fixedExpansionSearch` measures one
 * given ef instead of choosing. Without `target` options (or with no rows) the index is only built.
 *
 * Cost: one exact search per query over every row (2 × `queries` × rows × dimensions
 * multiply-adds, usearch SIMD on every core) plus a few hundred HNSW searches per ef tried.
 */
export function writeTunedHnswIndex(
  path: string,
  vectors: Float32Array,
  dimensions: number,
  settings: HnswSettings,
  target: Partial<RecallTargetOptions> | undefined,
  fixedExpansionSearch?: number,
): { settings: HnswSettings; recall?: RecallTuning } {
  writeHnswIndex(path, vectors, dimensions, settings);
  const rows = vectors.length / dimensions;
  if (!target || rows === 0) return { settings };
  const started = performance.now();
  const options: RecallTargetOptions = { ...DEFAULT_RECALL_TARGET, ...target };
  const { k } = options;
  const random = seededRandom(options.seed);
  const sample = sampleQueryRows(rows, Math.min(options.queries, rows), random);
  const tuningQueries = queriesFrom(vectors, dimensions, sample.tuning, options.noise, random);
  const heldOutQueries = queriesFrom(vectors, dimensions, sample.heldOut, options.noise, random);
  const tuningExact = exactNeighbours(vectors, dimensions, tuningQueries, k, settings.metric);
  const heldOutExact = exactNeighbours(vectors, dimensions, heldOutQueries, k, settings.metric);

  let built = settings;
  const trials: Array<ExpansionTrial & { connectivity: number }> = [];
  const measure = (queries: Float32Array, exact: number[][], expansionSearch: number): RecallEstimate =>
    recallEstimate(
      perQueryRecall(
        servingSearch(path, vectors, dimensions, built, expansionSearch),
        queries,
        dimensions,
        exact,
        k,
      ),
    );
  let choice: { expansionSearch: number; reached: boolean };
  for (;;) {
    if (fixedExpansionSearch !== undefined) {
      const estimate = measure(tuningQueries, tuningExact, fixedExpansionSearch);
      trials.push({
        expansionSearch: fixedExpansionSearch,
        recall: estimate.recall,
        standardError: estimate.standardError,
        connectivity: built.connectivity,
      });
      choice = {
        expansionSearch: fixedExpansionSearch,
        reached: estimate.recall - CONFIDENCE_STANDARD_ERRORS * estimate.standardError >= options.target,
      };
      break;
    }
    const chosen = chooseExpansionSearch(
      (expansionSearch) => measure(tuningQueries, tuningExact, expansionSearch),
      options.target,
      options,
    );
    trials.push(...chosen.trials.map((trial) => ({ ...trial, connectivity: built.connectivity })));
    choice = chosen;
    if (chosen.reached || built.connectivity * 2 > options.maxConnectivity) break;
    // More links per node: the graph's reach, not the search's width, is what limits recall now.
    built = { ...built, connectivity: built.connectivity * 2 };
    writeHnswIndex(path, vectors, dimensions, built);
  }
  const final = { ...built, expansionSearch: choice.expansionSearch };
  const tuning = trials.findLast(
    (trial) => trial.expansionSearch === choice.expansionSearch && trial.connectivity === built.connectivity,
  ) as ExpansionTrial;
  const heldOut = measure(heldOutQueries, heldOutExact, choice.expansionSearch);
  return {
    settings: final,
    recall: {
      target: options.target,
      k,
      expansionSearch: choice.expansionSearch,
      reached: choice.reached,
      maxExpansionSearch: fixedExpansionSearch ?? options.maxExpansionSearch,
      connectivity: built.connectivity,
      maxConnectivity: options.maxConnectivity,
      tuning: { recall: tuning.recall, standardError: tuning.standardError, queries: tuningExact.length },
      heldOut,
      trials,
      noise: options.noise,
      seed: options.seed,
      seconds: Math.round(performance.now() - started) / 1000,
    },
  };
}

/**
 * The recall section of an index updated from a tuned one ({@link updateHnswIndex}): its ef and
 * connectivity are the previous version's, measured again on held-out queries (the previous
 * tuning's rows, noise and seed, over the new rows), with the ef doubled (up to the previous
 * tuning's largest) while the updated graph is significantly below the target. `reached` uses
 * Validate's test; a build that gets `false` builds and tunes a fresh graph instead.
 */
export function measureUpdatedHnswIndex(
  path: string,
  vectors: Float32Array,
  dimensions: number,
  settings: HnswSettings,
  keyToRow: Int32Array,
  previous: RecallTuning,
  queryCount: number = DEFAULT_RECALL_TARGET.queries,
): RecallTuning {
  const started = performance.now();
  const rows = vectors.length / dimensions;
  const random = seededRandom(previous.seed);
  const sample = sampleQueryRows(rows, Math.min(queryCount, rows), random);
  // Drawn as Build draws them, so these are its held-out rows for this corpus.
  queriesFrom(vectors, dimensions, sample.tuning, previous.noise, random);
  const queries = queriesFrom(vectors, dimensions, sample.heldOut, previous.noise, random);
  const exact = exactNeighbours(vectors, dimensions, queries, previous.k, settings.metric);
  const trials: RecallTuning['trials'] = [];
  // The previous ef first; doubled (up to the previous tuning's largest) while the updated graph
  // is significantly below the target: widening the search is far cheaper than a fresh graph.
  for (let expansionSearch = settings.expansionSearch; ; ) {
    const heldOut = recallEstimate(
      perQueryRecall(
        servingSearch(path, vectors, dimensions, settings, expansionSearch, keyToRow),
        queries,
        dimensions,
        exact,
        previous.k,
      ),
    );
    trials.push({
      expansionSearch,
      recall: heldOut.recall,
      standardError: heldOut.standardError,
      connectivity: settings.connectivity,
    });
    // Validate's test (not significantly below the target): the ef was chosen with margin on the
    // previous rows, and a fresh graph at that ef measures the same within its error.
    const reached = heldOut.recall + CONFIDENCE_STANDARD_ERRORS * heldOut.standardError >= previous.target;
    const next = expansionSearch * 2;
    if (reached || next > previous.maxExpansionSearch)
      return {
        ...previous,
        expansionSearch,
        connectivity: settings.connectivity,
        reached,
        heldOut,
        trials,
        seconds: Math.round(performance.now() - started) / 1000,
      };
    expansionSearch = next;
  }
}

/**
 * Recall@k of an opened snapshot's serving search on fresh held-out queries (sampled with
 * `seed`), against exact search over its float32 rows: what validation measures on the version a
 * query instance would download.
 */
export function measureServingRecall(
  search: (query: Float32Array, k: number) => readonly ScoredRow[],
  vectors: Float32Array,
  dimensions: number,
  metric: HnswMetric,
  options: Pick<RecallTargetOptions, 'k' | 'queries' | 'noise' | 'seed'>,
): RecallEstimate {
  const rows = vectors.length / dimensions;
  if (rows === 0) return recallEstimate([]);
  const random = seededRandom(options.seed);
  const { heldOut } = sampleQueryRows(rows, Math.min(options.queries, rows), random);
  const queries = queriesFrom(vectors, dimensions, heldOut, options.noise, random);
  const exact = exactNeighbours(vectors, dimensions, queries, options.k, metric);
  return recallEstimate(perQueryRecall(search, queries, dimensions, exact, options.k));
}
