import { z } from 'zod';
import type { Chunk } from './chunking.js';
import { embeddingInput } from './chunking.js';
import { type DeltaAnnOptions, DeltaLayer } from './delta.js';
import type { PairScorer, TextEmbedder } from './embedding-space.js';
import { assertSameEmbeddingSpace } from './embedding-space.js';
import { InvalidRequestError } from './errors.js';
import { type MetadataFilter, matchesFilter, metadataFilterSchema } from './filters.js';
import { normalizedScoreFusion, type RankedItem, reciprocalRankFusion } from './fusion.js';
import {
  analyzeEnglish,
  DEFAULT_LEXICAL_UNIT,
  LexicalIndex,
  type LexicalUnit,
  termHighlights,
} from './lexical.js';
import { RowBitset } from './metadata-index.js';
import type { SnapshotManifest } from './snapshot-manifest.js';
import type { ScoredRow } from './vectors.js';

/** Largest `k` a search may ask for. */
export const MAX_RESULTS = 100;
/**
 * Longest accepted query, in characters: 32,768, room for a pasted page. Dense search embeds the
 * first tokens that fit the model (truncated like a passage); BM25 scores at most
 * `MAX_QUERY_TERMS` distinct terms, the rarest (see `LexicalIndex.rank`).
 */
export const MAX_QUERY_LENGTH = 32_768;

/** Schema of a search request (the `POST /search` body and the CLI/eval options). */
export const searchRequestSchema = z
  .object({
    query: z.string().trim().min(1, 'query must not be empty').max(MAX_QUERY_LENGTH),
    k: z.number().int().min(1).max(MAX_RESULTS).default(10),
    mode: z.enum(['hybrid', 'dense', 'lexical']).default('hybrid'),
    filter: metadataFilterSchema.optional(),
    rerank: z.boolean().optional(),
    /** Brute-force dense search instead of HNSW, for verification. */
    exact: z.boolean().optional(),
  })
  .strict();

export type SearchRequest = z.input<typeof searchRequestSchema>;
export type SearchMode = 'hybrid' | 'dense' | 'lexical';

/** One document in the answer, represented by its best-matching chunk. */
export interface SearchResult {
  readonly docId: string;
  readonly chunkId: string;
  /** Cosine similarity (dense), BM25 (lexical), fused score (hybrid) or reranker logit. */
  readonly score: number;
  /** What the score is made of (see {@link ScoreComponents}). */
  readonly scores: ScoreComponents;
  readonly text: string;
  /** `[start, end)` offsets in `text` of the query's terms as BM25 matches them (see `termHighlights`). */
  readonly highlights: Array<[number, number]>;
  readonly title?: string;
  readonly metadata: Chunk['metadata'];
}

export interface SearchResponse {
  readonly results: SearchResult[];
  readonly index: { readonly version: string | null; readonly deltaSize: number };
  /** Milliseconds spent in each part of the request. */
  readonly timingsMs: SearchTimings;
}

/**
 * Milliseconds spent in each stage of one search. `search` = `dense` + `lexical` + `fusion`
 * (everything between the query vector and the ranked list); `total` includes validation too.
 */
export interface SearchTimings {
  /** Query embedding (0 in lexical mode). */
  readonly embed: number;
  /** Dense candidates: HNSW (or exact) search of snapshot and delta, hidden rows removed, best chunk per document. */
  readonly dense: number;
  /** BM25 candidates from snapshot and delta, best chunk per document. */
  readonly lexical: number;
  /** Combining the dense and lexical lists (0 unless hybrid). */
  readonly fusion: number;
  readonly search: number;
  /** Cross-encoder rescoring (0 without rerank). */
  readonly rerank: number;
  /** Building the answer records (text, title, metadata) for the top k. */
  readonly hydrate: number;
  readonly total: number;
}

/**
 * The read side of an immutable snapshot, as the engine needs it. Implemented over files by
 * `adapters/index/snapshot-files.ts`; rows are 0-based and are the usearch keys.
 */
