import { describe, expect, it } from 'vitest';
import {
  documentTextOf,
  LexicalIndex,
  LexicalSegment,
  lexicalEntries,
  lexicalRowTexts,
  TITLE_REPEATS,
} from '../../functions/core/lexical.js';

const chunk = (docId: string, ordinal: number, text: string, title?: string) => ({
  chunkId: `${docId}#${ordinal}`,
  docId,
  ordinal,
  text,
  ...(title ? { title } : {}),
});

describe('document-level BM25 entries', () => {
  it('a document is its windows joined without the sentences each window repeats from the previous one', () => {
    expect(
      documentTextOf([
        { text: 'Alpha one. Beta two. Gamma three.' },
        { text: 'Gamma three. Delta four.' },
        { text: 'Epsilon five.' },
      ]),
    ).toBe('Alpha one. Beta two. Gamma three. Delta four. Epsilon five.');
    expect(documentTextOf([{ text: 'only' }])).toBe('only');
    expect(documentTextOf([])).toBe('');
  });

  it('one entry per document under its first chunk id, the title repeated; chunk entries as before', () => {
    const chunks = [
      chunk('b', 1, 'Gamma three. Delta four.', 'Title B'),
      chunk('a', 0, 'Solo text.', 'Title A'),
      chunk('b', 0, 'Alpha one. Gamma three.', 'Title B'),
    ];
    expect(lexicalEntries(chunks, 'document')).toEqual([
      { chunkId: 'b#0', text: `${'Title B '.repeat(TITLE_REPEATS)}Alpha one. Gamma three. Delta four.` },
      { chunkId: 'a#0', text: `${'Title A '.repeat(TITLE_REPEATS)}Solo text.` },
    ]);
    expect(lexicalEntries(chunks, 'chunk').map((entry) => entry.text)).toEqual([
      'Title B Gamma three. Delta four.',
      'Title A Solo text.',
      'Title B Alpha one. Gamma three.',
    ]);
  });

  it('a frozen segment of document rows (other chunk rows empty) scores exactly like the mutable index fed the same chunks', () => {
    const chunks = [
      chunk('a', 0, 'Solar panels convert light. Cells degrade.', 'Solar'),
      chunk('a', 1, 'Cells degrade. Panels need cleaning.', 'Solar'),
      chunk('b', 0, 'Wind turbines and solar farms.', 'Energy'),
      chunk('c', 0, 'Panels of experts met.'),
      chunk('c', 1, 'The experts disagreed about panels.'),
      chunk('c', 2, 'No conclusion.'),
    ];
    const ids = chunks.map((c) => c.chunkId);
    const frozen = LexicalIndex.over(
      LexicalSegment.build(lexicalRowTexts(chunks, 'document')),
      { chunkIdOf: (row) => ids[row] as string, rowOf: (id) => ids.indexOf(id) },
      'document',
    );
    const mutable = LexicalIndex.create(undefined, 'document');
    for (const docId of ['a', 'b', 'c']) mutable.addChunks(chunks.filter((c) => c.docId === docId));
    const scored = (index: LexicalIndex) =>
      index.search('solar panels experts', 10).map(({ chunkId, score }) => ({ chunkId, score }));
    expect(scored(frozen)).toEqual(scored(mutable));
    expect(
      scored(frozen)
        .map((hit) => hit.chunkId)
        .sort(),
    ).toEqual(['a#0', 'b#0', 'c#0']);
    // Three documents, not six chunks: "cleaning" (one document, once in 11 terms; average
    // length 25 / 3) has idf ln(1 + 2.5 / 1.5).
    const [hit] = frozen.search('cleaning', 1);
    const norm = 0.9 * (1 - 0.4 + (0.4 * 11) / (25 / 3));
    expect(hit?.chunkId).toBe('a#0');
    expect(hit?.score).toBeCloseTo(Math.log(1 + 2.5 / 1.5) * ((1 * 1.9) / (1 + norm)), 12);
    expect(mutable.size).toBe(3);
  });
});
