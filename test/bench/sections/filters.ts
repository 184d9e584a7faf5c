/**
 * Filtered dense search against unfiltered, on synthetic chunks (clustered unit vectors, no
 * embedding) through the real snapshot (usearch view, metadata index, chunk records) and
 * SearchEngine, k = 10, one query at a time. Every row draws one uniform `u`; each operator at
 * selectivity `s` is written so that it selects exactly the rows with `u < s`: equality
 * (`{"eq_s": true}`), a number range (`{"u": {"lt": s}}`), an ISO-date range (`{"day": {"lt": …}}`),
 * negation (`{"ne_s": {"ne": true}}`) and existence (`{"has_s": {"exists": true}}`). So one exact
 * answer per query and selectivity (brute force over the rows with `u < s`, computed here without
 * the index) is the truth for every operator, and recall@10 is measured against it.
 */

import { FileSnapshot } from '../../../functions/adapters/index/snapshot-files.js';
import type { EmbeddedChunk } from '../../../functions/core/delta.js';
import type { EmbeddingSpace, TextEmbedder } from '../../../functions/core/embedding-space.js';
import type { MetadataFilter } from '../../../functions/core/filters.js';
import { exactFilterLimit, SearchEngine } from '../../../functions/core/search-engine.js';
import { clusteredVector } from '../../support/synthetic-documents.js';
import { type Percentiles, percentiles, progress, seededRandom } from '../lib/measure.js';
import { cachedSnapshot } from './query-path.js';

export const FILTER_SELECTIVITIES = [0.001, 0.01, 0.1, 0.5] as const;
export const FILTER_OPERATORS = ['equality', 'number range', 'date range', 'negation', 'exists'] as const;
export type FilterOperator = (typeof FILTER_OPERATORS)[number];

/** Days a row's `day` spans from 1970-01-01, so `u < s` is `day < s·DAYS` exactly for every s above. */
const DAYS = 100_000;
const DAY_MS = 86_400_000;
const K = 10;

export interface FilteredRow {
  readonly operator: FilterOperator;
  readonly selectivity: number;
  readonly matchingRows: number;
  /** Engine time without embedding (`total − embed`), ms. */
  readonly ms: Percentiles;
  /** p99 ÷ the unfiltered dense p99 of the same size. */
  readonly p99OverUnfiltered: number;
  /** Mean share of the exact filtered top 10 returned. */
  readonly recallAt10: number;
  /** `exact` (matching rows scored exactly) or `hnsw` (HNSW candidates tested against the bitmap). */
  readonly path: 'exact' | 'hnsw';
  /** The engine's `filteredDenseTarget` (default `candidates`). */
  readonly target: 'candidates' | 'documents';
}

export interface FiltersSizeResult {
  readonly chunks: number;
  readonly buildSeconds: number | null;
  readonly reused: boolean;
  /** Unfiltered dense engine time, ms. */
  readonly unfiltered: Percentiles;
  readonly unfilteredRecallAt10: number;
  readonly filtered: FilteredRow[];
}

export interface FiltersResults {
  /** When and at which commit this section ran (a published RESULTS.md merges sections of several runs). */
  measured?: { readonly createdAt: string; readonly commit: string };
  readonly dimensions: number;
  readonly queries: number;
  /** Matches up to which the engine scores exactly in dense mode at k = 10, per size (see `exactFilterLimit`). */
  readonly exactFilterLimits: Record<number, number>;
  readonly sizes: FiltersSizeResult[];
}

function isoDay(day: number): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10);
}

function label(selectivity: number): string {
  return String(selectivity * 100).replace('.', '_');
}

/** The filter of `operator` selecting the rows with `u < selectivity`. */
export function operatorFilter(operator: FilterOperator, selectivity: number): MetadataFilter {
  const name = label(selectivity);
  switch (operator) {
    case 'equality':
      return { [`eq_${name}`]: true };
    case 'number range':
      return { u: { gte: 0, lt: selectivity } };
    case 'date range':
      return { day: { gte: isoDay(0), lt: isoDay(Math.round(selectivity * DAYS)) } };
    case 'negation':
      return { [`ne_${name}`]: { ne: true } };
    case 'exists':
      return { [`has_${name}`]: { exists: true } };
  }
}

/** A synthetic row's metadata for its draw `u` (see the module comment). */
export function syntheticMetadata(u: number): EmbeddedChunk['metadata'] {
  const metadata: Record<string, string | number | boolean> = { u, day: isoDay(Math.floor(u * DAYS)) };
  for (const selectivity of FILTER_SELECTIVITIES) {
    const name = label(selectivity);
    metadata[`eq_${name}`] = u < selectivity;
    metadata[`ne_${name}`] = !(u < selectivity);
    if (u < selectivity) metadata[`has_${name}`] = 'yes';
  }
  return metadata;
}

function draws(size: number): Float64Array {
  const random = seededRandom(1407);
  return Float64Array.from({ length: size }, () => random());
}

/** Query vectors by text: the engine's embedder, with nothing to embed. */
class PrecomputedQueries implements TextEmbedder {
  readonly maxContentTokens = 512;
  constructor(
    readonly space: EmbeddingSpace,
    private readonly vectors: readonly Float32Array[],
  ) {}
  countTokens(text: string): number {
    return text.length;
  }
  async embedQuery(text: string): Promise<Float32Array> {
    return this.vectors[Number(text.slice(1))] as Float32Array;
  }
  async embedDocuments(): Promise<Float32Array[]> {
    throw new Error('the filters bench embeds nothing');
  }
}

