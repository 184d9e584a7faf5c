import { z } from 'zod';
import type { DocumentMetadata } from './documents.js';

const scalarSchema = z.union([z.string(), z.number().finite(), z.boolean()]);

/**
 * Metadata filter: every key must match. A scalar means equality, a list means "any of" (`in`).
 * A metadata value that is itself a list matches when any of its elements matches.
 */
export const metadataFilterSchema = z
  .record(z.string().min(1), z.union([scalarSchema, z.array(scalarSchema).min(1).max(100)]))
  .refine((filter) => Object.keys(filter).length <= 20, 'at most 20 filter keys');

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
