import { beforeAll, describe, expect, it } from 'vitest';
import { describeModelDirectory } from '../../functions/adapters/model/model-directory.js';
import { ModelTokenizer } from '../../functions/adapters/model/model-tokenizer.js';
import { chunkDocument, documentContentHash, embeddingInput } from '../../functions/core/chunking.js';
import type { SourceDocument } from '../../functions/core/documents.js';
import { TINY_BERT_BIENCODER_DIR, USE_LITE_DIR } from '../support/shared-fixtures.js';

function tokenizerFor(directory: string): ModelTokenizer {
  const description = describeModelDirectory(directory);
  return new ModelTokenizer(description.tokenizerJson, description.tokenizerConfig, description.maxTokens);
}

const sentences = Array.from(
  { length: 40 },
  (_, i) =>
    `Sentence number ${i + 1} explains step ${i + 1} of configuring single sign-on for your workspace.`,
);
const longDocument: SourceDocument = {
  id: 'guide',
  title: 'Single sign-on guide',
  text: `${sentences.slice(0, 15).join(' ')}\n\n${sentences.slice(15).join(' ')}`,
  metadata: { product: 'sso' },
};

describe.each([
  ['USE-lite (SentencePiece)', USE_LITE_DIR],
  ['tiny-bert (WordPiece)', TINY_BERT_BIENCODER_DIR],
])('chunkDocument with the %s tokenizer', (_name, directory) => {
  let tokenizer: ModelTokenizer;
  beforeAll(() => {
    tokenizer = tokenizerFor(directory);
  });

  it('keeps every chunk, title included, within the model window so nothing is silently truncated', () => {
    const chunks = chunkDocument(longDocument, tokenizer, { maxTokens: tokenizer.maxContentTokens });
    expect(chunks.length).toBeGreaterThan(2);
    for (const chunk of chunks) {
      expect(tokenizer.countTokens(embeddingInput(chunk))).toBeLessThanOrEqual(tokenizer.maxContentTokens);
      expect(chunk.title).toBe('Single sign-on guide');
      expect(chunk.metadata).toEqual({ product: 'sso' });
    }
  });

  it('cuts at sentence boundaries, overlaps consecutive windows, and covers every sentence', () => {
    const chunks = chunkDocument(longDocument, tokenizer, {
      maxTokens: tokenizer.maxContentTokens,
      overlapTokens: 30,
    });
    for (const chunk of chunks) {
      expect(chunk.text).toMatch(/^Sentence number \d+/);
      expect(chunk.text).toMatch(/workspace\.$/);
    }
    for (const sentence of sentences)
      expect(chunks.some((chunk) => chunk.text.includes(sentence))).toBe(true);
    for (let i = 1; i < chunks.length; i += 1) {
      const firstSentence = /^Sentence number \d+ [^.]*\./.exec(chunks[i]?.text ?? '')?.[0] ?? '';
      expect(chunks[i - 1]?.text).toContain(firstSentence);
    }
  });

  it('gives stable ids and hashes, so unchanged content is recognised', () => {
    const first = chunkDocument(longDocument, tokenizer, { maxTokens: tokenizer.maxContentTokens });
    const again = chunkDocument({ ...longDocument }, tokenizer, { maxTokens: tokenizer.maxContentTokens });
    expect(again.map((c) => [c.chunkId, c.contentHash])).toEqual(
      first.map((c) => [c.chunkId, c.contentHash]),
    );
    expect(first.map((c) => c.chunkId)).toEqual(first.map((_, i) => `guide#${i}`));
    const edited = chunkDocument(
      { ...longDocument, text: longDocument.text.replace('step 40', 'step forty') },
      tokenizer,
      {
        maxTokens: tokenizer.maxContentTokens,
      },
    );
    expect(edited[0]?.contentHash).toBe(first[0]?.contentHash);
    expect(edited.at(-1)?.contentHash).not.toBe(first.at(-1)?.contentHash);
    expect(documentContentHash(longDocument)).not.toBe(
      documentContentHash({ ...longDocument, metadata: { product: 'x' } }),
    );
  });

  it('splits a sentence longer than the window between words, and a giant word by characters', () => {
    const run = Array.from({ length: 400 }, (_, i) => `word${i}`).join(' ');
    const blob = 'x'.repeat(3000);
    const chunks = chunkDocument({ id: 'd', text: `${run} ${blob}`, metadata: {} }, tokenizer, {
      maxTokens: tokenizer.maxContentTokens,
    });
    expect(chunks.length).toBeGreaterThan(2);
    for (const chunk of chunks)
      expect(tokenizer.countTokens(chunk.text)).toBeLessThanOrEqual(tokenizer.maxContentTokens);
    expect(chunks.map((chunk) => chunk.text).join(' ')).toContain('word0 word1');
  });

  it('yields no chunk for a document without text (never an empty chunk) and one for a short document', () => {
    for (const text of ['', '  \n\t '])
      for (const strategy of ['window', 'truncate'] as const)
        expect(
          chunkDocument({ id: 'e', title: 'Only a title', text, metadata: {} }, tokenizer, {
            maxTokens: 100,
            strategy,
          }),
        ).toEqual([]);
    expect(
      chunkDocument({ id: 's', text: 'Short.', metadata: {} }, tokenizer, { maxTokens: 100 }),
    ).toHaveLength(1);
  });

  it('prefers a paragraph boundary in the second half of a window', () => {
    const paragraph = (n: number, count: number) =>
      Array.from({ length: count }, (_, i) => `Paragraph ${n} sentence ${i} is about topic ${n}.`).join(' ');
    const text = `${paragraph(1, 9)}\n\n${paragraph(2, 12)}`;
    const [first] = chunkDocument({ id: 'p', text, metadata: {} }, tokenizer, {
      maxTokens: tokenizer.maxContentTokens,
      overlapTokens: 0,
    });
    expect(first?.text).toBe(paragraph(1, 9));
  });

  it('truncate strategy keeps one chunk per document', () => {
    expect(chunkDocument(longDocument, tokenizer, { maxTokens: 50, strategy: 'truncate' })).toHaveLength(1);
  });
});

