import { describe, expect, it } from 'vitest';
import { InMemoryHnswIndex } from '../../functions/adapters/index/usearch-index.js';
import { DeltaLayer, type EmbeddedChunk } from '../../functions/core/delta.js';
import { LexicalIndex } from '../../functions/core/lexical.js';
import { syntheticVector } from '../support/synthetic-documents.js';

const DIMENSIONS = 64;
const chunkOf = (docId: string, seed: number): EmbeddedChunk => ({
  chunkId: `${docId}#0`,
  docId,
  ordinal: 0,
  text: `document ${docId}`,
  metadata: {},
  contentHash: `h${seed}`,
  vector: syntheticVector(seed, DIMENSIONS),
});

/** The same changes applied to an exact delta and to one with an ANN index from 200 chunks. */
function deltas() {
  const exact = new DeltaLayer(0, LexicalIndex.create(), () => []);
  const approximate = new DeltaLayer(0, LexicalIndex.create(), () => [], {
    create: () => new InMemoryHnswIndex(DIMENSIONS),
    minChunks: 200,
  });
  let sequence = 0;
  const apply = (docId: string, seed: number | null) => {
    sequence += 1;
    for (const delta of [exact, approximate]) {
      if (seed === null) delta.deleteDocument(docId, sequence);
      else delta.applyDocument(docId, [chunkOf(docId, seed)], sequence);
    }
  };
  return { exact, approximate, apply };
}

describe('a large delta searched through an in-memory HNSW index', () => {
  it('stays exact below the threshold and switches to the index past it', () => {
    const { approximate, apply } = deltas();
    for (let n = 0; n < 199; n += 1) apply(`d${n}`, n);
    expect(approximate.approximate).toBe(false);
    apply('d199', 199);
    expect(approximate.approximate).toBe(true);
  });

  it('finds what exact search finds (recall@10 ≥ 0.95), never a replaced or deleted chunk', () => {
    const { exact, approximate, apply } = deltas();
    for (let n = 0; n < 2_000; n += 1) apply(`d${n}`, n);
    // Replace 300 documents with new vectors and delete 200, after the index was built.
    for (let n = 0; n < 300; n += 1) apply(`d${n}`, 10_000 + n);
    for (let n = 300; n < 500; n += 1) apply(`d${n}`, null);
    const deleted = new Set(Array.from({ length: 200 }, (_, i) => `d${300 + i}`));
    let found = 0;
    const queries = 50;
    for (let q = 0; q < queries; q += 1) {
      // Queries near replaced documents' new vectors, and near untouched ones.
      const query = syntheticVector(q % 2 === 0 ? 10_000 + q : 1_000 + q, DIMENSIONS);
      const truth = new Set(exact.searchDense(query, 10).map((hit) => hit.chunk.contentHash));
      const hits = approximate.searchDense(query, 10);
      expect(hits.length).toBe(10);
      for (const hit of hits) {
        expect(deleted.has(hit.chunk.docId)).toBe(false);
        // A replaced document only ever comes back with its new vector.
        expect(hit.chunk).toBe(approximate.chunksOf(hit.chunk.docId)[0]);
        if (truth.has(hit.chunk.contentHash)) found += 1;
      }
      // Similarities are exact dot products, best first.
      for (let i = 1; i < hits.length; i += 1)
        expect((hits[i - 1] as { similarity: number }).similarity).toBeGreaterThanOrEqual(
          (hits[i] as { similarity: number }).similarity,
        );
    }
    expect(found / (queries * 10)).toBeGreaterThanOrEqual(0.95);
  });

  it('a filtered search over a large delta stays exact', () => {
    const { exact, approximate, apply } = deltas();
    for (let n = 0; n < 500; n += 1) apply(`d${n}`, n);
    const query = syntheticVector(77, DIMENSIONS);
    const accept = (chunk: EmbeddedChunk) => Number(chunk.docId.slice(1)) % 7 === 0;
    expect(approximate.searchDense(query, 10, accept).map((hit) => hit.chunk.docId)).toEqual(
      exact.searchDense(query, 10, accept).map((hit) => hit.chunk.docId),
    );
  });
});