export interface SnapshotView {
  readonly manifest: SnapshotManifest;
  readonly chunkCount: number;
  chunkAt(row: number): Chunk;
  rowOfChunk(chunkId: string): number | undefined;
  rowsOfDocument(docId: string): readonly number[];
  /** HNSW search: approximate top-k rows by cosine similarity. */
  searchApproximate(query: Float32Array, k: number): ScoredRow[];
  /** Brute-force top-k rows by cosine similarity, optionally among `rows` only. */
  searchExact(query: Float32Array, k: number, rows?: Iterable<number>): ScoredRow[];
  /** A fresh, mutable copy of the snapshot's lexical index (the delta keeps it in step). */
  loadLexicalIndex(): LexicalIndex;
  /** Rows whose metadata matches `filter`, answered by the metadata index (no record is read). */
  rowsMatching(filter: MetadataFilter): RowBitset;
}

/**
 * Default [dense, lexical] weights of normalised-score fusion, measured with USE-lite on SciFact
 * (the only labelled data here): the one setting that lifted hybrid above BM25 both with
 * one chunk per document and with windowed chunks. Tuned on the test split, which has no train qrels.
 */
export const DEFAULT_FUSION_WEIGHTS: readonly [number, number] = [0.2, 1];

/** How dense and lexical rankings are combined in hybrid mode. */
export type FusionMethod = 'rrf' | 'normalized';

/**
 * Cost of one HNSW candidate relative to scoring one row exactly, measured in the bench's
 * `filters` section (100k chunks, 384-d, f16 HNSW): an HNSW search costs ~25 µs per requested
 * candidate under load (~6 µs idle), exact scoring ~2.5 µs per row (~0.55 µs idle, in cache).
 */
const HNSW_CANDIDATE_COST = 10;
/** HNSW candidates fetched per wanted match, over the inverse selectivity: margin for the variance. */
const FILTER_OVERFETCH = 1.3;

/**
 * Matches up to which a filtered dense search scores the matching rows exactly, when `count`
 * matching rows are wanted among `rows`: where exact scoring (linear in the matches `m`) costs
 * less than an HNSW search over-fetched by the inverse selectivity (`1.3 · count · rows / m`
 * candidates), i.e. `m² ≤ 1.3 · HNSW_CANDIDATE_COST · count · rows`. Dense mode at k = 10 wants 10:
 * ~3.6k matches at 100k rows, ~11k at 1M; hybrid wants 100: ~11k and ~36k.
 */
export function exactFilterLimit(count: number, rows: number): number {
  return Math.floor(Math.sqrt(FILTER_OVERFETCH * HNSW_CANDIDATE_COST * count * rows));
}

export interface SearchEngineOptions {
  /**
   * Hybrid fusion. Default `normalized` (min–max scaled scores, weighted sum): on SciFact it beat
   * reciprocal-rank fusion, which never rose above BM25 alone (README "Hybrid fusion").
   */
  readonly fusion?: FusionMethod;
  /**
   * Weights of [dense, lexical] for `normalized` fusion. Default {@link DEFAULT_FUSION_WEIGHTS}.
   * Raise the dense weight for a stronger embedding model; tune it with `npm run eval -- --dense-weight`.
   */
  readonly fusionWeights?: readonly [number, number];
  /** Documents re-scored by the reranker. Default 20 (at least k). */
  readonly rerankDepth?: number;
  /**
   * A filtered dense search is answered exactly over the matching chunks when at most this many
   * match (exact recall, cost linear in matches); above it HNSW results are over-fetched and
   * tested against the filter's bitmap. Default: the cheaper path by {@link exactFilterLimit}.
   */
  readonly exactFilterLimit?: number;
  /**
   * What a filtered dense-mode search over HNSW candidates (a filter matching more rows than
   * {@link exactFilterLimit}) looks for: `candidates` (default) the full candidate list of an
   * unfiltered search, so HNSW is searched `1.3 × 100 ÷ selectivity` deep and recall@10 equals
   * exact filtered search (bench `filters`: 1.000 at 10% and 0.999 at 50% of 100k chunks, 0.993 and
   * 0.987 at 1M); `documents` only k matching rows, about 10× fewer HNSW candidates (1M at 10%:
   * p99 2.29 instead of 9.19 ms) at the HNSW's own recall (0.965 there). Bench `filters` measures both.
   */
  readonly filteredDenseTarget?: 'candidates' | 'documents';
  /** ANN over a large delta (see {@link DeltaAnnOptions}); brute force always when absent. */
  readonly deltaAnn?: DeltaAnnOptions;
  /**
   * What a BM25 entry is before the first snapshot (`DEFAULT_LEXICAL_UNIT`: whole documents);
   * with a snapshot, the unit its manifest records.
   */
  readonly lexicalUnit?: LexicalUnit;
  /**
   * Rank of the BM25 score that is the floor (0 point) of the lexical list's min–max scaling in
   * `normalized` fusion. Default 10 × the candidate count (1,000 for k ≤ 20). The deeper the
   * floor, the more BM25 matches a search must rank exactly, which limits dynamic pruning.
   */
  readonly lexicalFloorRank?: number;
}

