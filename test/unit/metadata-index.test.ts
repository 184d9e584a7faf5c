import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DeltaLayer, type EmbeddedChunk } from '../../functions/core/delta.js';
import type { DocumentMetadata, MetadataValue } from '../../functions/core/documents.js';
import { InvalidRequestError } from '../../functions/core/errors.js';
import {
  isoDateMs,
  type MetadataFilter,
  matchesFilter,
  metadataFilterSchema,
} from '../../functions/core/filters.js';
import { LexicalIndex } from '../../functions/core/lexical.js';
import {
  LiveMetadataIndex,
  MetadataIndex,
  RowBitset,
  rowsMatching,
} from '../../functions/core/metadata-index.js';
import { SearchEngine } from '../../functions/core/search-engine.js';

const parse = (filter: unknown): MetadataFilter => metadataFilterSchema.parse(filter);
const matches = (metadata: DocumentMetadata, filter: unknown) => matchesFilter(metadata, parse(filter));

describe('the filter language (reference semantics, matchesFilter)', () => {
  const record = {
    level: 2,
    tags: ['faq', 'billing', 7],
    lang: 'en',
    public: true,
    published: '2024-05-01',
    updated: '2024-05-01T12:00:00+02:00',
    score: 0.75,
  };

  it.each([
    ['equality is typed: the number 2 is not the string "2"', { level: 2 }, { level: '2' }],
    ['a list is any-of', { lang: ['de', 'en'] }, { lang: ['de', 'fr'] }],
    ['a list value matches when one element does', { tags: 'billing' }, { tags: 'shipping' }],
    ['eq and in', { level: { eq: 2 }, lang: { in: ['en'] } }, { level: { eq: 3 } }],
    ['ne and nin', { lang: { ne: 'de' }, level: { nin: [1, 3] } }, { tags: { ne: 'faq' } }],
    ['number range, inclusive and exclusive bounds', { level: { gte: 2, lt: 3 } }, { level: { gt: 2 } }],
    ['a number range on a list needs one element inside', { tags: { gte: 5, lte: 8 } }, { tags: { gt: 7 } }],
    ['a number range never matches a string', { score: { lte: 1 } }, { lang: { gte: 0 } }],
    [
      'a date range compares instants',
      { published: { gte: '2024-05-01', lt: '2024-05-02' } },
      { published: { gt: '2024-05-01T00:00:00Z' } },
    ],
    [
      'a date with a zone is that instant',
      { updated: { lt: '2024-05-01T10:00:01Z', gte: '2024-05-01T10:00:00Z' } },
      { updated: { gte: '2024-05-01T11:00:00Z' } },
    ],
    [
      'a date range never matches a number or a non-date string',
      { published: { lte: '2030-01-01' } },
      { lang: { lte: '2030-01-01' } },
    ],
    ['exists', { lang: { exists: true }, missing: { exists: false } }, { missing: { exists: true } }],
    [
      'not of a clause, not of a range',
      { level: { not: { gte: 5 } }, lang: { not: ['de', 'fr'] } },
      { level: { not: 2 } },
    ],
    [
      'every operator of an object must hold',
      { level: { gte: 1, ne: 3, exists: true } },
      { level: { gte: 1, ne: 2 } },
    ],
    ['every key must hold', { level: 2, lang: 'en' }, { level: 2, lang: 'de' }],
  ])('%s', (_name, matching, failing) => {
    expect(matches(record, matching)).toBe(true);
    expect(matches(record, failing)).toBe(false);
  });

  it('negations match records without the field (as MongoDB does); exists excludes them', () => {
    expect(matches({}, { level: { ne: 2 } })).toBe(true);
    expect(matches({}, { level: { not: { gte: 0 } } })).toBe(true);
    expect(matches({}, { level: { ne: 2, exists: true } })).toBe(false);
    expect(matches({}, { level: { gte: 0 } })).toBe(false);
  });

  it('ISO dates: calendar-checked, a date without a zone is UTC, offsets are applied', () => {
    expect(isoDateMs('2024-02-29')).toBe(Date.UTC(2024, 1, 29));
    expect(isoDateMs('2023-02-29')).toBeUndefined();
    expect(isoDateMs('2024-05-01T10:00')).toBe(Date.UTC(2024, 4, 1, 10));
    expect(isoDateMs('2024-05-01T12:00:00.5+02:00')).toBe(Date.UTC(2024, 4, 1, 10, 0, 0, 500));
    expect(isoDateMs('May 1, 2024')).toBeUndefined();
    expect(isoDateMs('2024-05-01T25:00Z')).toBeUndefined();
  });

  it.each([
    [{ level: { foo: 1 } }, /level: unknown filter operator "foo"/],
    [{ level: {} }, /level: an operator object needs at least one of/],
    [{ level: [] }, /level: a list of values must not be empty/],
    [{ level: { in: [] } }, /level\.in: a list of values must not be empty/],
    [{ level: { gte: 'soon' } }, /level\.gte: "soon" is not an ISO-8601 date/],
    [{ level: { gte: 1, lt: '2024-01-01' } }, /all numbers or all dates/],
    [{ level: { gt: 1, gte: 2 } }, /use one of gt and gte/],
    [{ level: { not: { not: 1 } } }, /"not" cannot be nested/],
    [{ level: null }, /level: expected a string, a finite number or a boolean/],
    [{ level: { exists: 'yes' } }, /level\.exists: exists is true or false/],
    [{ level: { eq: [1] } }, /level\.eq: expected a string, a finite number or a boolean/],
    [{ level: { gte: Number.NaN } }, /level\.gte/],
    [JSON.parse('{"__proto__": {"gte": 1}}'), /"__proto__" is not a filterable metadata key/],
    ['level=2', /a filter is an object/],
    [Object.fromEntries(Array.from({ length: 21 }, (_, n) => [`k${n}`, 1])), /at most 20 filter keys/],
  ])('refuses %j with a clear error (a 400, never a 5xx)', (filter, message) => {
    let error: unknown;
    try {
      SearchEngine.parseRequest({ query: 'q', filter });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(InvalidRequestError);
    expect((error as Error).message).toMatch(message);
  });
});

// Random metadata and filters over a few fields, with values that collide across types on purpose
// ("2" and 2, dates and near-dates, lists holding mixed types).
const FIELDS = ['a', 'b', 'c', 'd'];
const DATES = ['2023-12-31', '2024-01-01', '2024-01-01T12:00:00Z', '2024-01-02T00:00:00+05:00', '2024-03-05'];
const scalar = fc.oneof(
  fc.integer({ min: -3, max: 3 }),
  fc.constantFrom(0.5, -1.5),
  fc.constantFrom('x', 'y', '2', 'not-a-date', ...DATES),
  fc.boolean(),
);
const metadataValue: fc.Arbitrary<MetadataValue> = fc.oneof(
  { weight: 3, arbitrary: scalar },
  { weight: 1, arbitrary: fc.array(scalar, { maxLength: 3 }) },
);
const metadata = fc.dictionary(fc.constantFrom(...FIELDS), metadataValue, { maxKeys: 4 });
const numberBound = fc.oneof(fc.integer({ min: -4, max: 4 }), fc.constant(0.5));
const dateBound = fc.constantFrom(...DATES, '2024-01-01T06:00:00Z');
const range = fc
  .oneof(
    numberBound.map((b) => ['n', b] as const),
    dateBound.map((b) => ['d', b] as const),
  )
  .chain(([kind]) => {
    const bound = kind === 'n' ? numberBound : dateBound;
    return fc
      .record({
        low: fc.option(fc.tuple(fc.constantFrom('gt', 'gte'), bound)),
        high: fc.option(fc.tuple(fc.constantFrom('lt', 'lte'), bound)),
      })
      .filter(({ low, high }) => low !== null || high !== null)
      .map(({ low, high }) => ({
        ...(low ? { [low[0]]: low[1] } : {}),
        ...(high ? { [high[0]]: high[1] } : {}),
      }));
  });
const positive = fc.oneof(
  scalar,
  fc.array(scalar, { minLength: 1, maxLength: 3 }),
  scalar.map((eq) => ({ eq })),
  fc.array(scalar, { minLength: 1, maxLength: 3 }).map((values) => ({ in: values })),
  scalar.map((ne) => ({ ne })),
  fc.array(scalar, { minLength: 1, maxLength: 3 }).map((nin) => ({ nin })),
  range,
  fc.boolean().map((exists) => ({ exists })),
);
const clause = fc.oneof(
  { weight: 4, arbitrary: positive },
  { weight: 1, arbitrary: positive.map((not) => ({ not })) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(
        range,
        fc.option(scalar.map((ne) => ({ ne }))),
        fc.option(fc.boolean().map((exists) => ({ exists }))),
      )
      .map(([r, ne, exists]) => ({ ...r, ...(ne ?? {}), ...(exists ?? {}) })),
  },
);
const filter = fc
  .dictionary(fc.constantFrom(...FIELDS, 'absent'), clause, { minKeys: 1, maxKeys: 3 })
  .map((candidate) => parse(candidate));

describe('the metadata index', () => {
  it('RowBitset: add, has, and, andNot, count, rows', () => {
    const set = new RowBitset(70);
    set.addAll([0, 31, 32, 69]);
    expect(set.count()).toBe(4);
    expect([...set.rows()]).toEqual([0, 31, 32, 69]);
    expect(set.has(69)).toBe(true);
    expect(set.has(70)).toBe(false);
    expect(RowBitset.full(70).count()).toBe(70);
    const other = new RowBitset(70);
    other.addAll([31, 69]);
    expect([...RowBitset.full(70).andNot(other).and(set).rows()]).toEqual([0, 32]);
    expect([...set.toArray()]).toEqual([0, 31, 32, 69]);
  });

  it('snapshot index (encoded, reopened) and live index answer exactly what matchesFilter answers, row for row', () => {
    fc.assert(
      fc.property(
        fc.array(metadata, { maxLength: 40 }),
        fc.array(filter, { minLength: 1, maxLength: 5 }),
        (rows, filters) => {
          const snapshotIndex = MetadataIndex.fromBytes(MetadataIndex.encode(rows));
          const live = new LiveMetadataIndex();
          for (const [key, row] of rows.entries()) live.add(key, row);
          for (const query of filters) {
            const expected = rows.flatMap((row, index) => (matchesFilter(row, query) ? [index] : []));
            expect([...rowsMatching(query, snapshotIndex).rows()]).toEqual(expected);
            expect([...rowsMatching(query, live).rows()]).toEqual(expected);
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  it('the live index follows removals: a removed key never matches, a re-added one matches its new metadata', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(metadata, metadata, fc.boolean()), { minLength: 1, maxLength: 30 }),
        filter,
        (rows, query) => {
          const live = new LiveMetadataIndex();
          for (const [key, [first]] of rows.entries()) live.add(key, first);
          const current = new Map<number, DocumentMetadata>();
          rows.forEach(([first, second, replace], key) => {
            live.remove(key, first);
            if (replace) {
              // Re-added under a new key, as the delta does when a document changes.
              live.add(rows.length + key, second);
              current.set(rows.length + key, second);
            }
          });
          const expected = [...current].filter(([, row]) => matchesFilter(row, query)).map(([key]) => key);
          expect([...rowsMatching(query, live).rows()]).toEqual(expected.sort((x, y) => x - y));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('the delta answers a filter from its index: only live chunks, after updates and deletes', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(fc.constantFrom('d1', 'd2', 'd3', 'd4', 'd5'), fc.array(metadata, { maxLength: 3 })),
          {
            minLength: 1,
            maxLength: 20,
          },
        ),
        filter,
        (changes, query) => {
          const delta = new DeltaLayer(0, LexicalIndex.create(), () => []);
          changes.forEach(([docId, chunkMetadata], sequence) => {
            const chunks = chunkMetadata.map(
              (meta, ordinal): EmbeddedChunk => ({
                chunkId: `${docId}#${ordinal}`,
                docId,
                ordinal,
                text: `text ${sequence}`,
                metadata: meta,
                contentHash: `${sequence}-${ordinal}`,
                vector: Float32Array.of(1, 0),
              }),
            );
            delta.applyDocument(docId, chunks, sequence + 1);
          });
          const expected = [...delta.chunks()]
            .filter((chunk) => matchesFilter(chunk.metadata, query))
            .map((chunk) => chunk.chunkId)
            .sort();
          expect([...delta.chunksMatching(query)].map((chunk) => chunk.chunkId).sort()).toEqual(expected);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('refuses bytes that are not an index', () => {
    expect(() => MetadataIndex.fromBytes(new Uint8Array(8))).toThrow(/shorter than its header/);
    expect(() => MetadataIndex.fromBytes(new Uint8Array(64))).toThrow(/bad magic/);
    const bytes = MetadataIndex.encode([{ a: 'x' }]);
    expect(() => MetadataIndex.fromBytes(bytes.subarray(0, bytes.length - 4))).toThrow(/truncated/);
  });
});
