import { EmbeddingSpaceMismatchError } from './errors.js';
import type { PoolingStrategy } from './pooling.js';

/**
 * Everything that makes two vectors comparable. Recorded in every snapshot manifest and checked at
 * load: vectors from different spaces must never be searched together (DESIGN.md invariants).
 */
export interface EmbeddingSpace {
  /** Readable model name, e.g. `Xenova/all-MiniLM-L6-v2` or `use-lite`. */
  readonly modelId: string;
  /**
   * What the model is, by its files: `sha256:<hex>` over the ONNX graph and tokenizer.json.
   * Two models with one name (or one model under two names) are told apart by it. Absent in
   * spaces recorded before it existed.
   */
  readonly fingerprint?: string;
  /** Vector length. */
  readonly dimensions: number;
  readonly pooling: PoolingStrategy;
  /** True when vectors are L2-normalised (cosine = dot product). */
  readonly normalized: boolean;
}

/**
 * Throws {@link EmbeddingSpaceMismatchError} naming every field that differs. The model is
 * compared by fingerprint when both sides have one (its readable name may differ: the same files
 * under another name are the same space), else by `modelId` (spaces recorded before fingerprints).
 */
export function assertSameEmbeddingSpace(
  expected: EmbeddingSpace,
  actual: EmbeddingSpace,
  what: string,
): void {
  const model = expected.fingerprint && actual.fingerprint ? 'fingerprint' : 'modelId';
  const differences = ([model, 'dimensions', 'pooling', 'normalized'] as const)
    .filter((field) => expected[field] !== actual[field])
    .map((field) => `${field}: expected ${String(expected[field])}, found ${String(actual[field])}`);
  if (differences.length > 0) {
    throw new EmbeddingSpaceMismatchError(
      `${what} was built for another embedding space (${differences.join('; ')}); rebuild it with the current model or load the matching model`,
    );
  }
}

/** Turns query and passage texts into vectors of one embedding space. */
export interface TextEmbedder {
  readonly space: EmbeddingSpace;
  /** Content tokens a passage may hold before the model truncates it (special tokens excluded). */
  readonly maxContentTokens: number;
  countTokens(text: string): number;
  /** One vector for a search query (query prefix applied). */
  embedQuery(text: string): Promise<Float32Array>;
  /** Vectors for passages (document prefix applied), in input order. */
  embedDocuments(texts: readonly string[]): Promise<Float32Array[]>;
}

/** Scores (query, passage) pairs with a cross-encoder; higher is more relevant. */
export interface PairScorer {
  readonly modelId: string;
  score(query: string, passages: readonly string[]): Promise<number[]>;
}
