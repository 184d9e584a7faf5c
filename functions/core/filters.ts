import { z } from 'zod';
import type { DocumentMetadata, MetadataValue } from './documents.js';

/**
 * The metadata filter language of `POST /search` (README "Filters"). A filter is an object whose
 * keys are metadata fields; every key must match (AND). Per key, a clause is:
 *
 * - a scalar (`"a"`, `2`, `true`): equality, typed (the number 2 never matches the string "2");
 * - a list of scalars: any of them;
 * - an operator object, every operator of which must hold:
 *   `eq`, `in` (list), `ne`, `nin` (list), `gt` / `gte` / `lt` / `lte` (a range: all numbers, or all
 *   ISO-8601 dates), `exists` (`true`: the field is present; `false`: absent), and `not` (any clause
 *   but another `not`).
 *
 * A metadata value that is a list matches a positive clause when one of its elements does (one
 * element must satisfy all bounds of a range). Negations (`not`, `ne`, `nin`) are the complement
 * of the positive clause, so they also match chunks that lack the field, as in MongoDB; add
 * `"exists": true` to exclude those. A number range matches numbers only; a date range matches
 * strings that are ISO-8601 dates, compared as instants (a date without a zone is UTC).
 */

/** Keys that name JavaScript object machinery, not metadata: refused rather than silently dropped. */
const UNSAFE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
/** Most keys in one filter. */
export const MAX_FILTER_KEYS = 20;
/** Most values in one any-of list (`[…]`, `in`, `nin`). */
export const MAX_FILTER_VALUES = 100;

export type FilterScalar = string | number | boolean;

const scalarSchema = z.union([z.string().max(1_000), z.number().finite(), z.boolean()], {
  error: 'expected a string, a finite number or a boolean',
});
const listSchema = z
  .array(scalarSchema)
  .min(1, 'a list of values must not be empty')
  .max(MAX_FILTER_VALUES, `at most ${MAX_FILTER_VALUES} values in a list`);

const ISO_DATE =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/**
 * Milliseconds since the epoch of an ISO-8601 date (`2024-05-01`, `2024-05-01T10:00:00Z`,
 * `2024-05-01T12:00+02:00`), or undefined when `text` is not one. A date or time without a zone is
 * UTC, so the same string means the same instant on every machine.
 */
export function isoDateMs(text: string): number | undefined {
  const match = ISO_DATE.exec(text);
  if (!match) return undefined;
  const [, year, month, day, hour = '00', minute = '00', second = '00', fraction = '', zone = 'Z'] = match;
  const ms = Date.UTC(
    Number(year),
    Number(month) - 1,
    Number(day),
    Number(hour),
    Number(minute),
    Number(second),
    Number(fraction.padEnd(3, '0').slice(0, 3)),
  );
  const date = new Date(ms);
  // Date.UTC rolls 2024-02-30 over into March: such a string is not a date.
  if (
    date.getUTCFullYear() !== Number(year) ||
    date.getUTCMonth() !== Number(month) - 1 ||
    date.getUTCDate() !== Number(day) ||
    Number(hour) > 23 ||
    Number(minute) > 59 ||
    Number(second) > 59
  )
    return undefined;
  if (zone === 'Z') return ms;
  const sign = zone.startsWith('-') ? -1 : 1;
  const digits = zone.slice(1).replace(':', '');
  const offset = Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2));
  if (offset > 18 * 60) return undefined;
  return ms - sign * offset * 60_000;
}

const boundSchema = z.union([z.number().finite(), z.string().max(100)], {
  error: 'a range bound is a finite number or an ISO-8601 date string',
});

const OPERATORS = ['eq', 'in', 'ne', 'nin', 'gt', 'gte', 'lt', 'lte', 'exists', 'not'] as const;

function operatorObject<Shape extends z.ZodRawShape>(shape: Shape) {
  return z
    .object(shape)
    .strict()
    .superRefine((clause, context) => {
      const bounds = (['gt', 'gte', 'lt', 'lte'] as const).filter(
        (name) => (clause as Record<string, unknown>)[name] !== undefined,
      );
      const kinds = new Set<string>();
      for (const name of bounds) {
        const bound = (clause as Record<string, unknown>)[name] as number | string;
        if (typeof bound === 'number') kinds.add('number');
        else if (isoDateMs(bound) !== undefined) kinds.add('date');
        else
          context.addIssue({
            code: 'custom',
            message: `"${bound}" is not an ISO-8601 date (e.g. 2024-05-01 or 2024-05-01T10:00:00Z); a range bound is a number or a date`,
            path: [name],
          });
      }
      if (kinds.size > 1)
        context.addIssue({
          code: 'custom',
          message: 'the bounds of one range are all numbers or all dates',
          path: [bounds[0] as string],
        });
      if ('gt' in clause && 'gte' in clause)
        context.addIssue({ code: 'custom', message: 'use one of gt and gte', path: ['gt'] });
      if ('lt' in clause && 'lte' in clause)
        context.addIssue({ code: 'custom', message: 'use one of lt and lte', path: ['lt'] });
    });
}

