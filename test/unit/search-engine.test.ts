import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileSnapshot, writeSnapshot } from '../../functions/adapters/index/snapshot-files.js';
import { OnnxCrossEncoder } from '../../functions/adapters/model/onnx-cross-encoder.js';
import { OnnxEmbedder } from '../../functions/adapters/model/onnx-embedder.js';
import type { SourceDocument } from '../../functions/core/documents.js';
import { EmbeddingSpaceMismatchError, InvalidRequestError } from '../../functions/core/errors.js';
import { chunkDocuments, embedChunks } from '../../functions/core/indexing.js';
import { SearchEngine } from '../../functions/core/search-engine.js';
import { HELP_CENTRE } from '../support/help-centre.js';
import {
  TINY_BERT_BIENCODER_DIR,
  TINY_BERT_CROSS_ENCODER_DIR,
  USE_LITE_DIR,
} from '../support/shared-fixtures.js';

describe('SearchEngine over a snapshot and its delta (USE-lite, usearch, BM25 for real)', () => {
  let parent: string;
  let embedder: OnnxEmbedder;
  let snapshot: FileSnapshot;
  let engine: SearchEngine;

  const embedDocument = async (document: SourceDocument) =>
    embedChunks(chunkDocuments([document], embedder), embedder);
  const docIds = async (query: string, extra: Record<string, unknown> = {}) =>
    (await engine.search({ query, ...extra })).results.map((result) => result.docId);

  beforeAll(async () => {
    parent = mkdtempSync(join(tmpdir(), 'bisearch-engine-'));
    embedder = await OnnxEmbedder.load(USE_LITE_DIR);
    const chunks = await embedChunks(chunkDocuments(HELP_CENTRE, embedder), embedder);
    const { directory } = await writeSnapshot(parent, { chunks, space: embedder.space, watermark: 10 });
    snapshot = await FileSnapshot.open(directory, { expectedSpace: embedder.space });
    engine = new SearchEngine(snapshot, embedder);
  });
  afterAll(async () => {
    await embedder.dispose();
    rmSync(parent, { recursive: true, force: true });
  });

  it.each(['dense', 'lexical', 'hybrid'] as const)(
    '%s search finds the obvious article first and reports index and timings',
    async (mode) => {
      const response = await engine.search({ query: 'I forgot my password, how do I reset it?', mode, k: 3 });
      expect(response.results[0]).toMatchObject({
        docId: 'reset-password',
        chunkId: 'reset-password#0',
        title: 'Reset your password',
        metadata: { category: 'account', lang: 'en' },
      });
      expect(response.results[0]?.text).toContain('Forgot password');
      expect(response.results.length).toBeLessThanOrEqual(3);
      expect(response.index).toEqual({ version: snapshot.manifest.version, deltaSize: 0 });
      const timings = response.timingsMs;
      expect(timings.total).toBeGreaterThanOrEqual(timings.search + timings.embed);
      // The stages are disjoint parts of the search time.
      expect(timings.dense + timings.lexical + timings.fusion).toBeLessThanOrEqual(timings.search + 1e-6);
      expect(timings.dense > 0).toBe(mode !== 'lexical');
      expect(timings.lexical > 0).toBe(mode !== 'dense');
      expect(timings.hydrate).toBeGreaterThanOrEqual(0);
    },
  );

  it('BM25 ranks whole documents and shows the chunk that holds the query terms, in lexical and hybrid mode', async () => {
    const sentences = Array.from(
      { length: 40 },
      (_, i) => `Sentence ${i} describes the weather station on the island in some detail.`,
    );
    sentences.push('The final remark names the zanzibarquartz sensor.');
    const chunks = await embedDocument({
      id: 'long-manual',
      title: 'Station manual',
      text: sentences.join(' '),
      metadata: {},
    });
    expect(chunks.length).toBeGreaterThan(2);
    // Its own engine: the shared one's delta sequences are asserted by the tests below.
    const own = new SearchEngine(snapshot, embedder);
    own.delta.applyDocument('long-manual', chunks, 900);
    for (const mode of ['lexical', 'hybrid'] as const) {
      const [top] = (await own.search({ query: 'zanzibarquartz sensor', mode, k: 1 })).results;
      expect(top?.docId).toBe('long-manual');
      expect(top?.chunkId).toBe(chunks.at(-1)?.chunkId);
      expect(top?.text).toContain('zanzibarquartz');
      expect(top?.highlights.length).toBeGreaterThan(0);
    }
  });

  it('each result carries its score components: dense cosine, BM25 and the fused score, each where it applies', async () => {
    const query = 'I forgot my password, how do I reset it?';
    const hybrid = (await engine.search({ query, mode: 'hybrid', k: 3 })).results;
    const dense = new Map(
      (await engine.search({ query, mode: 'dense', k: 20 })).results.map((r) => [r.docId, r]),
    );
    const lexical = new Map(
      (await engine.search({ query, mode: 'lexical', k: 20 })).results.map((r) => [r.docId, r]),
    );
    const top = hybrid[0];
    expect(top?.scores.fused).toBe(top?.score);
    expect(top?.scores.dense).toBeCloseTo(dense.get(top?.docId ?? '')?.score ?? Number.NaN, 6);
    expect(top?.scores.lexical).toBeCloseTo(lexical.get(top?.docId ?? '')?.score ?? Number.NaN, 6);
    for (const result of dense.values()) expect(result.scores).toEqual({ dense: result.score });
    for (const result of lexical.values()) expect(result.scores).toEqual({ lexical: result.score });
  });

  it('each result carries the offsets of the query terms in its text, as BM25 matched them', async () => {
    for (const mode of ['dense', 'lexical', 'hybrid'] as const) {
      const [top] = (await engine.search({ query: 'Resetting forgotten passwords', mode, k: 1 })).results;
      expect(top?.highlights.length).toBeGreaterThan(0);
      const words = (top?.highlights ?? []).map(([start, end]) => top?.text.slice(start, end).toLowerCase());
      for (const word of words) expect(word).toMatch(/^(reset\w*|forg[eo]t\w*|password\w*)$/);
    }
    const [none] = (await engine.search({ query: 'the of and', mode: 'dense', k: 1 })).results;
    expect(none?.highlights).toEqual([]);
  });

  it('accepts queries of up to 32,768 characters: dense embeds what fits the model, BM25 its rarest terms', async () => {
    const page = `${'Shipping parcels across borders takes time. '.repeat(400)}How do I reset my password?`;
    expect(page.length).toBeGreaterThan(16_000);
    for (const mode of ['dense', 'lexical', 'hybrid'] as const) {
      const answer = await engine.search({ query: page, mode, k: 3 });
      expect(answer.results.length).toBeGreaterThan(0);
    }
    // Many distinct terms: the rare ones that match decide, the cost stays bounded.
    const noise = Array.from({ length: 2_000 }, (_, n) => `zq${n.toString(36)}x`).join(' ');
    const lexical = await engine.search({ query: `${noise} forgot password reset`, mode: 'lexical', k: 1 });
    expect(lexical.results[0]?.docId).toBe('reset-password');
    await expect(engine.search({ query: 'x'.repeat(32_769) })).rejects.toThrow(/query/);
  });

  it('exact and HNSW dense search agree on this corpus', async () => {
    for (const query of ['how long does delivery take', 'API credentials for developers', 'money back']) {
      expect(await docIds(query, { mode: 'dense', exact: true })).toEqual(
        await docIds(query, { mode: 'dense' }),
      );
    }
  });

  it('aggregates per document: one result per document with its best chunk', async () => {
    const response = await engine.search({ query: 'billing', k: 100 });
    const ids = response.results.map((result) => result.docId);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.length).toBe(HELP_CENTRE.length);
  });

  it('applies equality and "in" filters on metadata, including list-valued metadata', async () => {
    expect(new Set(await docIds('account help', { filter: { category: 'billing' }, k: 100 }))).toEqual(
      new Set(['invoice-download', 'change-plan', 'refund-policy']),
    );
    expect(
      new Set(
        await docIds('reset password', { filter: { category: ['account', 'orders'], lang: 'fr' }, k: 100 }),
      ),
    ).toEqual(new Set(['mot-de-passe']));
    expect(await docIds('pricing', { filter: { tags: 'pricing' }, mode: 'dense' })).toEqual(['change-plan']);
    expect(await docIds('anything', { filter: { category: 'nope' } })).toEqual([]);
  });

  it('rejects invalid requests with a 400 naming the problem', async () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ query: '   ' }, /query must not be empty/],
      [{ query: 'x', k: 0 }, /k: /],
      [{ query: 'x', k: 101 }, /k: /],
      [{ query: 'x', mode: 'fuzzy' }, /mode/],
      [{ query: 'x', filter: { a: { b: 1 } } }, /filter/],
      // JSON.parse makes "__proto__" an own key; the filter schema refuses it before the record drops it.
      [
        { query: 'x', filter: JSON.parse('{"__proto__": {"a": 1}}') },
        /filter\.__proto__: "__proto__" is not a filterable/,
      ],
      [{ query: 'x', unexpected: true }, /unexpected/i],
      [{ query: 'x', rerank: true }, /no reranker model is configured/],
    ];
    for (const [request, message] of cases) {
      const error = await engine.search(request as never).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(InvalidRequestError);
      expect((error as InvalidRequestError).status).toBe(400);
      expect((error as Error).message).toMatch(message);
    }
  });

  describe('delta', () => {
    it('makes a new document searchable in every mode without a rebuild', async () => {
      const document: SourceDocument = {
        id: 'gift-cards',
        title: 'Redeem a gift card',
        text: 'Enter the zebracorn code printed on the back of your gift card at checkout.',
        metadata: { category: 'orders', lang: 'en' },
      };
      expect(engine.delta.applyDocument(document.id, await embedDocument(document), 11)).toBe(true);
      for (const mode of ['lexical', 'dense', 'hybrid'] as const) {
        expect((await docIds('zebracorn gift card code', { mode }))[0]).toBe('gift-cards');
      }
      const response = await engine.search({ query: 'zebracorn', mode: 'lexical' });
      expect(response.index.deltaSize).toBe(1);
      expect(await docIds('zebracorn', { mode: 'lexical', filter: { category: 'billing' } })).toEqual([]);
    });

    it('an update hides the old text (snapshot chunks superseded) and ignores stale or replayed changes', async () => {
      const updated: SourceDocument = {
        id: 'shipping-times',
        title: 'Shipping times',
        text: 'All parcels now travel by quokka courier and arrive the next morning.',
        metadata: { category: 'orders', lang: 'en' },
      };
      const chunks = await embedDocument(updated);
      expect(engine.delta.applyDocument(updated.id, chunks, 12)).toBe(true);
      expect(await docIds('five to seven business days', { mode: 'lexical' })).not.toContain(
        'shipping-times',
      );
      expect((await docIds('quokka courier', { mode: 'lexical' }))[0]).toBe('shipping-times');
      const hits = (await engine.search({ query: 'shipping', k: 100 })).results.filter(
        (result) => result.docId === 'shipping-times',
      );
      expect(hits.map((hit) => hit.text)).toEqual([updated.text]);
      // Replays and out-of-order deliveries change nothing.
      expect(engine.delta.applyDocument(updated.id, chunks, 12)).toBe(false);
      expect(engine.delta.applyDocument(updated.id, [], 11)).toBe(false);
      expect(engine.delta.applyDocument(updated.id, [], 5)).toBe(false);
      expect((await docIds('quokka courier', { mode: 'lexical' }))[0]).toBe('shipping-times');
    });

    it('a delete hides the document immediately in every mode (tombstone)', async () => {
      expect(engine.delta.deleteDocument('refund-policy', 13)).toBe(true);
      for (const mode of ['lexical', 'dense', 'hybrid'] as const) {
        expect(await docIds('refund annual subscription thirty days', { mode, k: 100 })).not.toContain(
          'refund-policy',
        );
      }
      expect(engine.delta.deleteDocument('gift-cards', 14)).toBe(true);
      expect(await docIds('zebracorn', { mode: 'lexical' })).toEqual([]);
      expect(engine.delta.size).toBe(1);
      expect(engine.delta.sequence).toBe(14);
    });

    it('a newer snapshot swaps in and keeps delta changes made after its watermark', async () => {
      const late: SourceDocument = {
        id: 'late',
        title: 'Late news',
        text: 'The platypus release ships tomorrow.',
        metadata: {},
      };
      engine.delta.applyDocument('late', await embedDocument(late), 20);
      const rebuilt = await embedChunks(
        chunkDocuments(
          HELP_CENTRE.filter((d) => d.id !== 'refund-policy'),
          embedder,
        ),
        embedder,
      );
      const { directory } = await writeSnapshot(parent, {
        chunks: rebuilt,
        space: embedder.space,
        watermark: 14,
      });
      const next = await FileSnapshot.open(directory);
      engine.swapSnapshot(next);
      const response = await engine.search({ query: 'platypus release', mode: 'lexical' });
      expect(response.index.version).toBe(next.manifest.version);
      expect(response.results[0]?.docId).toBe('late');
      expect(engine.delta.size).toBe(1);
      // Changes at or below the new watermark are already in the snapshot.
      expect(engine.delta.applyDocument('shipping-times', [], 14)).toBe(false);
    });
  });

  it('refuses a snapshot from another embedding space', async () => {
    const tinyBert = await OnnxEmbedder.load(TINY_BERT_BIENCODER_DIR);
    try {
      expect(() => new SearchEngine(snapshot, tinyBert)).toThrow(EmbeddingSpaceMismatchError);
    } finally {
      await tinyBert.dispose();
    }
  });

  it('re-scores the top candidates with a cross-encoder when one is configured, and can be turned off per request', async () => {
    const reranker = await OnnxCrossEncoder.load(TINY_BERT_CROSS_ENCODER_DIR);
    try {
      const reranking = new SearchEngine(snapshot, embedder, reranker, { rerankDepth: 5 });
      const query = 'how do I download my invoice';
      const response = await reranking.search({ query, k: 5 });
      const passages = response.results.map((result) => `${result.title} ${result.text}`);
      const expected = await reranker.score(query, passages);
      expect(response.results.map((result) => result.score)).toEqual(expected);
      expect([...expected].sort((a, b) => b - a)).toEqual(expected);
      expect(response.timingsMs.rerank).toBeGreaterThan(0);
      const plain = await reranking.search({ query, k: 5, rerank: false });
      expect(plain.timingsMs.rerank).toBe(0);
      expect(plain.results.map((r) => r.score)).not.toEqual(expected);
    } finally {
      await reranker.dispose();
    }
  });
});

