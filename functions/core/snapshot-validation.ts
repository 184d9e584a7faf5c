import type { SnapshotView } from './search-engine.js';

/**
 * Recall@k of the snapshot's HNSW index against exact search, averaged over `queries`: the
 * fraction of the exact top-k rows that HNSW also returns. The reindex refuses a version below
 * its threshold (a corrupt or mis-built graph shows up here even when checksums match).
 */
export function annRecallAtK(snapshot: SnapshotView, queries: readonly Float32Array[], k = 10): number {
  if (queries.length === 0 || snapshot.chunkCount === 0) return 1;
  let total = 0;
  for (const query of queries) {
    const exact = snapshot.searchExact(query, k).map((hit) => hit.row);
    const found = new Set(snapshot.searchApproximate(query, k).map((hit) => hit.row));
    total += exact.filter((row) => found.has(row)).length / Math.max(exact.length, 1);
  }
  return total / queries.length;
}

/** `count` row numbers spread evenly over `rows` (all of them when there are fewer). */
export function evenlySpacedRows(rows: number, count: number): number[] {
  if (rows <= count) return Array.from({ length: rows }, (_, row) => row);
  return Array.from({ length: count }, (_, i) => Math.floor((i * rows) / count));
}

/** Recall target and tuning bounds for choosing HNSW `ef` (expansion_search) at build time. */
export interface RecallTargetOptions {
  /** ANN recall@k against exact search that the served index must reach. Default 0.98. */
  readonly target: number;
  /** Results compared per query (recall@k). Default 10. */
  readonly k: number;
  /** Queries used to choose ef, and as many more (other rows, other noise) held out to report it. Default 500. */
  readonly queries: number;
  /**
   * Smallest ef chosen, where tuning starts. Default 64: SciFact's windowed USE-lite chunks gave
   * recall@10 0.961 at 64 with real queries, so a lower ef would rest on the sample alone.
   */
  readonly minExpansionSearch: number;
  /** Largest ef tried before connectivity is raised (or the build is marked as missing its target). Default 1024. */
  readonly maxExpansionSearch: number;
  /**
   * Largest HNSW connectivity (M) a build may raise to, doubling from the configured one, when
   * `maxExpansionSearch` does not reach the target. Default 32; equal to the configured
   * connectivity to never rebuild.
   */
  readonly maxConnectivity: number;
  /**
   * Length of the random perturbation added to each sampled stored vector to make a query, relative
   * to the vector's length (1.5: the query's cosine to its source row is about 0.55). Default 1.5,
   * calibrated on real queries: SciFact's 300 test queries over its 30,294 windowed USE-lite chunks
   * (f16, M 16) gave recall@10 0.964 / 0.980 / 0.988 / 0.993 at ef 64 / 96 / 128 / 192, and noise
   * 1.5 gave 0.959 / 0.977 / 0.986 / 0.994 (noise 1: 0.986 / 0.994 / 0.997 / 0.998, optimistic).
   * On synthetic clustered corpora noise 1 already matched or undershot fresh points. A stored
   * vector used as is finds itself and overstates recall most (0.947 against 0.856 at ef 128).
   */
  readonly noise: number;
  /** Seed of the row sample and the noise, so a build's figures can be reproduced. Default 1. */
  readonly seed: number;
}

export const DEFAULT_RECALL_TARGET: RecallTargetOptions = {
  target: 0.98,
  k: 10,
  queries: 500,
  minExpansionSearch: 64,
  maxExpansionSearch: 1024,
  maxConnectivity: 32,
  noise: 1.5,
  seed: 1,
};

/** Mean of per-query recalls and its standard error (sample standard deviation / √n). */
export interface RecallEstimate {
  readonly recall: number;
  readonly standardError: number;
  readonly queries: number;
}

export function recallEstimate(perQuery: readonly number[]): RecallEstimate {
  const n = perQuery.length;
  if (n === 0) return { recall: 1, standardError: 0, queries: 0 };
  const mean = perQuery.reduce((sum, value) => sum + value, 0) / n;
  const variance = n > 1 ? perQuery.reduce((sum, value) => sum + (value - mean) ** 2, 0) / (n - 1) : 0;
  return { recall: mean, standardError: Math.sqrt(variance / n), queries: n };
}

/**
 * Standard errors a tuning estimate must clear the target by: ef is chosen only when
 * recall − 2·SE ≥ target (about 97.7% one-sided confidence that the true recall at that ef is at
 * least the target), so held-out queries rarely land below it.
 */
export const CONFIDENCE_STANDARD_ERRORS = 2;

/** One ef tried while tuning, with the recall it measured on the tuning queries. */
export interface ExpansionTrial {
  readonly expansionSearch: number;
  readonly recall: number;
  readonly standardError: number;
}

/**
 * The smallest ef whose tuning recall clears `target` by {@link CONFIDENCE_STANDARD_ERRORS}:
 * doubling from `minExpansionSearch` to the first ef that passes, then trying the ef
 * halfway between it and the last that failed (×0.75). Recall grows with ef, so this finds the
 * smallest passing ef on a grid of ~1.5× steps in about log2(ef) measurements. `reached` false:
 * no ef up to `maxExpansionSearch` passed, and `expansionSearch` is the cap.
 */