function recall(truth: readonly (readonly string[])[], answers: readonly (readonly string[])[]): number {
  let sum = 0;
  truth.forEach((expected, query) => {
    const found = new Set(answers[query]);
    sum += expected.filter((id) => found.has(id)).length / Math.max(1, expected.length);
  });
  return sum / Math.max(1, truth.length);
}

export async function benchFilters(options: {
  readonly sizes: readonly number[];
  readonly dimensions: number;
  readonly queries: number;
  readonly workDirectory: string;
  /** Measured passes over the queries (after one warm-up pass). */
  readonly passes: number;
}): Promise<FiltersResults> {
  const space: EmbeddingSpace = {
    modelId: 'synthetic-clustered',
    dimensions: options.dimensions,
    pooling: 'mean',
    normalized: true,
  };
  const queryVectors = Array.from({ length: options.queries }, (_, n) =>
    clusteredVector(90_000_000 + n, options.dimensions),
  );
  const sizes: FiltersSizeResult[] = [];
  for (const size of options.sizes) {
    const u = draws(size);
    const built = await cachedSnapshot(
      options.workDirectory,
      `filters-${options.dimensions}d-${size}`,
      () => ({
        chunks: Array.from({ length: size }, (_, row): EmbeddedChunk => {
          // Zero-padded ids: rows sort by docId, so row = index here.
          const docId = `c${String(row).padStart(8, '0')}`;
          return {
            chunkId: `${docId}#0`,
            docId,
            ordinal: 0,
            text: `synthetic chunk ${row}`,
            metadata: syntheticMetadata(u[row] as number),
            contentHash: String(row),
            vector: clusteredVector(row, options.dimensions),
          };
        }),
        space,
        dtype: 'f16',
      }),
    );
    const snapshot = await FileSnapshot.open(built.directory, { verifyChecksums: false });
    const embedder = new PrecomputedQueries(space, queryVectors);
    const engines = {
      candidates: new SearchEngine(snapshot, embedder),
      documents: new SearchEngine(snapshot, embedder, undefined, { filteredDenseTarget: 'documents' }),
    };
    const texts = queryVectors.map((_, n) => `q${n}`);

    const pass = async (filter: MetadataFilter | undefined, target: keyof typeof engines = 'candidates') => {
      const engine = engines[target];
      for (const query of texts) await engine.search({ query, k: K, mode: 'dense', filter });
      const sample: number[] = [];
      let answers: string[][] = [];
      for (let repeat = 0; repeat < options.passes; repeat += 1) {
        answers = [];
        for (const query of texts) {
          const { results, timingsMs } = await engine.search({ query, k: K, mode: 'dense', filter });
          sample.push(timingsMs.total - timingsMs.embed);
          answers.push(results.map((result) => result.chunkId));
        }
      }
      return { ms: percentiles(sample), answers };
    };

    const unfilteredTruth = queryVectors.map((query) =>
      snapshot.searchExact(query, K).map((hit) => snapshot.chunkAt(hit.row).chunkId),
    );
    const unfiltered = await pass(undefined);
    progress(
      `filters ${size}: unfiltered dense p50 ${unfiltered.ms.p50.toFixed(2)} ms, p99 ${unfiltered.ms.p99.toFixed(2)} ms`,
    );
    const filtered: FilteredRow[] = [];
    for (const selectivity of FILTER_SELECTIVITIES) {
      const matching: number[] = [];
      for (let row = 0; row < size; row += 1) if ((u[row] as number) < selectivity) matching.push(row);
      const truth = queryVectors.map((query) =>
        snapshot.searchExact(query, K, matching).map((hit) => snapshot.chunkAt(hit.row).chunkId),
      );
      // Every operator with the default engine, then equality with `filteredDenseTarget: 'documents'`.
      const runs = [
        ...FILTER_OPERATORS.map((operator) => ({ operator, target: 'candidates' as const })),
        { operator: 'equality' as const, target: 'documents' as const },
      ];
      for (const { operator, target } of runs) {
        const filter = operatorFilter(operator, selectivity);
        const counted = snapshot.rowsMatching(filter).count();
        if (counted !== matching.length)
          throw new Error(
            `${operator} at ${selectivity} matched ${counted} rows, expected ${matching.length}`,
          );
        const { ms, answers } = await pass(filter, target);
        filtered.push({
          operator,
          selectivity,
          matchingRows: matching.length,
          ms,
          p99OverUnfiltered: ms.p99 / unfiltered.ms.p99,
          recallAt10: recall(truth, answers),
          path:
            matching.length <= exactFilterLimit(target === 'documents' ? K : 100, size) ? 'exact' : 'hnsw',
          target,
        });
        progress(
          `filters ${size}: ${operator}${target === 'documents' ? ' (target documents)' : ''} ${selectivity * 100}% (${matching.length} rows): p50 ${ms.p50.toFixed(2)} ms, p99 ${ms.p99.toFixed(2)} ms (${(ms.p99 / unfiltered.ms.p99).toFixed(2)}× unfiltered), recall@10 ${filtered.at(-1)?.recallAt10.toFixed(3)}`,
        );
      }
    }
    sizes.push({
      chunks: size,
      buildSeconds: built.buildSeconds,
      reused: built.reused,
      unfiltered: unfiltered.ms,
      unfilteredRecallAt10: recall(unfilteredTruth, unfiltered.answers),
      filtered,
    });
  }
  return {
    dimensions: options.dimensions,
    queries: options.queries,
    exactFilterLimits: Object.fromEntries(options.sizes.map((size) => [size, exactFilterLimit(100, size)])),
    sizes,
  };
}
