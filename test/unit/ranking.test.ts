import { describe, expect, it } from 'vitest';
import {
  evaluateRun,
  ndcgAtK,
  overlapAtK,
  pairedRandomizationTest,
  recallAtK,
  reciprocalRankAtK,
} from '../../functions/core/eval-metrics.js';
import { normalizedScoreFusion, reciprocalRankFusion } from '../../functions/core/fusion.js';
import {
  analyzeEnglish,
  kthLargest,
  LexicalIndex,
  LexicalSegment,
  MAX_QUERY_TERMS,
  termHighlights,
} from '../../functions/core/lexical.js';
import { exactTopK, TopK } from '../../functions/core/vectors.js';

describe('English analyser and BM25 index', () => {
  it('highlights find the query terms as BM25 matches them, with string offsets into the original text', () => {
    const text = 'İstanbul: Resetting the PASSWORD resets passwords; the reset-link.';
    const spans = termHighlights(text, 'reset password');
    expect(spans.map(([start, end]) => text.slice(start, end))).toEqual([
      'Resetting',
      'PASSWORD',
      'resets',
      'passwords',
      'reset',
    ]);
    expect(termHighlights(text, 'the of')).toEqual([]);
    expect(termHighlights(text, 'reset', 2)).toHaveLength(2);
  });

  it('lower-cases, drops stop words and stems', () => {
    expect(analyzeEnglish('The Running of the Studies, e-mails!')).toEqual(['run', 'studi', 'e', 'mail']);
  });

  it('ranks by BM25 (idf and length normalisation), matches stemmed forms, and ignores stop-word-only queries', () => {
    const index = LexicalIndex.create();
    index.addAll([
      { chunkId: 'a', text: 'Resetting a forgotten password from the login page' },
      { chunkId: 'b', text: 'Password policy: passwords expire every ninety days and must be long' },
      { chunkId: 'c', text: 'Shipping times for international orders' },
    ]);
    expect(index.search('reset password', 10).map((hit) => hit.chunkId)).toEqual(['a', 'b']);
    expect(index.search('shipped', 10).map((hit) => hit.chunkId)).toEqual(['c']);
    expect(index.search('the of and', 10)).toEqual([]);
  });

  it('a query of more than MAX_QUERY_TERMS distinct terms scores exactly its rarest ones', () => {
    const index = LexicalIndex.create();
    // Term tN appears in N + 1 chunks: lower N, rarer term.
    const texts = Array.from({ length: 400 }, (_, chunk) => ({
      chunkId: `c${chunk}`,
      text: Array.from({ length: 400 }, (_, n) => (chunk <= n ? `t${n}q` : '')).join(' '),
    }));
    index.addAll(texts);
    const all = Array.from({ length: 400 }, (_, n) => `t${n}q`);
    const rarest = all.slice(0, MAX_QUERY_TERMS);
    const long = index.search([...all].reverse().join(' '), 20);
    const expected = index.search(rarest.join(' '), 20);
    expect(long.map((hit) => hit.chunkId)).toEqual(expected.map((hit) => hit.chunkId));
    // Same terms summed in another order: equal up to rounding.
    for (const [rank, hit] of long.entries())
      expect(hit.score).toBeCloseTo(expected[rank]?.score ?? Number.NaN, 9);
    expect(MAX_QUERY_TERMS).toBe(256);
  });

  it('scores classic BM25 (k1 0.9, b 0.4) summed over the query terms', () => {
    const index = LexicalIndex.create();
    index.addAll([
      { chunkId: 'x', text: 'alpha beta' },
      { chunkId: 'y', text: 'gamma delta' },
    ]);
    // Hand computation: idf = ln(1 + (2 - 1 + 0.5) / (1 + 0.5)) = ln 2; tf 1, |d| = avg → tf part 1.
    const [hit] = index.search('alpha beta', 1);
    expect(hit?.score).toBeCloseTo(2 * Math.log(2), 10);
  });

  it('a frozen segment scores exactly like the mutable index, survives a binary round trip and hides removed rows', () => {
    const texts = [
      'billing invoice download',
      'billing address change',
      'invoice invoice copies for billing',
    ];
    const ids = ['a', 'b', 'c'];
    const mutable = LexicalIndex.create();
    mutable.addAll(texts.map((text, row) => ({ chunkId: ids[row] as string, text })));
    const segment = LexicalSegment.fromBytes(LexicalSegment.build(texts).toBytes());
    const rows = { chunkIdOf: (row: number) => ids[row] as string, rowOf: (id: string) => ids.indexOf(id) };
    const frozen = LexicalIndex.over(segment, rows);
    const scored = (index: LexicalIndex) =>
      index.search('billing invoice', 10).map(({ chunkId, score }) => ({ chunkId, score }));
    expect(scored(frozen)).toEqual(scored(mutable));
    expect(frozen.search('billing invoice', 10).map((hit) => hit.row)).toEqual([2, 0, 1]);
    expect(frozen.search('billing invoice', 10).map((hit) => hit.chunkId)).toEqual(['c', 'a', 'b']);

    frozen.remove('a');
    expect(frozen.has('a')).toBe(false);
    expect(frozen.search('download', 10)).toEqual([]);
    frozen.addAll([{ chunkId: 'a', text: 'download copies' }]);
    expect(frozen.search('download', 10).map((hit) => hit.chunkId)).toEqual(['a']);
    expect(frozen.search('billing', 1, (id) => id !== 'c').map((hit) => hit.chunkId)).toEqual(['b']);
    expect(frozen.size).toBe(3);
    // Another index over the same segment starts with nothing removed: the segment is shared, never modified.
    expect(
      LexicalIndex.over(segment, rows)
        .search('download', 10)
        .map((hit) => hit.chunkId),
    ).toEqual(['a']);
  });

  it('kthLargest selects the k-th largest value, ties included, and leaves the k largest in front', () => {
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (const count of [1, 2, 17, 1000]) {
      const values = Float64Array.from({ length: count }, () => Math.floor(random() * 50));
      const sorted = [...values].sort((a, b) => b - a);
      for (const k of [1, Math.ceil(count / 2), count]) {
        const selected = Float64Array.from(values);
        expect(kthLargest(selected, count, k)).toBe(sorted[k - 1]);
        // It leaves the k largest in front (rank() selects again within them).
        expect([...selected.subarray(0, k)].sort((a, b) => b - a)).toEqual(sorted.slice(0, k));
      }
    }
  });

  it('rank() returns the top hits and the score at a deeper rank, over segment and delta alike', () => {
    const texts = ['solar panel', 'solar solar panel cost', 'panel', 'solar'];
    const ids = ['a', 'b', 'c', 'd'];
    const index = LexicalIndex.over(LexicalSegment.build(texts), {
      chunkIdOf: (row) => ids[row] as string,
      rowOf: (id) => ids.indexOf(id),
    });
    index.addAll([{ chunkId: 'e', text: 'solar panel panel' }]);
    const everything = index.search('solar panel', 10);
    const { hits, floorScore } = index.rank('solar panel', 2, 4);
    expect(hits).toEqual(everything.slice(0, 2));
    expect(floorScore).toBe(everything[3]?.score);
    expect(index.rank('solar panel', 2, 99).floorScore).toBe(everything.at(-1)?.score);
    expect(index.rank('nothing matches', 2, 4).floorScore).toBeNaN();
  });

  it('rejects a damaged segment file', () => {
    const bytes = LexicalSegment.build(['alpha beta', 'gamma']).toBytes();
    expect(() => LexicalSegment.fromBytes(bytes.subarray(0, bytes.length - 8))).toThrow(/expected \d+ bytes/);
    expect(() => LexicalSegment.fromBytes(new Uint8Array(64))).toThrow(/bad magic/);
  });
});

