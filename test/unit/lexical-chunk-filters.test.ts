import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileSnapshot, writeSnapshot } from '../../functions/adapters/index/snapshot-files.js';
import type { EmbeddedChunk } from '../../functions/core/delta.js';
import type { EmbeddingSpace, TextEmbedder } from '../../functions/core/embedding-space.js';
import type { MetadataFilter } from '../../functions/core/filters.js';
import { analyzeEnglish } from '../../functions/core/lexical.js';
import { SearchEngine } from '../../functions/core/search-engine.js';
import { clusteredVector } from '../support/synthetic-documents.js';

const DIMENSIONS = 8;
const SPACE: EmbeddingSpace = {
  modelId: 'synthetic',
  dimensions: DIMENSIONS,
  pooling: 'mean',
  normalized: true,
};
const WORDS = ['magic', 'string', 'heron', 'kestrel', 'byte', 'swap'];

const embedder: TextEmbedder = {
  space: SPACE,
  maxContentTokens: 512,
  countTokens: (text) => text.length,
  embedQuery: async () => clusteredVector(1, DIMENSIONS),
  embedDocuments: async () => {
    throw new Error('not used');
  },
};

/** A PDF-like document: one chunk per page, `page`/`pageEnd` on each chunk, a shared `kind`. */
function pagedDocument(docId: string, pages: readonly string[], seed: number): EmbeddedChunk[] {
  return pages.map((text, ordinal) => ({
    chunkId: `${docId}#${ordinal}`,
    docId,
    ordinal,
    text,
    metadata: {
      kind: docId.startsWith('manual') ? 'manual' : 'note',
      page: ordinal + 1,
      pageEnd: ordinal + 2,
    },
    contentHash: `${docId}:${ordinal}`,
    vector: clusteredVector(seed * 100 + ordinal, DIMENSIONS),
  }));
}

describe('lexical search with document-level BM25 and filters on chunk metadata', () => {
  let parent: string;
  let snapshot: FileSnapshot;
  const documents = new Map<string, EmbeddedChunk[]>();

  beforeAll(async () => {
    parent = mkdtempSync(join(tmpdir(), 'bisearch-chunk-filters-'));
    // Rows are sorted by document: `manual-a-blank` (no indexable terms) follows `manual-a`, so its
    // rows sit under `manual-a`'s entry row, and only their ids tell the documents apart.
    documents.set(
      'manual-a',
      pagedDocument('manual-a', ['magic string', 'heron', 'kestrel byte', 'swap'], 1),
    );
    documents.set(
      'manual-a-blank',
      pagedDocument('manual-a-blank', ['the of', 'and', 'a', 'an', 'is', 'it'], 2),
    );
    documents.set('note-b', pagedDocument('note-b', ['magic', 'magic heron swap'], 3));
    documents.set('note-c', pagedDocument('note-c', ['kestrel', 'string byte', 'magic', 'heron', 'swap'], 4));
    const { directory } = await writeSnapshot(parent, {
      chunks: [...documents.values()].flat(),
      space: SPACE,
    });
    snapshot = await FileSnapshot.open(directory);
  });
  afterAll(() => rmSync(parent, { recursive: true, force: true }));

  it('a document is found through any matching chunk, and its shown chunk is one that matches', async () => {
    const engine = new SearchEngine(snapshot, embedder);
    // Page 5 is only manual-a-blank's (no terms, under manual-a's entry row) and note-c's (swap).
    const blankOnly = await engine.search({
      query: 'magic string',
      k: 5,
      mode: 'lexical',
      filter: { page: 5 },
    });
    expect(blankOnly.results.map((result) => result.docId)).toEqual(['note-c']);
    expect(blankOnly.results[0]?.metadata).toMatchObject({ page: 5, pageEnd: 6 });
    // The document matches the query as a whole; the chunk shown is the filter's (page 4: swap).
    const fourth = await engine.search({
      query: 'magic string',
      k: 5,
      mode: 'lexical',
      filter: { pageEnd: 5 },
    });
    expect(fourth.results.map((result) => [result.docId, result.text])).toEqual(
      expect.arrayContaining([
        ['manual-a', 'swap'],
        ['note-c', 'heron'],
      ]),
    );
    const third = await engine.search({ query: 'kestrel', k: 5, mode: 'lexical', filter: { page: 3 } });
    expect(third.results.map((result) => [result.docId, result.metadata.page])).toEqual(
      expect.arrayContaining([
        ['manual-a', 3],
        ['note-c', 3],
      ]),
    );
    expect(third.results).toHaveLength(2);
  });

  it('property: filtered lexical results are the unfiltered ones restricted to documents with a matching chunk (snapshot and delta)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 6 }),
        fc.subarray(WORDS, { minLength: 1, maxLength: 3 }),
        fc.option(
          fc.array(fc.subarray(WORDS, { minLength: 0, maxLength: 3 }), { minLength: 1, maxLength: 4 }),
        ),
        fc.constantFrom<Record<string, unknown>>({}, { kind: 'manual' }, { kind: 'note' }),
        async (page, queryWords, deltaPages, extra) => {
          const engine = new SearchEngine(snapshot, embedder);
          const visible = new Map(documents);
          if (deltaPages) {
            const changed = pagedDocument(
              'note-b',
              deltaPages.map((words) => words.join(' ')),
              9,
            );
            engine.delta.applyDocument('note-b', changed, 1);
            visible.set('note-b', changed);
          }
          const query = queryWords.join(' ');
          const terms = new Set(analyzeEnglish(query));
          const filter = { page, ...extra } as MetadataFilter;
          const { results } = await engine.search({ query, k: 10, mode: 'lexical', filter });
          const matchesClause = (chunk: EmbeddedChunk) =>
            chunk.metadata.page === page &&
            Object.entries(extra).every(([key, value]) => chunk.metadata[key] === value);
          const expected = [...visible.entries()]
            .filter(([, chunks]) => chunks.some(matchesClause))
            .filter(([, chunks]) =>
              chunks.some((chunk) => analyzeEnglish(chunk.text).some((term) => terms.has(term))),
            )
            .map(([docId]) => docId)
            .sort();
          expect(results.map((result) => result.docId).sort()).toEqual(expected);
          for (const result of results) expect(result.metadata.page).toBe(page);
        },
      ),
      { numRuns: 150, seed: 20261204 },
    );
  });
});