interface Candidate {
  readonly chunk: Chunk;
  readonly score: number;
  readonly scores?: ScoreComponents;
  /** The chunk stands for a whole-document BM25 match (its document's first chunk), not for itself. */
  readonly wholeDocument?: boolean;
}

/**
 * The parts of a result's score: `dense` the cosine similarity of its best chunk to the query
 * (−1…1), `lexical` its best chunk's BM25 score (≥ 0, unbounded, comparable within one corpus),
 * `fused` the hybrid fusion score (min–max scaled within one answer: 1.2 is the top of any
 * hybrid answer, so it ranks but does not compare across queries), `rerank` the cross-encoder's
 * logit. A part is absent when that ranking did not produce the result.
 */
export interface ScoreComponents {
  readonly dense?: number;
  readonly lexical?: number;
  readonly fused?: number;
  readonly rerank?: number;
}

/**
 * Searches a snapshot and its delta: dense (HNSW or exact), lexical (BM25) or hybrid (fusion),
 * with metadata filters, per-document aggregation (best chunk) and an optional rerank stage.
 * Deleted or superseded chunks are never returned.
 */
export class SearchEngine {
  private currentSnapshot: SnapshotView | undefined;
  private lexical: LexicalIndex;
  private currentDelta: DeltaLayer;

  constructor(
    snapshot: SnapshotView | undefined,
    private readonly embedder: TextEmbedder,
    private readonly reranker: PairScorer | undefined = undefined,
    private readonly options: SearchEngineOptions = {},
  ) {
    if (snapshot)
      assertSameEmbeddingSpace(
        embedder.space,
        snapshot.manifest.embedding,
        `snapshot ${snapshot.manifest.version}`,
      );
    this.currentSnapshot = snapshot;
    this.lexical =
      snapshot?.loadLexicalIndex() ??
      LexicalIndex.create(undefined, options.lexicalUnit ?? DEFAULT_LEXICAL_UNIT);
    this.currentDelta = this.newDelta(snapshot, this.lexical);
  }

  get snapshot(): SnapshotView | undefined {
    return this.currentSnapshot;
  }

  /** Changes since the snapshot; apply change-log entries here. */
  get delta(): DeltaLayer {
    return this.currentDelta;
  }

  /**
   * Swap in a newer snapshot. Delta changes newer than its watermark are carried over, so nothing
   * written since the snapshot was frozen disappears. The swap is a single assignment: a search
   * in flight finishes on the state it started with.
   */
  swapSnapshot(snapshot: SnapshotView): void {
    assertSameEmbeddingSpace(
      this.embedder.space,
      snapshot.manifest.embedding,
      `snapshot ${snapshot.manifest.version}`,
    );
    const lexical = snapshot.loadLexicalIndex();
    const delta = this.newDelta(snapshot, lexical);
    const previous = this.currentDelta;
    for (const docId of previous.hiddenDocuments()) {
      const sequence = previous.lastSequenceOf(docId);
      if (sequence !== undefined) delta.applyDocument(docId, previous.chunksOf(docId), sequence);
    }
    this.currentSnapshot = snapshot;
    this.lexical = lexical;
    this.currentDelta = delta;
  }

