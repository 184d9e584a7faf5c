import { closeSync, openSync, readSync, statSync } from 'node:fs';
import type { DeltaVectorIndex } from '../../core/delta.js';
import { SnapshotIntegrityError } from '../../core/errors.js';
import type { HnswMetric, VectorDtype } from '../../core/snapshot-manifest.js';
import type { ScoredRow } from '../../core/vectors.js';
import { usearch } from '../native-modules.js';

const { Index, MetricKind } = usearch;
type UsearchIndex = InstanceType<typeof Index>;

/** HNSW construction and search settings. */
export interface HnswSettings {
  /**
   * `ip` (inner product) requires unit-length rows and queries, and is what snapshots of normalised
   * f32/f16 spaces use ({@link defaultHnswMetric}); `cos` works for any rows. Default `ip`.
   */
  readonly metric: HnswMetric;
  /** Storage precision. Default `f16` halves memory against f32 at no measurable recall cost on unit vectors. */
  readonly dtype: VectorDtype;
  /** Graph degree (usearch `connectivity`, HNSW M). Default 16. */
  readonly connectivity: number;
  /** Candidate list size while building (efConstruction). Default 128. */
  readonly expansionAdd: number;
  /**
   * Candidate list size while searching (ef). Default 128: on SciFact's 30k windowed USE-lite
   * chunks ef 64 gave ANN recall@10 0.961 and ef 128 gave 0.987 (f16), at ~0.5 ms per query.
   * Snapshots choose theirs for a recall target at build time (recall-tuning.ts); 128 is what an
   * untuned index and manifests written before tuning use.
   */
  readonly expansionSearch: number;
}

export const DEFAULT_HNSW: HnswSettings = {
  metric: 'ip',
  dtype: 'f16',
  connectivity: 16,
  expansionAdd: 128,
  expansionSearch: 128,
};

/** Candidates fetched per requested result from an i8 index before exact re-ranking. */
export const I8_RESCORE_FACTOR = 3;

/** usearch's on-disk scalar-kind codes (scalar_kind_t). */
const SCALAR_CODES: Record<VectorDtype, number> = { f32: 11, f16: 12, i8: 23 };
/** usearch's on-disk metric codes (metric_kind_t). */
const METRIC_CODES: Record<HnswMetric, number> = { cos: 'c'.charCodeAt(0), ip: 'i'.charCodeAt(0) };
/** How far from 1 a row's length may be for `ip` (f32 rounding of a normalised row is ~1e-7). */
const UNIT_LENGTH_TOLERANCE = 1e-3;
const MAGIC = 'usearch';

/** What a usearch index file's header says about it. */
export interface HnswFileHeader {
  readonly version: string;
  readonly metric: HnswMetric | `unknown(${number})`;
  readonly dtype: VectorDtype | `unknown(${number})`;
  readonly count: number;
  readonly dimensions: number;
}

function newIndex(dimensions: number, settings: HnswSettings): UsearchIndex {
  return new Index({
    dimensions,
    metric: settings.metric === 'ip' ? MetricKind.IP : MetricKind.Cos,
    quantization: settings.dtype as never,
    connectivity: settings.connectivity,
    expansion_add: settings.expansionAdd,
    expansion_search: settings.expansionSearch,
    multi: false,
  });
}

/**
 * Below this many rows an index is built on one thread. usearch's parallel insert (2.26.2) leaves
 * about 0.1% of rows unreachable: 24-dimensional unit vectors, 5,000 rows, five builds, each row
 * searched for itself with k 10 and ef 128: 20 of 25,000 rows missed with every core, none with
 * one thread (cos and ip alike). Small corpora, where one lost document is noticed, are built
 * exactly; at 50k rows one thread costs tens of seconds more, and above it the build time matters more.
 */
export const SINGLE_THREADED_BUILD_BELOW = 50_000;

/**
 * Build an HNSW index over the rows of a row-major float32 matrix (key = row number) and save
 * it to `path`. Uses every core for construction (`threads` 0) from
 * {@link SINGLE_THREADED_BUILD_BELOW} rows up, one thread below.
 */
