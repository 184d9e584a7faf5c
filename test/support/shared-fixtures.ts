import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * `../shared` next to the project checkout: models and datasets (read-only); `BISEARCH_SHARED_DIR`
 * points elsewhere. Without it, vitest.config.ts leaves out the test files that import this module.
 */
export const SHARED_DIR = process.env.BISEARCH_SHARED_DIR
  ? `${resolve(process.env.BISEARCH_SHARED_DIR)}/`
  : fileURLToPath(new URL('../../../shared/', import.meta.url));
export const MODELS_DIR = `${SHARED_DIR}models/`;
export const USE_LITE_DIR = `${MODELS_DIR}use-lite`;
export const TINY_BERT_BIENCODER_DIR = `${MODELS_DIR}tiny-bert-biencoder`;
export const TINY_BERT_CROSS_ENCODER_DIR = `${MODELS_DIR}tiny-bert-cross-encoder`;
export const SCIFACT_DIR = `${SHARED_DIR}datasets/scifact`;

if (!existsSync(USE_LITE_DIR)) {
  throw new Error(`tests need ../shared beside the checkout (looked for ${USE_LITE_DIR})`);
}

/** Parsed golden.json of a shared model. */
export function readGolden<T>(modelDir: string): T {
  return JSON.parse(readFileSync(`${modelDir}/golden.json`, 'utf8')) as T;
}

/** Largest absolute component difference between two vectors of equal length. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i += 1) max = Math.max(max, Math.abs((a[i] as number) - (b[i] as number)));
  return max;
}