  private newDelta(snapshot: SnapshotView | undefined, lexical: LexicalIndex): DeltaLayer {
    return new DeltaLayer(
      snapshot?.manifest.watermark ?? 0,
      lexical,
      (docId) => (snapshot ? snapshot.rowsOfDocument(docId).map((row) => snapshot.chunkAt(row).chunkId) : []),
      this.options.deltaAnn,
    );
  }

  /** Validate a request, throwing {@link InvalidRequestError} with every problem named. */
  static parseRequest(request: unknown): z.output<typeof searchRequestSchema> {
    const parsed = searchRequestSchema.safeParse(request);
    if (!parsed.success) {
      throw new InvalidRequestError(
        parsed.error.issues
          .map((issue) => `${issue.path.length ? `${issue.path.join('.')}: ` : ''}${issue.message}`)
          .join('; '),
      );
    }
    return parsed.data;
  }

  async search(rawRequest: SearchRequest): Promise<SearchResponse> {
    const started = performance.now();
    const request = SearchEngine.parseRequest(rawRequest);
    const rerank = request.rerank ?? this.reranker !== undefined;
    if (rerank && !this.reranker)
      throw new InvalidRequestError('rerank was requested but no reranker model is configured');
    // Capture the state once so a concurrent snapshot swap cannot mix two versions in one answer.
    const snapshot = this.currentSnapshot;
    const delta = this.currentDelta;
    const lexical = this.lexical;

    const candidateCount = Math.min(Math.max(request.k * 5, 100), 1_000);
    let queryVector: Float32Array | undefined;
    let embedMs = 0;
    if (request.mode !== 'lexical') {
      const embedStarted = performance.now();
      queryVector = await this.embedder.embedQuery(request.query);
      embedMs = performance.now() - embedStarted;
    }

    const searchStarted = performance.now();
    let denseDocuments: Candidate[] = [];
    if (queryVector) {
      // Several chunks can belong to one document: widen the candidate pool until it yields k
      // documents or holds every chunk there is.
      const available = (snapshot?.chunkCount ?? 0) + delta.size;
      for (let count = candidateCount; ; count *= 4) {
        // With `filteredDenseTarget: 'documents'` dense mode asks a filtered HNSW search for k rows
        // per 100 candidates instead of all of them (see the option).
        const enough =
          request.mode === 'dense' && this.options.filteredDenseTarget === 'documents'
            ? Math.ceil((request.k * count) / candidateCount)
            : count;
        const { candidates: chunks, complete } = this.denseCandidates(
          snapshot,
          delta,
          queryVector,
          count,
          enough,
          request.filter,
          request.exact ?? false,
        );
        denseDocuments = bestChunkPerDocument(chunks);
        if (denseDocuments.length >= request.k || (complete && chunks.length < count) || count >= available)
          break;
      }
    }
    const denseMs = queryVector ? performance.now() - searchStarted : 0;
    const lexicalStarted = performance.now();
    // A wide lexical list: normalised fusion scales by each list's minimum, so its length is part of
    // the tuned ranking (README "Hybrid fusion"); selecting 1,000 of the scored chunks costs ~0.3 ms.
    // Hybrid fuses min–max scaled scores, and the lexical scale's floor is the 1,000th chunk's
    // score (the setting tuned on SciFact, README "Hybrid fusion"); only the top of that list can
    // reach the fused top k, so only the top is materialised. Lexical mode returns the long list.
    // Whole-document entries are one per document; chunk entries need a wider list to yield k documents.
    const lexicalLimit =
      request.mode === 'hybrid' || lexical.unit === 'document' ? candidateCount : candidateCount * 10;
    const lexicalRanking =
      request.mode === 'dense'
        ? { candidates: [], floorScore: Number.NaN }
        : this.lexicalCandidates(
            snapshot,
            delta,
            lexical,
            request.query,
            lexicalLimit,
            request.mode === 'hybrid' ? (this.options.lexicalFloorRank ?? candidateCount * 10) : lexicalLimit,
            request.filter,
          );
    const lexicalDocuments = bestChunkPerDocument(lexicalRanking.candidates);
    const lexicalMs = request.mode === 'dense' ? 0 : performance.now() - lexicalStarted;
    const fusionStarted = performance.now();
    let ranked: Candidate[];
    if (request.mode === 'dense')
      ranked = denseDocuments.map((candidate) => ({ ...candidate, scores: { dense: candidate.score } }));
    else if (request.mode === 'lexical')
      ranked = lexicalDocuments.map((candidate) => ({ ...candidate, scores: { lexical: candidate.score } }));
    else ranked = this.fuse(denseDocuments, lexicalDocuments, lexicalRanking.floorScore);
    const fusionMs = request.mode === 'hybrid' ? performance.now() - fusionStarted : 0;
    const searchMs = performance.now() - searchStarted;
    // A whole-document BM25 match is shown (and reranked) as its chunk that holds most of the
    // query's terms, not as its first chunk.
    const shown = Math.max(request.k, rerank ? (this.options.rerankDepth ?? 20) : 0);
    const queryTerms = new Set(analyzeEnglish(request.query));
    ranked = ranked.map((candidate, rank) =>
      rank < shown && candidate.wholeDocument
        ? {
            ...candidate,
            chunk: bestMatchingChunk(
              chunksOfDocument(snapshot, delta, candidate.chunk, request.filter),
              queryTerms,
            ),
          }
        : candidate,
    );

    let rerankMs = 0;
    if (rerank && this.reranker && ranked.length > 0) {
      const rerankStarted = performance.now();
      const depth = Math.min(Math.max(this.options.rerankDepth ?? 20, request.k), ranked.length);
      const head = ranked.slice(0, depth);
      const scores = await this.reranker.score(
        request.query,
        head.map((candidate) => embeddingInput(candidate.chunk)),
      );
      const reranked = head
        .map((candidate, index) => ({
          chunk: candidate.chunk,
          score: scores[index] ?? Number.NEGATIVE_INFINITY,
          scores: { ...candidate.scores, rerank: scores[index] ?? Number.NEGATIVE_INFINITY },
        }))
        .sort((a, b) => b.score - a.score);
      ranked = [...reranked, ...ranked.slice(depth)];
      rerankMs = performance.now() - rerankStarted;
    }

    const hydrateStarted = performance.now();
    const results = ranked.slice(0, request.k).map(({ chunk, score, scores }) => ({
      docId: chunk.docId,
      chunkId: chunk.chunkId,
      score,
      scores: scores ?? {},
      text: chunk.text,
      highlights: termHighlights(chunk.text, queryTerms),
      ...(chunk.title ? { title: chunk.title } : {}),
      metadata: chunk.metadata,
    }));
    return {
      results,
      index: { version: snapshot?.manifest.version ?? null, deltaSize: delta.size },
      timingsMs: {
        embed: embedMs,
        dense: denseMs,
        lexical: lexicalMs,
        fusion: fusionMs,
        search: searchMs,
        rerank: rerankMs,
        hydrate: performance.now() - hydrateStarted,
        total: performance.now() - started,
      },
    };
  }

