import { type Chunk, documentIdOfChunk } from './chunking.js';
import type { MetadataFilter } from './filters.js';
import type { LexicalIndex } from './lexical.js';
import { LiveMetadataIndex, rowsMatching } from './metadata-index.js';
import { type ScoredRow, TopK } from './vectors.js';

/** A chunk with its embedding, as written by the encoder and held by the delta. */
export interface EmbeddedChunk extends Chunk {
  /** Unit-length vector of the snapshot's embedding space. */
  readonly vector: Float32Array;
}

/**
 * An approximate nearest-neighbour index over the delta's vectors, keyed by small integers (an
 * adapter wraps usearch). Similarities are inner products of unit vectors.
 */
export interface DeltaVectorIndex {
  add(key: number, vector: Float32Array): void;
  remove(key: number): void;
  /** The best `k` keys, best first. */
  search(query: Float32Array, k: number): Array<{ readonly key: number; readonly similarity: number }>;
}

/** When and how a large delta is searched by ANN instead of brute force. */
export interface DeltaAnnOptions {
  /** A new, empty index of the delta's dimensions. */
  readonly create: () => DeltaVectorIndex;
  /**
   * From this many chunks an index is kept (built once, then updated with every change). Below
   * it brute force is faster than an index lookup. Default 2,000.
   */
  readonly minChunks?: number;
  /** Candidates fetched per result, re-scored exactly. Default 2. */
  readonly oversample?: number;
}

/** A dense match in the delta. */
export interface DeltaHit {
  readonly chunk: EmbeddedChunk;
  readonly similarity: number;
}

/**
 * The mutable layer over an immutable snapshot: documents changed after the snapshot's watermark.
 *
 * Changes are per document and carry the change-log sequence that produced them. A change replaces
 * all chunks of its document (an empty list deletes it), hides the document's chunks in the
 * snapshot, and updates the shared lexical index so BM25 statistics stay consistent across
 * snapshot and delta. Changes at or below the watermark, or older than the last change applied to
 * the same document, are ignored: replays and out-of-order deliveries are harmless.
 */
export class DeltaLayer {
  private readonly chunksByDocument = new Map<string, EmbeddedChunk[]>();
  private readonly lastSequenceByDocument = new Map<string, number>();
  private chunkCount = 0;
  private highestSequence: number;

  /**
   * @param watermark the snapshot's watermark: changes with a sequence ≤ it are already in the snapshot.
   * @param lexical the lexical index to keep in step (the snapshot's own, loaded in memory).
   * @param snapshotChunkIdsOf chunk ids the snapshot holds for a document, to remove them from `lexical`.
   */
  constructor(
    readonly watermark: number,
    private readonly lexical: LexicalIndex,
    private readonly snapshotChunkIdsOf: (docId: string) => readonly string[],
    private readonly ann?: DeltaAnnOptions,
  ) {
    this.highestSequence = watermark;
  }

  /** Integer keys of the chunks held, for the ANN index (assigned whether or not one exists). */
  private readonly keyByChunkId = new Map<string, number>();
  private readonly chunkByKey = new Map<number, EmbeddedChunk>();
  private nextKey = 0;
  private vectorIndex: DeltaVectorIndex | undefined;
  /** Postings of the held chunks' metadata by key, so a filter names its chunks without a scan. */
  private readonly metadataIndex = new LiveMetadataIndex();

  /** Whether dense searches without a filter go through the ANN index (the delta is large). */
  get approximate(): boolean {
    return this.vectorIndex !== undefined;
  }

  private forget(chunk: EmbeddedChunk): void {
    const key = this.keyByChunkId.get(chunk.chunkId);
    if (key === undefined) return;
    this.keyByChunkId.delete(chunk.chunkId);
    this.chunkByKey.delete(key);
    this.vectorIndex?.remove(key);
    this.metadataIndex.remove(key, chunk.metadata);
  }

  private remember(chunk: EmbeddedChunk): void {
    const key = this.nextKey++;
    this.keyByChunkId.set(chunk.chunkId, key);
    this.chunkByKey.set(key, chunk);
    this.vectorIndex?.add(key, chunk.vector);
    this.metadataIndex.add(key, chunk.metadata);
  }

  /** Build the ANN index once the delta reaches its threshold. */
  private indexIfLarge(): void {
    if (!this.ann || this.vectorIndex || this.chunkCount < (this.ann.minChunks ?? 2_000)) return;
    const index = this.ann.create();
    for (const [key, chunk] of this.chunkByKey) index.add(key, chunk.vector);
    this.vectorIndex = index;
  }

  /** Chunks held by the delta. */
  get size(): number {
    return this.chunkCount;
  }

  /** Highest change-log sequence applied (the watermark if none). */
  get sequence(): number {
    return this.highestSequence;
  }

