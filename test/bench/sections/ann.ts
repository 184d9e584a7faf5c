/**
 * ANN peers on the same vectors and queries: usearch (f32, f16, i8) against hnswlib-node and exact
 * brute force (usearch's SIMD `exactSearch` and bisearch's own JS `exactTopK`). For each: build
 * time, index size, and recall@10 and single-thread QPS at several search expansions (ef), i.e.
 * a recall–QPS curve; then the QPS ratio usearch / hnswlib at equal recall.
 */
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import usearch from 'usearch';
import { I8_RESCORE_FACTOR } from '../../../functions/adapters/index/snapshot-files.js';
import {
  DEFAULT_HNSW,
  HnswIndexFile,
  writeHnswIndex,
} from '../../../functions/adapters/index/usearch-index.js';
import {
  defaultHnswMetric,
  type HnswMetric,
  type VectorDtype,
} from '../../../functions/core/snapshot-manifest.js';
import { dot, exactTopK } from '../../../functions/core/vectors.js';
import { exactNeighbours, recallAtK } from '../lib/derived-corpus.js';
import { percentile, progress, timed } from '../lib/measure.js';

export interface AnnCurvePoint {
  readonly library: string;
  readonly ef: number;
  readonly recallAt10: number;
  /** Queries per second on one thread, k = 10. */
  readonly qps: number;
}

export interface AnnBuild {
  readonly library: string;
  readonly buildSeconds: number;
  readonly threads: number | 'all';
  readonly indexBytes: number;
}

export interface AnnResults {
  readonly vectors: number;
  readonly dimensions: number;
  readonly queries: number;
  readonly settings: { readonly connectivity: number; readonly expansionAdd: number };
  readonly builds: AnnBuild[];
  readonly curve: AnnCurvePoint[];
  readonly exact: { readonly library: string; readonly qps: number; readonly recallAt10: number }[];
  /**
   * Nanoseconds per float32 inner product of two rows, brute force over a cache-resident block of
   * rows: the distance kernel alone, without graph traversal or memory traffic (see {@link distanceKernels}).
   */
  readonly distanceKernels: DistanceKernel[];
  /** QPS at recall@10 = the target, per library ({@link qpsAtRecall}), and usearch / hnswlib ratios. */
  readonly atEqualRecall: {
    readonly recallTarget: number;
    readonly qps: Record<string, number | null>;
    readonly usearchOverHnswlib: Record<string, number | null>;
  }[];
  readonly unavailable: Record<string, string>;
}

const K = 10;
/** Timed passes over the queries per curve point (median QPS): one pass is a fraction of a second, and this machine is shared. */
const TIMED_PASSES = 3;

/**
 * QPS at exactly `recall` on one library's recall–QPS curve: log(QPS) interpolated linearly
 * between the two expansions around it (QPS halves roughly as ef doubles). Reading "the best
 * point at recall ≥ target" instead made ratios jump: every library's ef 64 lands at 0.940–0.950
 * here, and whether it counts depended on a few queries of a multi-threaded build. Null when the
 * curve never reaches `recall`; the best reaching point when its lowest point is already above.
 */
export function qpsAtRecall(points: readonly AnnCurvePoint[], recall: number): number | null {
  const reaching = points.filter((point) => point.recallAt10 >= recall);
  if (reaching.length === 0) return null;
  const best = Math.max(...reaching.map((point) => point.qps));
  const below = points.filter((point) => point.recallAt10 < recall);
  if (below.length === 0) return best;
  // The cheapest point that reaches the target and the best point that does not.
  const above = reaching.reduce((a, b) => (b.qps > a.qps ? b : a));
  const under = below.reduce((a, b) => (b.recallAt10 > a.recallAt10 ? b : a));
  if (under.qps <= above.qps) return best;
  const share = (recall - under.recallAt10) / (above.recallAt10 - under.recallAt10);
  return Math.exp(Math.log(under.qps) + share * (Math.log(above.qps) - Math.log(under.qps)));
}

export interface DistanceKernel {
  readonly library: string;
  /** Rows in the block searched; small enough to stay in cache. */
  readonly rows: number;
  readonly nanosecondsPerDistance: number;
}

