/**
 * The corpora of `npm run bench`. The base is real: SciFact abstracts chunked in overlapping
 * windows and embedded with the resolved model (use-lite here), cached by content hash. Larger
 * corpora (100k, 1M chunks) are derived from it, because embedding a million real passages would
 * take days here and uniform random vectors have none of the structure (clusters, anisotropy)
 * that makes ANN search easy or hard on real embeddings.
 *
 * A derived chunk takes a random base chunk `a` (its text, title, metadata) and a random partner
 * `b`, and gets the vector `normalise(a + 0.3·b + ε)` with Gaussian noise ε of norm ≈ 0.15. So the
 * vectors stay near the real manifold, every base chunk gets a neighbourhood of distinct
 * variants, and nearest-neighbour structure is not trivially "the copy of the query's best match".
 * Texts are copies, so lexical postings grow with the corpus as they would for common terms.
 */
import usearch from 'usearch';
import { readBeirDataset } from '../../../functions/adapters/datasets/beir-dataset.js';
import { FileVectorCache } from '../../../functions/adapters/index/file-vector-cache.js';
import { resolveModelDirectory } from '../../../functions/adapters/model/model-resolution.js';
import { OnnxEmbedder } from '../../../functions/adapters/model/onnx-embedder.js';
import type { EmbeddedChunk } from '../../../functions/core/delta.js';
import { chunkDocuments, embedChunks } from '../../../functions/core/indexing.js';
import { progress, seededRandom } from './measure.js';

/** Real chunks with vectors, real queries with vectors, and the embedder that made them. */
export interface BaseCorpus {
  readonly chunks: readonly EmbeddedChunk[];
  readonly queries: readonly { readonly text: string; readonly vector: Float32Array }[];
  readonly embedder: OnnxEmbedder;
  readonly modelDirectory: string;
}

/** Load, chunk (windows) and embed the first `documents` SciFact documents and `queries` test queries. */
export async function loadBaseCorpus(options: {
  readonly dataset: string;
  /** Directory of the embedding cache (shared with `npm run eval`). */
  readonly cacheDirectory: string;
  readonly documents: number;
  readonly queries: number;
}): Promise<BaseCorpus> {
  const dataset = readBeirDataset(options.dataset);
  const model = await resolveModelDirectory();
  const embedder = await OnnxEmbedder.load(model.directory);
  const chunks = chunkDocuments(dataset.corpus.slice(0, options.documents), embedder);
  const cache = FileVectorCache.open(options.cacheDirectory, embedder.space);
  let reported = 0;
  const embedded = await embedChunks(chunks, embedder, {
    cache,
    onProgress: (done, total) => {
      if (done === total || done - reported >= 2_000) {
        reported = done;
        progress(`embedding base corpus ${done}/${total} chunks (cached by content hash)`);
      }
    },
  });
  const queryTexts = [...dataset.queries.values()].slice(0, options.queries);
  const queries = [];
  for (const text of queryTexts) queries.push({ text, vector: await embedder.embedQuery(text) });
  return { chunks: embedded, queries, embedder, modelDirectory: model.directory };
}

/**
 * `count` chunks: the base chunks first, then derived variants (see the module comment).
 * Vectors share one row-major matrix, returned too, for peers that take a matrix.
 */
export function deriveCorpus(
  base: readonly EmbeddedChunk[],
  count: number,
  seed = 20261123,
): { chunks: EmbeddedChunk[]; matrix: Float32Array; dimensions: number } {
  const dimensions = base[0]?.vector.length ?? 0;
  const matrix = new Float32Array(count * dimensions);
  const random = seededRandom(seed);
  const gaussian = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const noiseScale = 0.15 / Math.sqrt(dimensions);
  const copies = new Map<string, number>();
  const chunks: EmbeddedChunk[] = [];
  for (let row = 0; row < count; row += 1) {
    const vector = matrix.subarray(row * dimensions, (row + 1) * dimensions);
    if (row < base.length) {
      const chunk = base[row] as EmbeddedChunk;
      vector.set(chunk.vector);
      chunks.push({ ...chunk, vector });
      continue;
    }
    const a = base[Math.floor(random() * base.length)] as EmbeddedChunk;
    const b = base[Math.floor(random() * base.length)] as EmbeddedChunk;
    let norm = 0;
    for (let i = 0; i < dimensions; i += 1) {
      const value = (a.vector[i] as number) + 0.3 * (b.vector[i] as number) + noiseScale * gaussian();
      vector[i] = value;
      norm += value * value;
    }
    const scale = 1 / Math.sqrt(norm);
    for (let i = 0; i < dimensions; i += 1) vector[i] = (vector[i] as number) * scale;
    const copyKey = `${a.chunkId}`;
    const copy = (copies.get(copyKey) ?? 0) + 1;
    copies.set(copyKey, copy);
    const docId = `${a.docId}~${copy}`;
    chunks.push({ ...a, docId, chunkId: `${docId}#${a.ordinal}`, vector });
  }
  return { chunks, matrix, dimensions };
}

/** Row-major matrix of the query vectors. */
export function queryMatrix(queries: BaseCorpus['queries']): Float32Array {
  const dimensions = queries[0]?.vector.length ?? 0;
  const matrix = new Float32Array(queries.length * dimensions);
  queries.forEach((query, index) => {
    matrix.set(query.vector, index * dimensions);
  });
  return matrix;
}

/**
 * Exact top-`k` rows of `matrix` for every query, by cosine similarity (usearch's SIMD brute
 * force on all cores): the ground truth of recall@k.
 */
export function exactNeighbours(
  matrix: Float32Array,
  dimensions: number,
  queries: Float32Array,
  k: number,
): number[][] {
  const matches = usearch.exactSearch(matrix, queries, dimensions, k, usearch.MetricKind.Cos, 0) as {
    keys: BigUint64Array;
  };
  const queryCount = queries.length / dimensions;
  return Array.from({ length: queryCount }, (_, query) =>
    Array.from(matches.keys.subarray(query * k, (query + 1) * k), (key) => Number(key)),
  );
}

/** Mean fraction of the true top-k found in each answer (recall@k against exact search). */
export function recallAtK(
  truth: readonly number[][],
  answers: readonly (readonly number[])[],
  k: number,
): number {
  let sum = 0;
  truth.forEach((expected, query) => {
    const found = new Set((answers[query] ?? []).slice(0, k));
    sum += expected.slice(0, k).filter((row) => found.has(row)).length / Math.min(k, expected.length);
  });
  return sum / Math.max(truth.length, 1);
}
