import type { Chunk } from './chunking.js';
import { embeddingInput } from './chunking.js';
import type { LexicalIndex } from './lexical.js';
import { type ScoredRow, TopK } from './vectors.js';

/** A chunk with its embedding, as written by the encoder and held by the delta. */
export interface EmbeddedChunk extends Chunk {
  /** Unit-length vector of the snapshot's embedding space. */
  readonly vector: Float32Array;
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
  ) {
    this.highestSequence = watermark;
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
      for (const chunk of previous) this.lexical.remove(chunk.chunkId);
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
    this.lexical.addAll(chunks.map((chunk) => ({ chunkId: chunk.chunkId, text: embeddingInput(chunk) })));
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
    const docId = chunkId.slice(0, chunkId.lastIndexOf('#'));
    return this.chunksByDocument.get(docId)?.find((chunk) => chunk.chunkId === chunkId);
  }

  /** Every chunk held by the delta. */
  *chunks(): IterableIterator<EmbeddedChunk> {
    for (const chunks of this.chunksByDocument.values()) yield* chunks;
  }

  /** Exact top-k over the delta's chunks by dot product, optionally restricted by `accept`. */
  searchDense(query: Float32Array, k: number, accept?: (chunk: EmbeddedChunk) => boolean): DeltaHit[] {
    const all: EmbeddedChunk[] = [];
    const best = new TopK(k);
    for (const chunk of this.chunks()) {
      if (accept && !accept(chunk)) continue;
      let sum = 0;
      for (let i = 0; i < query.length; i += 1) sum += (query[i] as number) * (chunk.vector[i] as number);
      best.offer(all.length, sum);
      all.push(chunk);
    }
    return best
      .sorted()
      .map(({ row, similarity }: ScoredRow) => ({ chunk: all[row] as EmbeddedChunk, similarity }));
  }
}