/**
 * The float32 distance kernels of usearch and hnswlib-node, each scanning the same cache-resident
 * block of rows for every query (usearch `exactSearch` with one thread, hnswlib's
 * `BruteforceSearch`, bisearch's JS `exactTopK` for scale): what one f32 distance costs once the
 * row is in cache. Set against the HNSW curve at 100k rows (200 MB of f32 rows, far beyond the
 * cache), it separates arithmetic from memory access: usearch's dense index reaches each row
 * through a table of row pointers and its search passes no prefetch (`index_dense.hpp` calls
 * `search` with `dummy_prefetch_t`), while hnswlib stores each row beside its level-0 links and
 * prefetches the next neighbour's row while it scores the current one.
 */
function distanceKernels(
  matrix: Float32Array,
  dimensions: number,
  queries: readonly Float32Array[],
  rows: number,
): DistanceKernel[] {
  const block = matrix.slice(0, rows * dimensions);
  const queryMatrix = new Float32Array(queries.length * dimensions);
  for (const [q, query] of queries.entries()) queryMatrix.set(query, q * dimensions);
  const perDistance = (work: () => void) => {
    work();
    const started = performance.now();
    work();
    return ((performance.now() - started) * 1e6) / (queries.length * rows);
  };
  const kernels: DistanceKernel[] = [
    {
      library: 'usearch exactSearch f32 (ip)',
      rows,
      nanosecondsPerDistance: perDistance(() => {
        usearch.exactSearch(block, queryMatrix, dimensions, K, usearch.MetricKind.IP, 1);
      }),
    },
  ];
  try {
    const require = createRequire(import.meta.url);
    const { BruteforceSearch } = require('hnswlib-node') as typeof import('hnswlib-node');
    const brute = new BruteforceSearch('ip', dimensions);
    brute.initIndex(rows);
    for (let row = 0; row < rows; row += 1)
      brute.addPoint(Array.from(block.subarray(row * dimensions, (row + 1) * dimensions)), row);
    const plainQueries = queries.map((query) => Array.from(query));
    kernels.push({
      library: 'hnswlib-node BruteforceSearch f32 (ip)',
      rows,
      nanosecondsPerDistance: perDistance(() => {
        for (const query of plainQueries) brute.searchKnn(query, K);
      }),
    });
  } catch {
    // hnswlib-node missing: reported under `unavailable` by the HNSW comparison.
  }
  kernels.push({
    library: 'bisearch exactTopK (JS) f32',
    rows,
    nanosecondsPerDistance: perDistance(() => {
      for (const query of queries) exactTopK(block, dimensions, query, K);
    }),
  });
  return kernels;
}

