import { seededRandom } from '../../functions/core/snapshot-validation.js';

/**
 * Unit vectors drawn around a few random centres with wide spread (high intrinsic dimension): a
 * corpus on which HNSW at the default ef misses neighbours, unlike small or low-dimensional
 * fixtures. `points(n)` draws more from the same distribution, e.g. held-out queries that are not
 * rows of the index.
 */
export function clusteredVectors(options: {
  dimensions: number;
  clusters: number;
  /** Standard deviation per component around a centre whose components are standard normal. */
  spread: number;
  seed: number;
}): { points(count: number): Float32Array[] } {
  const random = seededRandom(options.seed);
  const gaussian = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const centres = Array.from({ length: options.clusters }, () =>
    Float32Array.from({ length: options.dimensions }, gaussian),
  );
  const point = (): Float32Array => {
    const centre = centres[Math.floor(random() * centres.length)] as Float32Array;
    const vector = Float32Array.from(centre, (value) => value + options.spread * gaussian());
    let length = 0;
    for (const value of vector) length += value * value;
    length = Math.sqrt(length);
    return vector.map((value) => value / length);
  };
  return { points: (count) => Array.from({ length: count }, point) };
}
