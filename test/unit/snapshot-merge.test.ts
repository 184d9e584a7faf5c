import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareChunkOrder } from '../../functions/adapters/index/snapshot-files.js';
import type { EmbeddedChunk } from '../../functions/core/delta.js';
import { type DocumentChange, mergeDocumentChanges } from '../../functions/core/snapshot-merge.js';

const chunkOf = (docId: string, ordinal: number, text: string): EmbeddedChunk => ({
  chunkId: `${docId}#${ordinal}`,
  docId,
  ordinal,
  text,
  metadata: {},
  contentHash: text,
  vector: Float32Array.of(ordinal, text.length),
});

async function* over<T>(items: Iterable<T>): AsyncGenerator<T> {
  for (const item of items) yield item;
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}

/** A corpus: document id → its chunk texts (no chunks: absent). */
const corpus = fc.dictionary(
  fc.stringMatching(/^[a-e]{1,3}(\/[a-e])?$/),
  fc.array(fc.stringMatching(/^[a-z]{1,4}$/), { minLength: 1, maxLength: 4 }),
  { maxKeys: 12 },
);
const rowsOf = (documents: Record<string, string[]>) =>
  Object.entries(documents)
    .flatMap(([docId, texts]) => texts.map((text, ordinal) => chunkOf(docId, ordinal, text)))
    .sort(compareChunkOrder);

describe('merging changed documents into a version (incremental reindex)', () => {
  it('property: base ⊕ changes has the rows a full rebuild of the changed corpus has, in row order', async () => {
    await fc.assert(
      fc.asyncProperty(
        corpus,
        fc.dictionary(
          fc.stringMatching(/^[a-e]{1,3}(\/[a-e])?$/),
          fc.array(fc.stringMatching(/^[a-z]{1,4}$/), { maxLength: 4 }),
          { maxKeys: 8 },
        ),
        async (before, changed) => {
          const after: Record<string, string[]> = { ...before };
          for (const [docId, texts] of Object.entries(changed)) {
            if (texts.length === 0) delete after[docId];
            else after[docId] = texts;
          }
          const changes: DocumentChange[] = Object.keys(changed)
            .sort()
            .map((docId) => ({
              docId,
              // Given out of ordinal order: the merge orders a document's chunks itself.
              chunks: (changed[docId] as string[])
                .map((text, ordinal) => chunkOf(docId, ordinal, text))
                .reverse(),
            }));
          const merged = await collect(mergeDocumentChanges(over(rowsOf(before)), over(changes)));
          expect(merged.map((chunk) => [chunk.chunkId, chunk.text])).toEqual(
            rowsOf(after).map((chunk) => [chunk.chunkId, chunk.text]),
          );
        },
      ),
      { numRuns: 300, seed: 1204 },
    );
  });

  it('refuses changes out of document order, or a change holding another document', async () => {
    const base = [chunkOf('a', 0, 'x')];
    await expect(
      collect(
        mergeDocumentChanges(
          over(base),
          over([
            { docId: 'b', chunks: [] },
            { docId: 'a', chunks: [] },
          ]),
        ),
      ),
    ).rejects.toThrow(/not in document order: a follows b/);
    await expect(
      collect(mergeDocumentChanges(over(base), over([{ docId: 'b', chunks: [chunkOf('c', 0, 'y')] }]))),
    ).rejects.toThrow(/the change of b holds chunk c#0/);
  });
});