export async function benchAnn(options: {
  readonly matrix: Float32Array;
  readonly dimensions: number;
  readonly queries: Float32Array;
  readonly expansions: readonly number[];
  readonly workDirectory: string;
  readonly hnswlibThreadsNote?: string;
}): Promise<AnnResults> {
  const { matrix, dimensions, queries, expansions } = options;
  const count = matrix.length / dimensions;
  const queryCount = queries.length / dimensions;
  const queryVectors = Array.from({ length: queryCount }, (_, q) =>
    queries.subarray(q * dimensions, (q + 1) * dimensions),
  );
  const truth = exactNeighbours(matrix, dimensions, queries, K);
  const directory = join(options.workDirectory, 'ann');
  rmSync(directory, { recursive: true, force: true });
  mkdirSync(directory, { recursive: true });
  const builds: AnnBuild[] = [];
  const curve: AnnCurvePoint[] = [];
  const unavailable: Record<string, string> = {};
  const { connectivity, expansionAdd } = DEFAULT_HNSW;

  /** Run every query once unmeasured, then time them all {@link TIMED_PASSES} times; median QPS and recall. */
  const measure = (search: (query: Float32Array) => number[]) => {
    for (const query of queryVectors) search(query);
    let answers: number[][] = [];
    const rates: number[] = [];
    for (let pass = 0; pass < TIMED_PASSES; pass += 1) {
      answers = [];
      const started = performance.now();
      for (const query of queryVectors) answers.push(search(query));
      rates.push(queryCount / ((performance.now() - started) / 1000));
    }
    return { qps: percentile(rates, 50), recallAt10: recallAtK(truth, answers, K) };
  };

  // What snapshots of a normalised space use (inner product for f32/f16, cosine for i8), and f16
  // with cosine, which snapshots used before: the before/after of choosing the metric.
  const configurations: { library: string; dtype: VectorDtype; metric: HnswMetric }[] = [
    ...(['f32', 'f16', 'i8'] as VectorDtype[]).map((dtype) => ({
      library: `usearch ${dtype}`,
      dtype,
      metric: defaultHnswMetric(dtype, true),
    })),
    { library: 'usearch f16 cos (before)', dtype: 'f16', metric: 'cos' },
  ];
  for (const { library, dtype, metric } of configurations) {
    const path = join(directory, `${library.replace(/\W+/g, '-')}.usearch`);
    const settings = { ...DEFAULT_HNSW, dtype, metric };
    progress(`ann: building ${library} (${metric}) over ${count} vectors (all cores)`);
    const [, buildMs] = await timed(() => writeHnswIndex(path, matrix, dimensions, settings));
    builds.push({
      library,
      buildSeconds: buildMs / 1000,
      threads: 'all',
      indexBytes: statSync(path).size,
    });
    for (const ef of expansions) {
      const index = HnswIndexFile.open(
        path,
        { dimensions, dtype, count, metric },
        { ...settings, expansionSearch: ef },
      );
      curve.push({
        library,
        ef,
        ...measure((query) => index.search(query, K).map((hit) => hit.row)),
      });
      if (dtype === 'i8') {
        // What an i8 snapshot answers (FileSnapshot.searchApproximate): over-fetch, then re-rank
        // with the float32 rows (here in memory; the snapshot reads them from vectors.f32).
        curve.push({
          library: 'usearch i8 + f32 re-rank',
          ef,
          ...measure((query) =>
            index
              .search(query, K * I8_RESCORE_FACTOR)
              .map(({ row }) => ({
                row,
                similarity: dot(query, matrix.subarray(row * dimensions, (row + 1) * dimensions)),
              }))
              .sort((a, b) => b.similarity - a.similarity)
              .slice(0, K)
              .map((hit) => hit.row),
          ),
        });
      }
    }
  }
  // Before/after of the i8 fix: the same settings, but usearch quantising the float32 rows itself.
  {
    const cast = new usearch.Index({
      dimensions,
      metric: usearch.MetricKind.Cos,
      quantization: 'i8' as never,
      connectivity,
      expansion_add: expansionAdd,
      expansion_search: DEFAULT_HNSW.expansionSearch,
      multi: false,
    });
    progress("ann: building usearch i8 with usearch's own f32→i8 cast (before the fix)");
    const [, castMs] = await timed(() =>
      cast.add(
        BigUint64Array.from({ length: count }, (_, row) => BigInt(row)),
        matrix,
        0,
      ),
    );
    const path = join(directory, 'usearch-i8-cast.usearch');
    cast.save(path);
    builds.push({
      library: 'usearch i8 (usearch cast)',
      buildSeconds: castMs / 1000,
      threads: 'all',
      indexBytes: statSync(path).size,
    });
    for (const ef of expansions) {
      const viewed = new usearch.Index({
        dimensions,
        metric: usearch.MetricKind.Cos,
        quantization: 'i8' as never,
        connectivity,
        expansion_add: expansionAdd,
        expansion_search: ef,
        multi: false,
      });
      viewed.view(path);
      curve.push({
        library: 'usearch i8 (usearch cast)',
        ef,
        ...measure((query) =>
          Array.from((viewed.search(query, K, 1) as { keys: BigUint64Array }).keys, Number),
        ),
      });
    }
  }
  // hnswlib-node adds one point per call on one thread, so usearch is also built on one thread
  // for a like-for-like build time (hnswlib's `cosine` normalises, then uses inner product).
  progress('ann: building usearch f32 on one thread (like-for-like with hnswlib-node)');
  const single = new usearch.Index({
    dimensions,
    metric: usearch.MetricKind.IP,
    quantization: 'f32' as never,
    connectivity,
    expansion_add: expansionAdd,
    expansion_search: 64,
    multi: false,
  });
  const keys = BigUint64Array.from({ length: count }, (_, row) => BigInt(row));
  const [, singleMs] = await timed(() => single.add(keys, matrix, 1));
  builds.push({
    library: 'usearch f32',
    buildSeconds: singleMs / 1000,
    threads: 1,
    indexBytes: builds[0]?.indexBytes ?? 0,
  });

  try {
    const require = createRequire(import.meta.url);
    const { HierarchicalNSW } = require('hnswlib-node') as typeof import('hnswlib-node');
    progress(`ann: building hnswlib-node over ${count} vectors (one thread)`);
    const index = new HierarchicalNSW('cosine', dimensions);
    const [, hnswMs] = await timed(() => {
      index.initIndex({ maxElements: count, m: connectivity, efConstruction: expansionAdd, randomSeed: 100 });
      for (let row = 0; row < count; row += 1)
        index.addPoint(Array.from(matrix.subarray(row * dimensions, (row + 1) * dimensions)), row);
    });
    const path = join(directory, 'hnswlib.bin');
    index.writeIndexSync(path);
    builds.push({
      library: 'hnswlib-node',
      buildSeconds: hnswMs / 1000,
      threads: 1,
      indexBytes: statSync(path).size,
    });
    // Its binding takes plain arrays: convert the queries once, outside the timed loop.
    const plainQueries = new Map(queryVectors.map((query) => [query, Array.from(query)]));
    for (const ef of expansions) {
      index.setEf(ef);
      curve.push({
        library: 'hnswlib-node',
        ef,
        ...measure((query) => index.searchKnn(plainQueries.get(query) as number[], K).neighbors),
      });
    }
  } catch (error) {
    unavailable['hnswlib-node'] = (error as Error).message;
  }
  try {
    await import('faiss-node' as string);
    unavailable['faiss-node'] = 'installed but not benchmarked';
  } catch {
    unavailable['faiss-node'] =
      'not installable here: its install script downloads a prebuilt binary from GitHub or clones faiss from GitHub, and only the npm registry is reachable';
  }

  progress('ann: exact brute force');
  const exact = [
    {
      library: 'usearch exactSearch (SIMD, 1 thread)',
      ...measure((query) => {
        // slice(): exactSearch reads a subarray's buffer from its start, ignoring its offset.
        const matches = usearch.exactSearch(
          matrix,
          query.slice(),
          dimensions,
          K,
          usearch.MetricKind.Cos,
          1,
        ) as {
          keys: BigUint64Array;
        };
        return Array.from(matches.keys, (key) => Number(key));
      }),
    },
    {
      library: 'bisearch exactTopK (JS)',
      ...measure((query) => exactTopK(matrix, dimensions, query, K).map((hit) => hit.row)),
    },
  ];

  progress('ann: distance kernels on a cache-resident block');
  const kernels = distanceKernels(matrix, dimensions, queryVectors, Math.min(count, 1_000));

  const libraries = [...new Set(curve.map((point) => point.library))];
  const atEqualRecall = [0.9, 0.95, 0.99].map((recallTarget) => {
    const qps: Record<string, number | null> = {};
    for (const library of libraries)
      qps[library] = qpsAtRecall(
        curve.filter((point) => point.library === library),
        recallTarget,
      );
    const usearchOverHnswlib: Record<string, number | null> = {};
    for (const library of libraries.filter((name) => name.startsWith('usearch'))) {
      const ours = qps[library];
      const theirs = qps['hnswlib-node'];
      usearchOverHnswlib[library] = ours && theirs ? ours / theirs : null;
    }
    return { recallTarget, qps, usearchOverHnswlib };
  });
  rmSync(directory, { recursive: true, force: true });
  return {
    vectors: count,
    dimensions,
    queries: queryCount,
    settings: { connectivity, expansionAdd },
    builds,
    curve,
    exact,
    distanceKernels: kernels,
    atEqualRecall,
    unavailable,
  };
}