const positiveOperators = {
  eq: scalarSchema.optional(),
  in: listSchema.optional(),
  ne: scalarSchema.optional(),
  nin: listSchema.optional(),
  gt: boundSchema.optional(),
  gte: boundSchema.optional(),
  lt: boundSchema.optional(),
  lte: boundSchema.optional(),
  exists: z.boolean({ error: 'exists is true or false' }).optional(),
};

/** An operator object without `not` (the operand of `not`). */
const innerOperatorsSchema = operatorObject(positiveOperators);

/** Either form of a clause that is not an operator object. */
function clauseSchema<Operators extends z.ZodType>(operators: Operators, nested: boolean) {
  return z.unknown().transform((value, context): z.output<Operators> | FilterScalar | FilterScalar[] => {
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      if (Object.keys(value).length === 0) {
        context.addIssue({
          code: 'custom',
          message: `an operator object needs at least one of ${OPERATORS.join(', ')}`,
        });
        return z.NEVER;
      }
      if (nested && 'not' in value) {
        context.addIssue({ code: 'custom', message: '"not" cannot be nested in "not"', path: ['not'] });
        return z.NEVER;
      }
    }
    // Dispatched by shape, so each form reports its own error instead of a union's "invalid input".
    const schema =
      typeof value === 'object' && value !== null && !Array.isArray(value)
        ? operators
        : Array.isArray(value)
          ? listSchema
          : scalarSchema;
    const parsed = schema.safeParse(value);
    if (parsed.success) return parsed.data as z.output<Operators>;
    for (const issue of parsed.error.issues)
      context.addIssue({
        code: 'custom',
        message:
          issue.code === 'unrecognized_keys'
            ? `unknown filter operator ${issue.keys.map((key) => `"${key}"`).join(', ')} (operators: ${OPERATORS.join(', ')})`
            : issue.message,
        path: issue.path as PropertyKey[],
      });
    return z.NEVER;
  });
}

const notOperandSchema = clauseSchema(innerOperatorsSchema, true);
const operatorsSchema = operatorObject({ ...positiveOperators, not: notOperandSchema.optional() });

/**
 * JSON Schema of a clause for the OpenAPI document: a clause is validated by its shape (see
 * clauseSchema), which a generated schema cannot see.
 */
const CLAUSE_JSON_SCHEMA = {
  anyOf: [scalarSchema, listSchema, operatorsSchema].map((schema) => {
    const { $schema: _dialect, ...json } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' });
    return json;
  }),
};

/** Operators of a clause (see the module comment). */
export interface FilterOperators {
  readonly eq?: FilterScalar;
  readonly in?: readonly FilterScalar[];
  readonly ne?: FilterScalar;
  readonly nin?: readonly FilterScalar[];
  readonly gt?: number | string;
  readonly gte?: number | string;
  readonly lt?: number | string;
  readonly lte?: number | string;
  readonly exists?: boolean;
  readonly not?: FilterScalar | readonly FilterScalar[] | Omit<FilterOperators, 'not'>;
}

/** What one filter key asks of its field. */
export type FilterClause = FilterScalar | readonly FilterScalar[] | FilterOperators;

/**
 * Schema of a metadata filter (see the module comment). Strict: unknown operators, empty lists or
 * objects, mixed or malformed range bounds and unsafe keys are refused with a message naming the
 * key, never matched loosely.
 */
export const metadataFilterSchema = z.preprocess(
  (value, context) => {
    // Checked on the raw object: JSON.parse makes "__proto__" an own key, which a record schema skips.
    // A preprocess step (not a refinement before a pipe) so the JSON Schema of the input is the record below.
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
    for (const key of Object.keys(value)) {
      if (UNSAFE_KEYS.has(key))
        context.addIssue({
          code: 'custom',
          message: `"${key}" is not a filterable metadata key`,
          path: [key],
        });
    }
    return value;
  },
  z
    .record(
      z.string().min(1, 'filter keys must not be empty').max(200),
      clauseSchema(operatorsSchema, false).meta(CLAUSE_JSON_SCHEMA),
      {
        error: 'a filter is an object of metadata keys, e.g. {"category": "shipping"}',
      },
    )
    .refine(
      (filter) => Object.keys(filter).length <= MAX_FILTER_KEYS,
      `at most ${MAX_FILTER_KEYS} filter keys`,
    )
    .transform((filter) => filter as Record<string, FilterClause>)
    .meta({
      description:
        'every key must match (AND). Per key: a scalar is typed equality, a list is any of, an object holds operators eq, in, ne, nin, gt, gte, lt, lte (numbers or ISO-8601 dates), exists, not (README "Filters"); at most 20 keys',
    }),
);