  /**
   * Replace a document's chunks as of `sequence`. Returns false (and changes nothing) when the
   * change is already reflected (sequence ≤ watermark or ≤ the document's last applied change).
   */
  applyDocument(docId: string, chunks: readonly EmbeddedChunk[], sequence: number): boolean {
    if (sequence <= this.watermark || sequence <= (this.lastSequenceByDocument.get(docId) ?? -1))
      return false;
    if (chunks.some((chunk) => chunk.docId !== docId))
      throw new Error(`every chunk must belong to document ${docId}`);
    const previous = this.chunksByDocument.get(docId);
    if (previous) {
      for (const chunk of previous) {
        this.lexical.remove(chunk.chunkId);
        this.forget(chunk);
      }
      this.chunkCount -= previous.length;
    } else if (!this.lastSequenceByDocument.has(docId)) {
      for (const chunkId of this.snapshotChunkIdsOf(docId)) this.lexical.remove(chunkId);
    }
    this.lastSequenceByDocument.set(docId, sequence);
    this.highestSequence = Math.max(this.highestSequence, sequence);
    if (chunks.length === 0) {
      this.chunksByDocument.delete(docId);
      return true;
    }
    this.chunksByDocument.set(docId, [...chunks]);
    this.chunkCount += chunks.length;
    for (const chunk of chunks) this.remember(chunk);
    this.indexIfLarge();
    this.lexical.addChunks(chunks);
    return true;
  }

  /** Delete a document as of `sequence` (tombstone). Same staleness rules as {@link applyDocument}. */
  deleteDocument(docId: string, sequence: number): boolean {
    return this.applyDocument(docId, [], sequence);
  }

  /**
   * Record that every change up to `sequence` has been read, including changes that needed no
   * work (already in the snapshot, or superseded). The change-log tail resumes after it.
   */
  advanceTo(sequence: number): void {
    this.highestSequence = Math.max(this.highestSequence, sequence);
  }

  /** Sequence of the last change applied to a document, if any. */
  lastSequenceOf(docId: string): number | undefined {
    return this.lastSequenceByDocument.get(docId);
  }

  /** The delta's current chunks of a document (empty when deleted or unchanged). */
  chunksOf(docId: string): readonly EmbeddedChunk[] {
    return this.chunksByDocument.get(docId) ?? [];
  }

  /** True when the snapshot's copy of this document must not be returned (updated or deleted). */
  hidesSnapshotDocument(docId: string): boolean {
    return this.lastSequenceByDocument.has(docId);
  }

  /** Documents whose snapshot chunks are hidden. */
  hiddenDocuments(): IterableIterator<string> {
    return this.lastSequenceByDocument.keys();
  }

  /** A chunk held by the delta. */
  chunk(chunkId: string): EmbeddedChunk | undefined {
    const docId = documentIdOfChunk(chunkId);
    if (docId === undefined) return undefined;
    return this.chunksByDocument.get(docId)?.find((chunk) => chunk.chunkId === chunkId);
  }

  /** Every chunk held by the delta. */
  *chunks(): IterableIterator<EmbeddedChunk> {
    for (const chunks of this.chunksByDocument.values()) yield* chunks;
  }

  /** The delta's chunks whose metadata matches `filter`, found by its metadata index. */
  *chunksMatching(filter: MetadataFilter): IterableIterator<EmbeddedChunk> {
    for (const key of rowsMatching(filter, this.metadataIndex).rows()) {
      const chunk = this.chunkByKey.get(key);
      if (chunk) yield chunk;
    }
  }

  /**
   * Top-k over the delta's chunks by dot product, optionally restricted by a metadata filter
   * (answered by the delta's metadata index: only matching chunks are scored) or a predicate.
   * Exact while the delta is small or a filter applies; past `ann.minChunks` an unfiltered search
   * takes `oversample × k` candidates from the ANN index and re-scores them exactly, so its cost
   * stays flat as the delta grows.
   */
  searchDense(
    query: Float32Array,
    k: number,
    accept?: MetadataFilter | ((chunk: EmbeddedChunk) => boolean),
  ): DeltaHit[] {
    if (accept !== undefined && typeof accept !== 'function') {
      const best = new TopK(k);
      const matching: EmbeddedChunk[] = [];
      for (const chunk of this.chunksMatching(accept)) {
        best.offer(matching.length, dot(query, chunk.vector));
        matching.push(chunk);
      }
      return best
        .sorted()
        .map(({ row, similarity }: ScoredRow) => ({ chunk: matching[row] as EmbeddedChunk, similarity }));
    }
    if (this.vectorIndex && !accept) {
      const best = new TopK(k);
      const candidates: EmbeddedChunk[] = [];
      for (const { key } of this.vectorIndex.search(query, k * (this.ann?.oversample ?? 2))) {
        const chunk = this.chunkByKey.get(key);
        if (!chunk) continue;
        best.offer(candidates.length, dot(query, chunk.vector));
        candidates.push(chunk);
      }
      return best
        .sorted()
        .map(({ row, similarity }: ScoredRow) => ({ chunk: candidates[row] as EmbeddedChunk, similarity }));
    }
    const all: EmbeddedChunk[] = [];
    const best = new TopK(k);
    for (const chunk of this.chunks()) {
      if (accept && !accept(chunk)) continue;
      best.offer(all.length, dot(query, chunk.vector));
      all.push(chunk);
    }
    return best
      .sorted()
      .map(({ row, similarity }: ScoredRow) => ({ chunk: all[row] as EmbeddedChunk, similarity }));
  }
}

function dot(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i += 1) sum += (a[i] as number) * (b[i] as number);
  return sum;
}