describe('fusion', () => {
  const dense = [
    { id: 'a', score: 0.9 },
    { id: 'b', score: 0.8 },
    { id: 'c', score: 0.1 },
  ];
  const lexical = [
    { id: 'c', score: 12 },
    { id: 'a', score: 3 },
  ];

  it('reciprocal-rank fusion sums 1 / (60 + rank)', () => {
    const fused = reciprocalRankFusion([dense, lexical]);
    expect(fused.map((item) => item.id)).toEqual(['a', 'c', 'b']);
    expect(fused[0]?.score).toBeCloseTo(1 / 61 + 1 / 62, 12);
  });

  it('normalised-score fusion takes a given floor as the minimum of a list cut short', () => {
    const fused = normalizedScoreFusion([lexical], [1], [2]);
    expect(fused.map((item) => [item.id, item.score])).toEqual([
      ['c', 1],
      ['a', 0.1],
    ]);
  });

  it('normalised-score fusion min–max scales each list and applies weights', () => {
    const fused = normalizedScoreFusion([dense, lexical], [1, 1]);
    expect(fused.map((item) => [item.id, Number(item.score.toFixed(4))])).toEqual([
      ['a', 1],
      ['c', 1],
      ['b', 0.875],
    ]);
    expect(normalizedScoreFusion([dense, lexical], [1, 0])[0]?.id).toBe('a');
  });
});