  /**
   * Dense chunk candidates from snapshot and delta, best first, hidden and filtered-out chunks
   * removed: `count` of them, or as many as there are (`complete`), or, from a filtered HNSW
   * search, at least `enough` (`complete` false: more may exist).
   */
  private denseCandidates(
    snapshot: SnapshotView | undefined,
    delta: DeltaLayer,
    query: Float32Array,
    count: number,
    enough: number,
    filter: MetadataFilter | undefined,
    exact: boolean,
  ): { candidates: Candidate[]; complete: boolean } {
    let complete = true;
    const candidates: Candidate[] = delta
      .searchDense(query, count, filter)
      .map(({ chunk, similarity }) => ({ chunk, score: similarity }));
    if (snapshot && snapshot.chunkCount > 0) {
      let rows: ScoredRow[];
      if (filter) {
        const found = this.filteredSnapshotRows(snapshot, delta, query, count, enough, filter, exact);
        rows = found.rows;
        complete = found.complete;
      } else {
        const visible = (row: number) => !delta.hidesSnapshotDocument(snapshot.chunkAt(row).docId);
        // Over-fetch by the number of hidden rows so that dropping them still leaves `count`.
        let hiddenRows = 0;
        for (const docId of delta.hiddenDocuments()) hiddenRows += snapshot.rowsOfDocument(docId).length;
        const fetch = Math.min(snapshot.chunkCount, count + hiddenRows);
        rows = (exact ? snapshot.searchExact(query, fetch) : snapshot.searchApproximate(query, fetch)).filter(
          (hit) => visible(hit.row),
        );
      }
      for (const { row, similarity } of rows)
        candidates.push({ chunk: snapshot.chunkAt(row), score: similarity });
    }
    return { candidates: candidates.sort((a, b) => b.score - a.score).slice(0, count), complete };
  }