export type MetadataFilter = Readonly<Record<string, FilterClause>>;

/** A range over one kind of value; `undefined` bounds are open. Dates are epoch milliseconds. */
export interface RangeTest {
  readonly type: 'number' | 'date';
  readonly low?: number;
  readonly lowInclusive: boolean;
  readonly high?: number;
  readonly highInclusive: boolean;
}

/**
 * A clause reduced to four primitive tests, all of which must hold: `anyOf` (one element equals
 * one of the values), `range` (one element lies in it), `exists`, and `not` (its tests do not all
 * hold). The reference evaluator ({@link matchesFilter}) and the metadata index evaluate this form.
 */
export type FieldTest =
  | { readonly kind: 'anyOf'; readonly values: readonly FilterScalar[] }
  | { readonly kind: 'range'; readonly range: RangeTest }
  | { readonly kind: 'exists'; readonly present: boolean }
  | { readonly kind: 'not'; readonly tests: readonly FieldTest[] };

function isScalar(clause: unknown): clause is FilterScalar {
  return typeof clause === 'string' || typeof clause === 'number' || typeof clause === 'boolean';
}

function boundValue(bound: number | string): number {
  return typeof bound === 'number' ? bound : (isoDateMs(bound) as number);
}

/** The primitive tests of one (validated) clause. */
export function fieldTests(clause: FilterClause): FieldTest[] {
  if (isScalar(clause)) return [{ kind: 'anyOf', values: [clause] }];
  if (Array.isArray(clause)) return [{ kind: 'anyOf', values: clause as FilterScalar[] }];
  const operators = clause as FilterOperators;
  const tests: FieldTest[] = [];
  if (operators.eq !== undefined) tests.push({ kind: 'anyOf', values: [operators.eq] });
  if (operators.in !== undefined) tests.push({ kind: 'anyOf', values: operators.in });
  if (operators.ne !== undefined)
    tests.push({ kind: 'not', tests: [{ kind: 'anyOf', values: [operators.ne] }] });
  if (operators.nin !== undefined)
    tests.push({ kind: 'not', tests: [{ kind: 'anyOf', values: operators.nin }] });
  const low = operators.gte ?? operators.gt;
  const high = operators.lte ?? operators.lt;
  if (low !== undefined || high !== undefined) {
    tests.push({
      kind: 'range',
      range: {
        type: typeof (low ?? high) === 'number' ? 'number' : 'date',
        ...(low !== undefined ? { low: boundValue(low) } : {}),
        lowInclusive: operators.gte !== undefined,
        ...(high !== undefined ? { high: boundValue(high) } : {}),
        highInclusive: operators.lte !== undefined,
      },
    });
  }
  if (operators.exists !== undefined) tests.push({ kind: 'exists', present: operators.exists });
  if (operators.not !== undefined) tests.push({ kind: 'not', tests: fieldTests(operators.not) });
  return tests;
}

/** True when `value` lies in `range` (numbers for a number range, ISO-date strings for a date range). */
export function inRange(value: FilterScalar, range: RangeTest): boolean {
  let position: number | undefined;
  if (range.type === 'number') position = typeof value === 'number' ? value : undefined;
  else position = typeof value === 'string' ? isoDateMs(value) : undefined;
  if (position === undefined) return false;
  if (range.low !== undefined && (range.lowInclusive ? position < range.low : position <= range.low))
    return false;
  if (range.high !== undefined && (range.highInclusive ? position > range.high : position >= range.high))
    return false;
  return true;
}

function passes(actual: MetadataValue | undefined, test: FieldTest): boolean {
  const elements: FilterScalar[] = actual === undefined ? [] : Array.isArray(actual) ? actual : [actual];
  switch (test.kind) {
    case 'anyOf':
      return elements.some((element) => test.values.includes(element));
    case 'range':
      return elements.some((element) => inRange(element, test.range));
    case 'exists':
      return (actual !== undefined) === test.present;
    case 'not':
      return !test.tests.every((inner) => passes(actual, inner));
  }
}

/**
 * True when `metadata` satisfies every clause of `filter`: the reference semantics, evaluated on
 * one record. Searches use the metadata index (`metadata-index.ts`), which answers the same.
 */
export function matchesFilter(metadata: DocumentMetadata, filter: MetadataFilter): boolean {
  for (const [key, clause] of Object.entries(filter)) {
    const actual = Object.hasOwn(metadata, key) ? metadata[key] : undefined;
    if (!fieldTests(clause).every((test) => passes(actual, test))) return false;
  }
  return true;
}