export function writeHnswIndex(
  path: string,
  vectors: Float32Array,
  dimensions: number,
  settings: HnswSettings,
): void {
  writeHnswIndexFromBlocks(path, [vectors], dimensions, settings);
}

/**
 * Rows added to usearch per call when building from a file: 64k rows of 512 floats are 128 MiB
 * of JavaScript memory at a time, whatever the corpus size (the index holds its own copy).
 */
export const BUILD_BLOCK_ROWS = 65_536;

/**
 * {@link writeHnswIndex} over row blocks read one after another (keys continue across blocks), so
 * a build never holds the whole float32 matrix: at 1M × 512 that matrix alone is 2 GiB, beyond a
 * Float32Array read of the file (Node's 2 GiB buffer limit) and beside usearch's own copy.
 */
export function writeHnswIndexFromBlocks(
  path: string,
  blocks: Iterable<Float32Array>,
  dimensions: number,
  settings: HnswSettings,
  totalRows?: number,
): void {
  const index = newIndex(dimensions, settings);
  let row = 0;
  for (const vectors of blocks) {
    const count = vectors.length / dimensions;
    if (!Number.isInteger(count))
      throw new RangeError(`vector data (${vectors.length}) is not a multiple of ${dimensions}`);
    if (count === 0) continue;
    if (settings.metric === 'ip') assertInnerProductRows(vectors, dimensions, settings.dtype);
    const first = row;
    index.add(
      BigUint64Array.from({ length: count }, (_, offset) => BigInt(first + offset)),
      settings.dtype === 'i8' ? quantizedForInt8(vectors, dimensions) : vectors,
      (totalRows ?? count) < SINGLE_THREADED_BUILD_BELOW ? 1 : 0,
    );
    row += count;
  }
  index.save(path);
}

/**
 * Update a saved HNSW index in place of a rebuild: load `basePath`, remove `removeKeys`, add
 * `added` vectors under their keys, and save to `path`. The graph keeps its links among the rows
 * that stay, so the cost follows the changes, not the corpus (plus reading and writing the file).
 * Removed keys leave their nodes as routing points; callers rebuild once they pass a share.
 */
export function updateHnswIndex(
  basePath: string,
  path: string,
  dimensions: number,
  settings: HnswSettings,
  removeKeys: readonly number[],
  added: { readonly keys: readonly number[]; readonly vectors: Float32Array },
): void {
  const index = newIndex(dimensions, settings);
  index.load(basePath);
  if (removeKeys.length > 0) index.remove(BigUint64Array.from(removeKeys, (key) => BigInt(key)));
  if (added.keys.length > 0) {
    if (settings.metric === 'ip') assertInnerProductRows(added.vectors, dimensions, settings.dtype);
    index.add(
      BigUint64Array.from(added.keys, (key) => BigInt(key)),
      settings.dtype === 'i8' ? quantizedForInt8(added.vectors, dimensions) : added.vectors,
      added.keys.length < SINGLE_THREADED_BUILD_BELOW ? 1 : 0,
    );
  }
  index.save(path);
}

/**
 * `ip` is only cosine when every row has unit length, and i8 rows are rescaled one by one, so
 * refuse anything else rather than build an index that ranks wrongly.
 */
function assertInnerProductRows(vectors: Float32Array, dimensions: number, dtype: VectorDtype): void {
  if (dtype === 'i8')
    throw new RangeError("metric 'ip' needs f32 or f16 rows: i8 rows are scaled one by one; use 'cos'");
  for (let offset = 0; offset < vectors.length; offset += dimensions) {
    let squared = 0;
    for (let i = offset; i < offset + dimensions; i += 1) squared += (vectors[i] as number) ** 2;
    if (Math.abs(Math.sqrt(squared) - 1) > UNIT_LENGTH_TOLERANCE)
      throw new RangeError(
        `metric 'ip' needs unit-length rows; row ${offset / dimensions} has length ${Math.sqrt(squared).toFixed(4)} (use 'cos' for unnormalised spaces)`,
      );
  }
}