  /**
   * The best `count` snapshot rows matching `filter` and not hidden by the delta. The metadata
   * index names the matching rows (no record is read). Up to {@link exactFilterLimit} matches they
   * are scored exactly (recall 1, cost linear in the matches); above it HNSW candidates are fetched
   * in proportion to the inverse selectivity and tested against the bitmap, doubled until `count`
   * pass.
   */
  private filteredSnapshotRows(
    snapshot: SnapshotView,
    delta: DeltaLayer,
    query: Float32Array,
    count: number,
    enough: number,
    filter: MetadataFilter,
    exact: boolean,
  ): { rows: ScoredRow[]; complete: boolean } {
    const matching = snapshot.rowsMatching(filter);
    const hidden = new RowBitset(snapshot.chunkCount);
    for (const docId of delta.hiddenDocuments()) hidden.addAll(snapshot.rowsOfDocument(docId));
    matching.andNot(hidden);
    const matches = matching.count();
    if (matches === 0) return { rows: [], complete: true };
    const total = snapshot.chunkCount;
    if (exact || matches <= (this.options.exactFilterLimit ?? exactFilterLimit(enough, total)))
      return { rows: snapshot.searchExact(query, count, matching.toArray()), complete: true };
    // Never fewer candidates than an unfiltered search of `count` asks for: that is its cost anyway.
    for (
      let fetch = Math.max(count, Math.ceil((FILTER_OVERFETCH * enough * total) / matches));
      ;
      fetch *= 2
    ) {
      fetch = Math.min(total, fetch);
      const rows = snapshot.searchApproximate(query, fetch).filter((hit) => matching.has(hit.row));
      if (rows.length >= count || fetch >= total) return { rows: rows.slice(0, count), complete: true };
      if (rows.length >= enough) return { rows, complete: false };
    }
  }

  private lexicalCandidates(
    snapshot: SnapshotView | undefined,
    delta: DeltaLayer,
    lexical: LexicalIndex,
    query: string,
    count: number,
    floorRank: number,
    filter: MetadataFilter | undefined,
  ): { candidates: Candidate[]; floorScore: number } {
    const resolve = (chunkId: string): Chunk | undefined => {
      const deltaChunk = delta.chunk(chunkId);
      if (deltaChunk) return deltaChunk;
      const row = snapshot?.rowOfChunk(chunkId);
      return row === undefined ? undefined : snapshot?.chunkAt(row);
    };
    // Both parts answer the filter from their metadata index: the delta's matching chunk ids, the
    // snapshot's matching rows as a bitmap the BM25 segment tests per scored row.
    // Document entries stand on their first chunk: a document is admitted when any of its chunks
    // matches (a filter on chunk metadata, e.g. a PDF's pages), and its shown chunk is a matching one.
    const deltaMatches = filter
      ? new Set(
          Array.from(delta.chunksMatching(filter), (chunk) =>
            lexical.unit === 'document'
              ? firstChunkOf(delta.chunksOf(chunk.docId), chunk).chunkId
              : chunk.chunkId,
          ),
        )
      : undefined;
    const snapshotMatches =
      filter && snapshot ? lexical.entryRowsMatching(snapshot.rowsMatching(filter)) : undefined;
    const accept = deltaMatches ? (chunkId: string) => deltaMatches.has(chunkId) : undefined;
    const acceptRow = snapshotMatches ? (row: number) => snapshotMatches.has(row) : undefined;
    const candidates: Candidate[] = [];
    const { hits, floorScore } = lexical.rank(query, count, floorRank, accept, acceptRow);
    for (const hit of hits) {
      // A segment hit names its snapshot row: no lookup by id.
      const chunk = hit.row !== undefined && snapshot ? snapshot.chunkAt(hit.row) : resolve(hit.chunkId);
      if (chunk) candidates.push({ chunk, score: hit.score, wholeDocument: lexical.unit === 'document' });
    }
    return { candidates, floorScore };
  }

