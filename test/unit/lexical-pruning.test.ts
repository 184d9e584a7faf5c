import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LexicalIndex, type LexicalSearchStats, LexicalSegment } from '../../functions/core/lexical.js';

/** Word `n` of a synthetic vocabulary (no stop words; the analyser keeps them as they are). */
const word = (n: number) => `w${n}q`;

/** A corpus of texts over a skewed vocabulary: low word numbers are common, high ones rare. */
const corpusArbitrary = fc
  .record({
    vocabulary: fc.integer({ min: 2, max: 40 }),
    texts: fc.array(
      fc.record({
        // Squaring a uniform draw skews towards common words, as natural text is.
        words: fc.array(
          fc.integer({ min: 0, max: 999 }).map((n) => n / 1000),
          { minLength: 0, maxLength: 30 },
        ),
        // Copy an earlier text: exact duplicates give ties in score.
        copyOf: fc.oneof({ arbitrary: fc.nat(), weight: 1 }, { arbitrary: fc.constant(null), weight: 3 }),
      }),
      { minLength: 1, maxLength: 150, size: 'max' },
    ),
  })
  .map(({ vocabulary, texts }) => {
    const out: string[] = [];
    for (const { words, copyOf } of texts) {
      if (copyOf !== null && out.length > 0) out.push(out[copyOf % out.length] as string);
      else out.push(words.map((u) => word(Math.floor(vocabulary * u ** 2))).join(' '));
    }
    return { vocabulary, texts: out };
  });

interface Scenario {
  readonly texts: string[];
  /** How many of the texts are frozen in the segment; the others are added to the delta. */
  readonly frozen: number;
  /** Segment rows replaced (re-added to the delta with another text) or removed. */
  readonly replaced: number[];
  readonly removed: number[];
  readonly query: string;
  readonly limit: number;
  readonly floorRank: number;
  /** Accept chunks whose number ≡ 0 (mod this), when set: a filter. */
  readonly acceptModulo: number | null;
}

const scenarioArbitrary: fc.Arbitrary<Scenario> = corpusArbitrary.chain(({ vocabulary, texts }) =>
  fc.record({
    texts: fc.constant(texts),
    frozen: fc.integer({ min: 0, max: texts.length }),
    replaced: fc.array(fc.nat({ max: texts.length - 1 }), { maxLength: 5 }),
    removed: fc.array(fc.nat({ max: texts.length - 1 }), { maxLength: 5 }),
    // Repeated words, words no text holds (vocabulary + 3) and stop words ("the").
    query: fc
      .array(fc.oneof(fc.nat({ max: vocabulary + 3 }).map(word), fc.constant('the')), {
        minLength: 1,
        maxLength: 12,
      })
      .map((words) => words.join(' ')),
    // Mostly small (pruning has room), sometimes beyond every match.
    limit: fc.oneof(
      { arbitrary: fc.integer({ min: 1, max: 8 }), weight: 4 },
      { arbitrary: fc.integer({ min: 1, max: 200 }), weight: 1 },
    ),
    floorRank: fc.oneof(
      { arbitrary: fc.integer({ min: 1, max: 8 }), weight: 4 },
      { arbitrary: fc.integer({ min: 1, max: 200 }), weight: 1 },
    ),
    acceptModulo: fc.oneof(
      { arbitrary: fc.integer({ min: 2, max: 4 }), weight: 1 },
      { arbitrary: fc.constant(null), weight: 2 },
    ),
  }),
);

function build(scenario: Scenario): LexicalIndex {
  const ids = scenario.texts.map((_, row) => `c${row}`);
  const segment = LexicalSegment.build(scenario.texts.slice(0, scenario.frozen));
  const index = LexicalIndex.over(segment, {
    chunkIdOf: (row) => ids[row] as string,
    rowOf: (id) => {
      const row = ids.indexOf(id);
      return row < 0 ? undefined : row;
    },
  });
  index.addAll(
    scenario.texts.slice(scenario.frozen).map((text, i) => ({ chunkId: `c${scenario.frozen + i}`, text })),
  );
  for (const row of scenario.replaced)
    index.addAll([{ chunkId: `c${row}`, text: scenario.texts[(row + 1) % scenario.texts.length] as string }]);
  for (const row of scenario.removed) index.remove(`c${row}`);
  return index;
}

function acceptOf(scenario: Scenario): ((chunkId: string) => boolean) | undefined {
  const modulo = scenario.acceptModulo;
  return modulo === null ? undefined : (chunkId) => Number(chunkId.slice(1)) % modulo === 0;
}

describe('BM25 dynamic pruning (MaxScore)', () => {
  it('returns exactly what exhaustive scoring returns: same chunks, same float scores, same ties, same floor score', () => {
    let pruned = 0;
    let runs = 0;
    fc.assert(
      fc.property(scenarioArbitrary, (scenario) => {
        const index = build(scenario);
        const accept = acceptOf(scenario);
        const stats: LexicalSearchStats = { postings: 0, pruned: false };
        const reference = index.rank(scenario.query, scenario.limit, scenario.floorRank, accept, undefined, {
          exhaustive: true,
        });
        const fast = index.rank(scenario.query, scenario.limit, scenario.floorRank, accept, undefined, {
          stats,
        });
        runs += 1;
        if (stats.pruned) pruned += 1;
        // toEqual compares numbers with Object.is: scores must be bit-identical, NaN floors equal.
        expect(fast).toEqual(reference);
        // Asking again (bounds now cached, scratch reused) changes nothing.
        expect(index.rank(scenario.query, scenario.limit, scenario.floorRank, accept)).toEqual(reference);
      }),
      { numRuns: 1_000 },
    );
    // The property is not vacuous: a good share of the runs took the pruned path.
    expect(pruned).toBeGreaterThan(runs / 20);
  });

  it('on a 20,000-chunk corpus it reads far fewer postings than exhaustive scoring, with identical answers', () => {
    let seed = 11;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    // Zipf-like vocabulary of 5,000 words, chunks of 60 words, each text appearing ~5 times.
    const distinct = Array.from({ length: 4_000 }, () =>
      Array.from({ length: 60 }, () => word(Math.floor(5_000 * random() ** 4))).join(' '),
    );
    const texts = Array.from(
      { length: 20_000 },
      () => distinct[Math.floor(random() * distinct.length)] as string,
    );
    const index = LexicalIndex.over(LexicalSegment.build(texts), {
      chunkIdOf: (row) => `c${row}`,
      rowOf: (id) => Number(id.slice(1)),
    });
    let exhaustivePostings = 0;
    let prunedPostings = 0;
    for (let q = 0; q < 40; q += 1) {
      const query = Array.from({ length: 3 + (q % 8) }, () => word(Math.floor(5_000 * random() ** 2))).join(
        ' ',
      );
      const slow: LexicalSearchStats = { postings: 0, pruned: false };
      const fast: LexicalSearchStats = { postings: 0, pruned: false };
      // The engine's hybrid shape (100 hits, the floor at rank 1,000), and a plain top 10.
      expect(index.rank(query, 100, 1_000)).toEqual(
        index.rank(query, 100, 1_000, undefined, undefined, { exhaustive: true }),
      );
      const reference = index.rank(query, 10, 10, undefined, undefined, { exhaustive: true, stats: slow });
      expect(index.rank(query, 10, 10, undefined, undefined, { stats: fast })).toEqual(reference);
      exhaustivePostings += slow.postings;
      prunedPostings += fast.postings;
    }
    expect(prunedPostings).toBeLessThan(exhaustivePostings / 2);
  });
});