describe('chunk pages of paged documents (PDF)', () => {
  // A whitespace word count is enough here: what is tested is which page each window draws from.
  const words = { countTokens: (text: string) => text.split(/\s+/).filter(Boolean).length };
  const page = (n: number, count: number) =>
    Array.from({ length: count }, (_, i) => `Page ${n} sentence ${i + 1} is here.`).join(' ');
  const pages = [page(1, 6), '', page(3, 2), page(4, 6)];
  let text = '';
  const pageStarts: number[] = [];
  for (const content of pages) {
    if (text) text += '\n\n';
    pageStarts.push(text.length);
    text += content;
  }
  const document: SourceDocument = { id: 'manual', text, metadata: { lang: 'en' }, pageStarts };

  it('gives every chunk the first and last page its text comes from, beside the document metadata', () => {
    const chunks = chunkDocument(document, words, { maxTokens: 24, overlapTokens: 0 });
    expect(chunks.length).toBeGreaterThan(2);
    for (const chunk of chunks) {
      const { page: first, pageEnd: last, ...rest } = chunk.metadata;
      expect(rest).toEqual({ lang: 'en' });
      const cited = [...chunk.text.matchAll(/Page (\d+)/g)].map((match) => Number(match[1]));
      expect([first, last]).toEqual([Math.min(...cited), Math.max(...cited)]);
    }
    expect(chunks[0]?.metadata).toMatchObject({ page: 1, pageEnd: 1 });
    expect(chunks.some((chunk) => chunk.metadata.page !== chunk.metadata.pageEnd)).toBe(true);
    expect(chunks.at(-1)?.metadata).toMatchObject({ pageEnd: 4 });
  });

  it('truncate keeps one chunk spanning the pages with text; unpaged documents get no page fields', () => {
    const [only] = chunkDocument(document, words, { maxTokens: 24, strategy: 'truncate' });
    expect(only?.metadata).toEqual({ lang: 'en', page: 1, pageEnd: 4 });
    const { pageStarts: _pages, ...unpaged } = document;
    expect(chunkDocument(unpaged, words, { maxTokens: 24 })[0]?.metadata).toEqual({ lang: 'en' });
  });

  it('page offsets are part of the document version', () => {
    expect(documentContentHash(document)).not.toBe(documentContentHash({ ...document, pageStarts: [0] }));
  });
});