  private fuse(dense: Candidate[], lexical: Candidate[], lexicalFloor: number): Candidate[] {
    const rankings = [dense, lexical].map((list) =>
      list.map((c): RankedItem => ({ id: c.chunk.docId, score: c.score })),
    );
    const fused =
      (this.options.fusion ?? 'normalized') === 'rrf'
        ? reciprocalRankFusion(rankings)
        : normalizedScoreFusion(rankings, this.options.fusionWeights ?? DEFAULT_FUSION_WEIGHTS, [
            undefined,
            Number.isNaN(lexicalFloor) ? undefined : lexicalFloor,
          ]);
    // A document's text is the chunk of the ranking that placed it higher.
    const denseRank = new Map(
      dense.map((c, rank) => [c.chunk.docId, { rank, chunk: c.chunk, score: c.score }]),
    );
    const lexicalRank = new Map(
      lexical.map((c, rank) => [
        c.chunk.docId,
        { rank, chunk: c.chunk, score: c.score, wholeDocument: c.wholeDocument === true },
      ]),
    );
    return fused.map(({ id, score }) => {
      const fromDense = denseRank.get(id);
      const fromLexical = lexicalRank.get(id);
      const best =
        !fromLexical || (fromDense && fromDense.rank <= fromLexical.rank) ? fromDense : fromLexical;
      return {
        chunk: (best as { chunk: Chunk }).chunk,
        ...(best === fromLexical && fromLexical?.wholeDocument ? { wholeDocument: true } : {}),
        score,
        scores: {
          ...(fromDense ? { dense: fromDense.score } : {}),
          ...(fromLexical ? { lexical: fromLexical.score } : {}),
          fused: score,
        },
      };
    });
  }
}

/** The visible chunks of `chunk`'s document (the delta's when it changed the document), by ordinal. */
function chunksOfDocument(
  snapshot: SnapshotView | undefined,
  delta: DeltaLayer,
  chunk: Chunk,
  filter?: MetadataFilter,
): readonly Chunk[] {
  const all = delta.hidesSnapshotDocument(chunk.docId)
    ? delta.chunksOf(chunk.docId)
    : (snapshot?.rowsOfDocument(chunk.docId).map((row) => snapshot.chunkAt(row)) ?? []);
  const chunks = filter ? all.filter((each) => matchesFilter(each.metadata, filter)) : all;
  return chunks.length > 0 ? chunks : [chunk];
}

/** The chunk of lowest ordinal among `chunks` (`fallback` when there are none). */
function firstChunkOf<C extends Chunk>(chunks: readonly C[], fallback: C): C {
  let first = fallback;
  for (const chunk of chunks) if (chunk.ordinal < first.ordinal) first = chunk;
  return first;
}

/** The chunk holding most distinct query terms (title included), the earliest of equals. */
function bestMatchingChunk(chunks: readonly Chunk[], queryTerms: ReadonlySet<string>): Chunk {
  let best = chunks[0] as Chunk;
  let bestCount = -1;
  for (const chunk of [...chunks].sort((a, b) => a.ordinal - b.ordinal)) {
    const found = new Set<string>();
    for (const term of analyzeEnglish(chunk.text)) if (queryTerms.has(term)) found.add(term);
    if (found.size > bestCount) {
      best = chunk;
      bestCount = found.size;
    }
  }
  return best;
}

/** Keep each document's best chunk, preserving the order of the (best-first) input. */
function bestChunkPerDocument(candidates: Candidate[]): Candidate[] {
  const seen = new Set<string>();
  const documents: Candidate[] = [];
  for (const candidate of candidates) {
    if (seen.has(candidate.chunk.docId)) continue;
    seen.add(candidate.chunk.docId);
    documents.push(candidate);
  }
  return documents;
}