describe('retrieval metrics (pytrec_eval definitions)', () => {
  const judgements = new Map([
    ['d1', 1],
    ['d2', 1],
  ]);
  it('computes nDCG, recall and MRR at a cut-off', () => {
    const ranking = ['x', 'd1', 'y', 'd2'];
    const dcg = 1 / Math.log2(3) + 1 / Math.log2(5);
    const idcg = 1 + 1 / Math.log2(3);
    expect(ndcgAtK(ranking, judgements, 10)).toBeCloseTo(dcg / idcg, 12);
    expect(recallAtK(ranking, judgements, 2)).toBe(0.5);
    expect(reciprocalRankAtK(ranking, judgements, 10)).toBe(0.5);
    expect(reciprocalRankAtK(ranking, judgements, 1)).toBe(0);
  });

  it('averages over judged queries and counts a missing run as zero', () => {
    const qrels = new Map([
      ['q1', judgements],
      ['q2', new Map([['d3', 1]])],
    ]);
    const metrics = evaluateRun(new Map([['q1', ['d1', 'd2']]]), qrels);
    expect(metrics).toEqual({ ndcgAt10: 0.5, recallAt10: 0.5, recallAt100: 0.5, mrrAt10: 0.5, queries: 2 });
    expect(overlapAtK(new Map([['q', ['a', 'b', 'z']]]), new Map([['q', ['a', 'b', 'c']]]), 3)).toBeCloseTo(
      2 / 3,
    );
  });
});

describe('exact top-k', () => {
  it('returns the k best rows by dot product, optionally among a subset', () => {
    const matrix = Float32Array.from([1, 0, 0, 1, 0.6, 0.8, -1, 0]);
    const query = Float32Array.from([1, 0]);
    expect(exactTopK(matrix, 2, query, 2).map((hit) => hit.row)).toEqual([0, 2]);
    expect(exactTopK(matrix, 2, query, 2, [1, 3]).map((hit) => hit.row)).toEqual([1, 3]);
    const top = new TopK(3);
    for (const [row, score] of [5, 1, 9, 3, 7].entries()) top.offer(row, score);
    expect(top.sorted().map((hit) => hit.similarity)).toEqual([9, 7, 5]);
  });
});

describe('paired randomisation test', () => {
  it('finds no difference between a run and itself, and a clear one when a run is better on every query', () => {
    const baseline = Object.fromEntries(Array.from({ length: 30 }, (_, q) => [`q${q}`, (q % 7) / 10]));
    expect(pairedRandomizationTest(baseline, baseline)).toMatchObject({
      queries: 30,
      meanDifference: 0,
      pValue: 1,
    });
    const better = Object.fromEntries(Object.entries(baseline).map(([id, score]) => [id, score + 0.05]));
    const test = pairedRandomizationTest(baseline, better);
    expect(test.meanDifference).toBeCloseTo(0.05, 10);
    expect(test.pValue).toBeLessThan(0.001);
    // Seeded: the same inputs give the same p-value.
    expect(pairedRandomizationTest(baseline, better).pValue).toBe(test.pValue);
    // Only queries both runs scored are compared.
    expect(pairedRandomizationTest({ a: 0.5 }, { a: 0.7, b: 0.1 }).queries).toBe(1);
  });
});
