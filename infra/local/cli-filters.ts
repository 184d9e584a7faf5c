/**
 * Metadata filters on the command line. Filters match typed values (the number 2 is not the
 * string "2"), so a value is read as JSON would read it where it can: `level=2` is the number 2,
 * `public=true` the boolean, `level="2"` (quotes kept by the shell: `level='"2"'`) the string
 * "2", anything else a string. `--filter-json` takes a whole filter object for everything else.
 */

/** One filter value as typed on the command line. */
export type CliFilterValue = string | number | boolean;
export type CliFilter = Record<string, CliFilterValue | CliFilterValue[]>;

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

/** Add one `key=value` to a filter; a repeated key becomes an any-of list. */
export function addFilterClause(clause: string, previous: CliFilter): CliFilter {
  const separator = clause.indexOf('=');
  if (separator < 1) throw new Error('expected key=value');
  const key = clause.slice(0, separator);
  const value = parseFilterValue(clause.slice(separator + 1));
  const existing = previous[key];
  return { ...previous, [key]: existing === undefined ? value : [...[existing].flat(), value] };
}

/** Merge a `--filter-json` object into a filter (its keys win). */
export function mergeFilterJson(json: string, previous: CliFilter): CliFilter {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new Error('--filter-json must be a JSON object, e.g. \'{"level": 2}\'');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new Error('--filter-json must be a JSON object, e.g. \'{"level": 2}\'');
  return { ...previous, ...(parsed as CliFilter) };
}