export function chooseExpansionSearch(
  measure: (expansionSearch: number) => RecallEstimate,
  target: number,
  bounds: { readonly minExpansionSearch: number; readonly maxExpansionSearch: number },
): { expansionSearch: number; reached: boolean; trials: ExpansionTrial[] } {
  const trials: ExpansionTrial[] = [];
  const passes = (expansionSearch: number): boolean => {
    const estimate = measure(expansionSearch);
    trials.push({ expansionSearch, recall: estimate.recall, standardError: estimate.standardError });
    return estimate.recall - CONFIDENCE_STANDARD_ERRORS * estimate.standardError >= target;
  };
  const floor = Math.max(1, Math.floor(bounds.minExpansionSearch));
  const cap = Math.max(floor, Math.floor(bounds.maxExpansionSearch));
  let failed = 0;
  for (let ef = floor; ; ef = Math.min(ef * 2, cap)) {
    if (passes(ef)) {
      const between = Math.round(ef * 0.75);
      if (failed > 0 && between > failed && between < ef && passes(between))
        return { expansionSearch: between, reached: true, trials };
      return { expansionSearch: ef, reached: true, trials };
    }
    failed = ef;
    if (ef >= cap) return { expansionSearch: cap, reached: false, trials };
  }
}

/**
 * What validation concludes from the recall it measured on its own held-out queries at the
 * manifest's ef. A version fails when the build could not reach its target (`reached` false),
 * when the measured recall is below the target by more than {@link CONFIDENCE_STANDARD_ERRORS}
 * standard errors (clearly below, not sampling noise), or when it is below `minimum` (the floor
 * that catches a corrupt graph, also for builds without a target).
 */
export function recallVerdict(input: {
  readonly measured: RecallEstimate;
  readonly minimum: number;
  readonly tuning?: {
    readonly target: number;
    readonly reached: boolean;
    readonly expansionSearch: number;
    readonly connectivity: number;
    readonly maxExpansionSearch: number;
    readonly maxConnectivity: number;
  };
  readonly k?: number;
}): { ok: true } | { ok: false; reason: string } {
  const { measured, minimum, tuning } = input;
  const at = `recall@${input.k ?? 10}`;
  if (tuning && !tuning.reached)
    return {
      ok: false,
      reason: `HNSW ${at} target ${tuning.target} not reached at the largest ef ${tuning.maxExpansionSearch} with connectivity ${tuning.connectivity} (largest allowed ${tuning.maxConnectivity}); held-out recall ${measured.recall.toFixed(4)}. Raise BISEARCH_MAX_EXPANSION_SEARCH or BISEARCH_MAX_CONNECTIVITY, or lower BISEARCH_RECALL_TARGET`,
    };
  if (tuning && measured.recall + CONFIDENCE_STANDARD_ERRORS * measured.standardError < tuning.target)
    return {
      ok: false,
      reason: `HNSW ${at} ${measured.recall.toFixed(4)} ± ${measured.standardError.toFixed(4)} on ${measured.queries} held-out queries is below the target ${tuning.target} at ef ${tuning.expansionSearch}`,
    };
  if (measured.recall < minimum)
    return {
      ok: false,
      reason: `HNSW ${at} ${measured.recall.toFixed(4)} is below the minimum ${minimum}`,
    };
  return { ok: true };
}

/** A small seeded PRNG (mulberry32): uniform floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/**
 * `2 × count` sampled rows split into two disjoint halves (tuning, held out); distinct rows when
 * the corpus has enough, otherwise drawn with replacement (the noise still makes every query new).
 */
export function sampleQueryRows(
  rows: number,
  count: number,
  random: () => number,
): { tuning: number[]; heldOut: number[] } {
  if (rows === 0 || count === 0) return { tuning: [], heldOut: [] };
  const wanted = 2 * count;
  let picked: number[];
  if (rows >= wanted) {
    // Floyd's algorithm: `wanted` distinct rows without an array of every row.
    const chosen = new Set<number>();
    for (let j = rows - wanted; j < rows; j += 1) {
      const candidate = Math.floor(random() * (j + 1));
      chosen.add(chosen.has(candidate) ? j : candidate);
    }
    picked = [...chosen];
    for (let i = picked.length - 1; i > 0; i -= 1) {
      const j = Math.floor(random() * (i + 1));
      [picked[i], picked[j]] = [picked[j] as number, picked[i] as number];
    }
  } else {
    picked = Array.from({ length: wanted }, () => Math.floor(random() * rows));
  }
  return { tuning: picked.slice(0, count), heldOut: picked.slice(count) };
}

/**
 * A query near a stored vector: `normalise(v + noise·‖v‖·g/‖g‖)` with g standard Gaussian, so the
 * query is not a row of the index (a row finds itself) but lies in the corpus' neighbourhoods.
 */
export function perturbedQuery(vector: Float32Array, noise: number, random: () => number): Float32Array {
  const query = new Float32Array(vector.length);
  let vectorLength = 0;
  let gaussianLength = 0;
  for (let i = 0; i < vector.length; i += 1) {
    // Box–Muller.
    const g = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
    query[i] = g;
    gaussianLength += g * g;
    vectorLength += (vector[i] as number) ** 2;
  }
  const scale = gaussianLength > 0 ? (noise * Math.sqrt(vectorLength)) / Math.sqrt(gaussianLength) : 0;
  let length = 0;
  for (let i = 0; i < vector.length; i += 1) {
    const value = (vector[i] as number) + scale * (query[i] as number);
    query[i] = value;
    length += value * value;
  }
  length = Math.sqrt(length);
  if (length > 0) for (let i = 0; i < query.length; i += 1) query[i] = (query[i] as number) / length;
  return query;
}
