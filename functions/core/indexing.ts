import { type Chunk, type ChunkingOptions, chunkDocument, embeddingInput } from './chunking.js';
import type { EmbeddedChunk } from './delta.js';
import type { SourceDocument } from './documents.js';
import type { TextEmbedder } from './embedding-space.js';

/** Vectors by chunk content hash, for one embedding space: unchanged content is never re-embedded. */
export interface VectorCache {
  get(contentHash: string): Float32Array | undefined;
  set(contentHash: string, vector: Float32Array): void;
}

/** Progress of a long embedding run: `done` of `total` chunks (cache hits included). */
export type ProgressListener = (done: number, total: number) => void;

/** Chunk many documents with the embedder's tokenizer and window size. */
export function chunkDocuments(
  documents: Iterable<SourceDocument>,
  embedder: Pick<TextEmbedder, 'countTokens' | 'maxContentTokens'>,
  options: Omit<ChunkingOptions, 'maxTokens'> & { maxTokens?: number } = {},
): Chunk[] {
  const chunkingOptions: ChunkingOptions = {
    ...options,
    maxTokens: options.maxTokens ?? embedder.maxContentTokens,
  };
  const chunks: Chunk[] = [];
  for (const document of documents) chunks.push(...chunkDocument(document, embedder, chunkingOptions));
  return chunks;
}

/**
 * Thrown by {@link embedChunks} when its `keepGoing` check says stop between two groups. Every
 * vector embedded so far has been handed to the cache, so a later run continues where this one
 * stopped.
 */
export class EmbeddingInterruptedError extends Error {
  override readonly name = 'EmbeddingInterruptedError';
  constructor(
    /** Chunks with a vector when the run stopped (cache hits included). */
    readonly done: number,
    /** Chunks in the run. */
    readonly total: number,
  ) {
    super(`embedding stopped after ${done} of ${total} chunks`);
  }
}

/**
 * Embed chunks, reusing cached vectors by content hash and embedding each distinct content once.
 * Results are in input order.
 *
 * @param groupSize chunks handed to the embedder per call (it batches further inside). Default 256.
 * @param keepGoing asked before each group after the first new one (with the chunks done so far);
 *   `false` stops the run with {@link EmbeddingInterruptedError}.
 */
export async function embedChunks(
  chunks: readonly Chunk[],
  embedder: TextEmbedder,
  options: {
    cache?: VectorCache;
    onProgress?: ProgressListener;
    groupSize?: number;
    keepGoing?: (done: number, total: number) => boolean;
  } = {},
): Promise<EmbeddedChunk[]> {
  const { cache, onProgress, keepGoing } = options;
  const groupSize = options.groupSize ?? 256;
  const vectorByHash = new Map<string, Float32Array>();
  const missing: Chunk[] = [];
  for (const chunk of chunks) {
    if (vectorByHash.has(chunk.contentHash)) continue;
    const cached = cache?.get(chunk.contentHash);
    if (cached) vectorByHash.set(chunk.contentHash, cached);
    else {
      vectorByHash.set(chunk.contentHash, new Float32Array(0));
      missing.push(chunk);
    }
  }
  let done = chunks.length - missing.length;
  onProgress?.(done, chunks.length);
  for (let start = 0; start < missing.length; start += groupSize) {
    if (start > 0 && keepGoing && !keepGoing(done, chunks.length))
      throw new EmbeddingInterruptedError(done, chunks.length);
    const group = missing.slice(start, start + groupSize);
    const vectors = await embedder.embedDocuments(group.map(embeddingInput));
    group.forEach((chunk, index) => {
      const vector = vectors[index] as Float32Array;
      vectorByHash.set(chunk.contentHash, vector);
      cache?.set(chunk.contentHash, vector);
    });
    done += group.length;
    onProgress?.(done, chunks.length);
  }
  return chunks.map((chunk) => ({ ...chunk, vector: vectorByHash.get(chunk.contentHash) as Float32Array }));
}
