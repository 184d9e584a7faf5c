import { normalizeInPlace } from './vectors.js';

/**
 * How token states become one sentence vector.
 * - `mean`: average of the token states whose attention mask is 1 (sentence-transformers default);
 * - `cls`: the state of the first token ([CLS]);
 * - `in-graph`: the model outputs a pooled `sentence_embedding` itself (e.g. USE-lite).
 */
export type PoolingStrategy = 'mean' | 'cls' | 'in-graph';

/**
 * Pool a `[batch, sequence, hidden]` tensor of token states into `batch` vectors of `hidden`
 * values, optionally L2-normalised.
 *
 * @param hiddenStates row-major float32 `[batch, sequence, hidden]`.
 * @param attentionMask row-major `[batch, sequence]`, 1 for tokens and 0 for padding.
 */
export function poolTokenStates(
  hiddenStates: Float32Array,
  attentionMask: ArrayLike<number | bigint>,
  shape: readonly [batch: number, sequence: number, hidden: number],
  strategy: Exclude<PoolingStrategy, 'in-graph'>,
  normalize: boolean,
): Float32Array[] {
  const [batch, sequence, hidden] = shape;
  const vectors: Float32Array[] = [];
  for (let b = 0; b < batch; b += 1) {
    const vector = new Float32Array(hidden);
    if (strategy === 'cls') {
      vector.set(hiddenStates.subarray(b * sequence * hidden, b * sequence * hidden + hidden));
    } else {
      // Accumulate in float64: long sequences of float32 sums drift measurably.
      const sum = new Float64Array(hidden);
      let count = 0;
      for (let s = 0; s < sequence; s += 1) {
        if (Number(attentionMask[b * sequence + s]) === 0) continue;
        count += 1;
        const offset = (b * sequence + s) * hidden;
        for (let h = 0; h < hidden; h += 1)
          sum[h] = (sum[h] as number) + (hiddenStates[offset + h] as number);
      }
      const divisor = Math.max(count, 1e-9);
      for (let h = 0; h < hidden; h += 1) vector[h] = (sum[h] as number) / divisor;
    }
    vectors.push(normalize ? normalizeInPlace(vector) : vector);
  }
  return vectors;
}

/** Split a `[batch, dimensions]` output into per-row vectors, optionally L2-normalised. */
export function splitRows(
  matrix: Float32Array,
  batch: number,
  dimensions: number,
  normalize: boolean,
): Float32Array[] {
  const rows: Float32Array[] = [];
  for (let b = 0; b < batch; b += 1) {
    const row = matrix.slice(b * dimensions, (b + 1) * dimensions);
    rows.push(normalize ? normalizeInPlace(row) : row);
  }
  return rows;
}
