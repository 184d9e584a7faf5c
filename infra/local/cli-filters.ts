import type { FilterClause, FilterOperators, FilterScalar } from '../../functions/core/filters.js';
import { metadataFilterSchema } from '../../functions/core/filters.js';

/**
 * Metadata filters on the command line. Filters match typed values (the number 2 is not the
 * string "2"), so a value is read as JSON would read it where it can: `level=2` is the number 2,
 * `public=true` the boolean, `level="2"` (quotes kept by the shell: `level='"2"'`) the string
 * "2", anything else a string. Besides `key=value` (repeated: any of the values), `--filter`
 * takes `key!=value` (repeated: none of them), and range bounds `key>=v`, `key>v`, `key<=v`,
 * `key<v` (numbers, or ISO-8601 dates such as `published>=2024-01-01`). `--filter-json` takes a
 * whole filter object in the API's language (README "Filters"), checked before it is sent.
 */

/** One filter value as typed on the command line. */
export type CliFilterValue = FilterScalar;
export type CliFilter = Record<string, FilterClause>;

/** The typed value of `text` (see the module comment). */
export function parseFilterValue(text: string): CliFilterValue {
  if (text === 'true') return true;
  if (text === 'false') return false;
  if (/^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/.test(text)) {
    const number = Number(text);
    if (Number.isFinite(number)) return number;
  }
  const quoted = /^"(.*)"$/s.exec(text) ?? /^'(.*)'$/s.exec(text);
  return quoted ? (quoted[1] as string) : text;
}

const RANGE_OPERATORS = { '>=': 'gte', '>': 'gt', '<=': 'lte', '<': 'lt' } as const;

function isOperators(clause: FilterClause | undefined): clause is FilterOperators {
  return typeof clause === 'object' && clause !== null && !Array.isArray(clause);
}

/** Any-of values of a clause that is a scalar or list (none for an operator object). */
function valuesOf(clause: FilterClause | undefined): FilterScalar[] {
  if (clause === undefined || isOperators(clause)) return [];
  return Array.isArray(clause) ? [...clause] : [clause as FilterScalar];
}

/** Add one `key=value` (or `!=`, `>=`, `>`, `<=`, `<`) to a filter; a repeated `=` key becomes an any-of list. */
export function addFilterClause(clause: string, previous: CliFilter): CliFilter {
  const match = /^([^=!<>]+)(!=|>=|<=|=|>|<)(.*)$/s.exec(clause);
  if (!match)
    throw new Error('expected key=value (or key!=value, key>=value, key>value, key<=value, key<value)');
  const [, key, operator, text] = match as unknown as [string, string, string, string];
  const value = parseFilterValue(text);
  const existing = previous[key];
  if (operator === '=' && !isOperators(existing)) {
    const values = [...valuesOf(existing), value];
    return { ...previous, [key]: values.length === 1 ? value : values };
  }
  // Operators join an object; an earlier any-of becomes its `in`.
  const operators: Record<string, unknown> = isOperators(existing)
    ? { ...existing }
    : existing === undefined
      ? {}
      : { in: valuesOf(existing) };
  if (operator === '=') operators.in = [...((operators.in as FilterScalar[]) ?? []), value];
  else if (operator === '!=') {
    const excluded = [
      ...((operators.nin as FilterScalar[]) ?? []),
      ...(operators.ne !== undefined ? [operators.ne as FilterScalar] : []),
      value,
    ];
    delete operators.ne;
    delete operators.nin;
    if (excluded.length === 1) operators.ne = value;
    else operators.nin = excluded;
  } else {
    if (typeof value === 'boolean') throw new Error(`a range bound is a number or a date, not ${value}`);
    operators[RANGE_OPERATORS[operator as keyof typeof RANGE_OPERATORS]] = value;
  }
  return { ...previous, [key]: operators as FilterOperators };
}

/**
 * Merge a `--filter-json` object into a filter (its keys win), refusing what the API would
 * refuse, with the API's message.
 */
export function mergeFilterJson(json: string, previous: CliFilter): CliFilter {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new Error('--filter-json must be a JSON object, e.g. \'{"level": 2}\'');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new Error('--filter-json must be a JSON object, e.g. \'{"level": 2}\'');
  const checked = metadataFilterSchema.safeParse(parsed);
  if (!checked.success)
    throw new Error(
      `--filter-json: ${checked.error.issues.map((issue) => `${issue.path.join('.') || 'filter'}: ${issue.message}`).join('; ')}`,
    );
  return { ...previous, ...(parsed as CliFilter) };
}