describe('SearchEngine per-document aggregation with many chunks per document', () => {
  it('widens the candidate pool until k documents are found when one document owns the top chunks', async () => {
    const parent = mkdtempSync(join(tmpdir(), 'bisearch-wide-'));
    const embedder = await OnnxEmbedder.load(USE_LITE_DIR);
    try {
      const big = Array.from({ length: 150 }, (_, i) => ({
        chunkId: `manual#${i}`,
        docId: 'manual',
        ordinal: i,
        text: `Step ${i} to reset your password: open the login page and click forgot password.`,
        metadata: {},
        contentHash: `manual-${i}`,
      }));
      const small = HELP_CENTRE.slice(2, 8).map((document) => ({
        chunkId: `${document.id}#0`,
        docId: document.id,
        ordinal: 0,
        text: document.text,
        metadata: document.metadata,
        contentHash: document.id,
      }));
      const chunks = await embedChunks([...big, ...small], embedder);
      const { directory } = await writeSnapshot(parent, { chunks, space: embedder.space });
      const engine = new SearchEngine(await FileSnapshot.open(directory), embedder);
      for (const exact of [true, false]) {
        const response = await engine.search({
          query: 'reset my password on the login page',
          mode: 'dense',
          k: 5,
          exact,
        });
        expect(response.results.map((result) => result.docId)[0]).toBe('manual');
        expect(new Set(response.results.map((result) => result.docId)).size).toBe(5);
      }
    } finally {
      await embedder.dispose();
      rmSync(parent, { recursive: true, force: true });
    }
  });
});
