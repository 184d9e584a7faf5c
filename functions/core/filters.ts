import { z } from 'zod';
import type { DocumentMetadata } from './documents.js';

const scalarSchema = z.union([z.string(), z.number().finite(), z.boolean()]);

/**
 * Metadata filter: every key must match. A scalar means equality, a list means "any of" (`in`).
 * A metadata value that is itself a list matches when any of its elements matches.
 */
/** Keys that name JavaScript object machinery, not metadata: refused rather than silently dropped. */
const UNSAFE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

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
      z.union([scalarSchema, z.array(scalarSchema).min(1).max(100)], {
        error: 'a filter value is a string, number, boolean or a list of them',
      }),
    )
    .refine((filter) => Object.keys(filter).length <= 20, 'at most 20 filter keys')
    .meta({
      description:
        'every key must match: a scalar is equality, a list is any of; a list-valued metadata field matches when any element does (at most 20 keys)',
    }),
);

export type MetadataFilter = z.infer<typeof metadataFilterSchema>;

/** True when `metadata` satisfies every clause of `filter`. */
export function matchesFilter(metadata: DocumentMetadata, filter: MetadataFilter): boolean {
  for (const [key, wanted] of Object.entries(filter)) {
    const actual = metadata[key];
    if (actual === undefined) return false;
    const wantedValues = Array.isArray(wanted) ? wanted : [wanted];
    const actualValues = Array.isArray(actual) ? actual : [actual];
    if (!actualValues.some((value) => wantedValues.includes(value))) return false;
  }
  return true;
}