/**
 * Rows quantised to i8 by bisearch rather than by usearch: each row scaled so that its largest
 * component is ±127, then rounded. usearch's own f32→i8 cast divides by the L2 norm and truncates,
 * so the components of a unit vector in 384–768 dimensions (mostly below 0.1) land on a handful of
 * integer levels and recall@10 drops to ~0.92 (use-lite, SciFact). Cosine similarity ignores each
 * vector's length, so per-row scaling (of rows here, of queries in {@link HnswIndexFile.search})
 * changes nothing but the rounding error.
 */
export function quantizedForInt8(vectors: Float32Array, dimensions: number): Int8Array {
  const quantized = new Int8Array(vectors.length);
  for (let offset = 0; offset < vectors.length; offset += dimensions) {
    let largest = 0;
    for (let i = offset; i < offset + dimensions; i += 1)
      largest = Math.max(largest, Math.abs(vectors[i] as number));
    const scale = largest > 0 ? 127 / largest : 0;
    for (let i = offset; i < offset + dimensions; i += 1)
      quantized[i] = Math.round((vectors[i] as number) * scale);
  }
  return quantized;
}

/**
 * Read the header of a saved usearch index without loading it. A saved file is the vectors blob
 * (u32 rows, u32 bytes per row, data) followed by the index header: magic `usearch`, version
 * (3 × u16), metric, scalar kind, key kind, slot kind (u8 each), present and deleted counts, and
 * dimensions (u64 each).
 */
export function readHnswHeader(path: string): HnswFileHeader {
  const descriptor = openSync(path, 'r');
  try {
    const size = statSync(path).size;
    const prefix = Buffer.alloc(8);
    readSync(descriptor, prefix, 0, 8, 0);
    const offset = 8 + prefix.readUInt32LE(0) * prefix.readUInt32LE(4);
    const header = Buffer.alloc(49);
    if (
      offset + header.length > size ||
      readSync(descriptor, header, 0, header.length, offset) !== header.length
    ) {
      throw new SnapshotIntegrityError(`${path}: truncated usearch file`);
    }
    if (header.toString('latin1', 0, 7) !== MAGIC)
      throw new SnapshotIntegrityError(`${path}: not a usearch index (bad magic)`);
    const metricCode = header.readUInt8(13);
    const scalarCode = header.readUInt8(14);
    const dtype = (Object.entries(SCALAR_CODES).find(([, code]) => code === scalarCode)?.[0] ??
      `unknown(${scalarCode})`) as HnswFileHeader['dtype'];
    return {
      version: `${header.readUInt16LE(7)}.${header.readUInt16LE(9)}.${header.readUInt16LE(11)}`,
      metric: (Object.entries(METRIC_CODES).find(([, code]) => code === metricCode)?.[0] ??
        `unknown(${metricCode})`) as HnswFileHeader['metric'],
      dtype,
      count: Number(header.readBigUInt64LE(17)),
      dimensions: Number(header.readBigUInt64LE(33)),
    };
  } finally {
    closeSync(descriptor);
  }
}

/**
 * A read-only HNSW index opened from a file, by default memory-mapped with `view()` so that
 * start-up does not read the file and pages are shared between processes. The header is checked
 * against what the caller expects first: `view()` silently takes dimensions, metric and dtype from
 * the file, so a mismatched file would otherwise answer with nonsense.
 */
export class HnswIndexFile {
  private constructor(
    private readonly index: UsearchIndex,
    /** Vectors in the index. */
    readonly size: number,
    readonly dimensions: number,
    readonly dtype: VectorDtype,
    readonly metric: HnswMetric,
    /** Row of each key (−1: no row); absent when every key is its row. */
    private readonly keyToRow: Int32Array | undefined,
  ) {}

