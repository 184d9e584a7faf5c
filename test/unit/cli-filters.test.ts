import { describe, expect, it } from 'vitest';
import { metadataFilterSchema } from '../../functions/core/filters.js';
import { addFilterClause, mergeFilterJson, parseFilterValue } from '../../infra/local/cli-filters.js';

describe('command-line filters are typed as the metadata they match', () => {
  it('reads numbers, booleans and quoted strings', () => {
    expect(parseFilterValue('2')).toBe(2);
    expect(parseFilterValue('-1.5')).toBe(-1.5);
    expect(parseFilterValue('1e3')).toBe(1000);
    expect(parseFilterValue('true')).toBe(true);
    expect(parseFilterValue('false')).toBe(false);
    expect(parseFilterValue('"2"')).toBe('2');
    expect(parseFilterValue("'true'")).toBe('true');
    for (const text of ['en', '007', '2x', '', '1.', 'Infinity', 'NaN', ' 2'])
      expect(parseFilterValue(text)).toBe(text);
  });

  it('repeats a key as any-of, and --filter-json merges over --filter', () => {
    let filter = addFilterClause('level=2', {});
    filter = addFilterClause('level=3', filter);
    filter = addFilterClause('lang=en', filter);
    expect(filter).toEqual({ level: [2, 3], lang: 'en' });
    expect(mergeFilterJson('{"lang": ["en", "de"], "tier": "2"}', filter)).toEqual({
      level: [2, 3],
      lang: ['en', 'de'],
      tier: '2',
    });
    expect(() => addFilterClause('=x', {})).toThrow(/key=value/);
    expect(() => mergeFilterJson('[1]', {})).toThrow(/JSON object/);
    expect(() => mergeFilterJson('{', {})).toThrow(/JSON object/);
  });

  it('--filter takes !=, >=, >, <=, < and ISO dates; --filter-json the API language, checked before sending', () => {
    let filter = addFilterClause('level>=2', {});
    filter = addFilterClause('level<5', filter);
    filter = addFilterClause('lang!=de', filter);
    filter = addFilterClause('lang!=fr', filter);
    filter = addFilterClause('published>=2024-01-01', filter);
    filter = addFilterClause('tier=1', filter);
    filter = addFilterClause('tier>0', filter);
    expect(filter).toEqual({
      level: { gte: 2, lt: 5 },
      lang: { nin: ['de', 'fr'] },
      published: { gte: '2024-01-01' },
      tier: { in: [1], gt: 0 },
    });
    expect(metadataFilterSchema.safeParse(filter).success).toBe(true);
    expect(() => addFilterClause('public>true', {})).toThrow(/number or a date/);
    expect(
      mergeFilterJson(
        '{"level": {"gte": 2, "lt": 5}, "lang": {"not": ["de"]}, "draft": {"exists": false}}',
        {},
      ),
    ).toEqual({ level: { gte: 2, lt: 5 }, lang: { not: ['de'] }, draft: { exists: false } });
    expect(() => mergeFilterJson('{"level": {"between": [1, 2]}}', {})).toThrow(
      /--filter-json: level: unknown filter operator "between"/,
    );
    expect(() => mergeFilterJson('{"day": {"gte": "soon"}}', {})).toThrow(/not an ISO-8601 date/);
  });
});