  /**
   * @param mode `view` (memory-map, default) or `load` (read into RAM; faster first queries, more memory).
   * @param keyToRow the row of each key, for an index whose keys are not its rows (one updated
   *   in place by an incremental build, see {@link updateHnswIndex}); −1 for a key of no row.
   */
  static open(
    path: string,
    expected: { dimensions: number; dtype: VectorDtype; count: number; metric: HnswMetric },
    settings: Pick<HnswSettings, 'connectivity' | 'expansionAdd' | 'expansionSearch'>,
    mode: 'view' | 'load' = 'view',
    keyToRow?: Int32Array,
  ): HnswIndexFile {
    const header = readHnswHeader(path);
    const problems: string[] = [];
    if (header.metric !== expected.metric)
      problems.push(`metric ${header.metric}, expected ${expected.metric}`);
    if (header.dtype !== expected.dtype) problems.push(`dtype ${header.dtype}, expected ${expected.dtype}`);
    if (header.dimensions !== expected.dimensions)
      problems.push(`dimensions ${header.dimensions}, expected ${expected.dimensions}`);
    if (header.count !== expected.count) problems.push(`${header.count} vectors, expected ${expected.count}`);
    if (problems.length > 0)
      throw new SnapshotIntegrityError(
        `${path}: usearch header does not match the manifest (${problems.join('; ')})`,
      );
    const index = newIndex(expected.dimensions, {
      ...settings,
      dtype: expected.dtype,
      metric: expected.metric,
    });
    try {
      if (mode === 'view') index.view(path);
      else index.load(path);
    } catch (cause) {
      throw new SnapshotIntegrityError(
        `${path}: usearch could not open the index: ${(cause as Error).message}`,
        { cause },
      );
    }
    return new HnswIndexFile(
      index,
      index.size(),
      index.dimensions(),
      expected.dtype,
      expected.metric,
      keyToRow,
    );
  }

  /**
   * Approximate top-k rows by cosine similarity, best first: 1 − usearch's distance, which is
   * 1 − cosine for `cos` and 1 − dot product for `ip` (equal for the unit-length rows and queries
   * `ip` requires). Single-threaded:
   * usearch's default spawns threads per call, which triples tail latency for one query.
   */
  search(query: Float32Array, k: number): ScoredRow[] {
    if (query.length !== this.dimensions)
      throw new RangeError(`query has ${query.length} dimensions, index has ${this.dimensions}`);
    const limit = Math.min(k, this.size);
    if (limit <= 0) return [];
    const matches = this.index.search(
      this.dtype === 'i8' ? quantizedForInt8(query, query.length) : query,
      limit,
      1,
    );
    const rows: ScoredRow[] = [];
    const keyToRow = this.keyToRow;
    const limitKey = BigInt(keyToRow ? keyToRow.length : this.size);
    for (let i = 0; i < matches.keys.length; i += 1) {
      const key = matches.keys[i] as bigint;
      // Unfilled slots come back as the reserved key (2^64 − 1); never a row of ours.
      if (key >= limitKey) continue;
      const row = keyToRow ? (keyToRow[Number(key)] as number) : Number(key);
      if (row < 0) continue;
      rows.push({ row, similarity: 1 - (matches.distances[i] as number) });
    }
    return rows;
  }
}

/**
 * An in-memory HNSW index that changes with the delta (f32, inner product over unit vectors; adds,
 * removals and searches on one thread, as a query instance serves one request at a time).
 */
export class InMemoryHnswIndex implements DeltaVectorIndex {
  private readonly index: UsearchIndex;
  private count = 0;

  constructor(
    readonly dimensions: number,
    settings: Partial<HnswSettings> = {},
  ) {
    this.index = newIndex(dimensions, { ...DEFAULT_HNSW, dtype: 'f32', ...settings });
  }

  add(key: number, vector: Float32Array): void {
    if (vector.length !== this.dimensions)
      throw new RangeError(`vector has ${vector.length} dimensions, index has ${this.dimensions}`);
    this.index.add(BigInt(key), vector, 1);
    this.count += 1;
  }

  remove(key: number): void {
    this.count -= Number(this.index.remove(BigInt(key)));
  }

  search(query: Float32Array, k: number): Array<{ key: number; similarity: number }> {
    const limit = Math.min(k, this.count);
    if (limit <= 0) return [];
    const matches = this.index.search(query, limit, 1);
    const hits: Array<{ key: number; similarity: number }> = [];
    for (let i = 0; i < matches.keys.length; i += 1) {
      const key = matches.keys[i] as bigint;
      // Unfilled slots come back as the reserved key (2^64 − 1).
      if (key >= 2n ** 53n) continue;
      hits.push({ key: Number(key), similarity: 1 - (matches.distances[i] as number) });
    }
    return hits;
  }
}
