import { z } from 'zod';
import type { EmbeddingSpace } from './embedding-space.js';
import { SnapshotIntegrityError } from './errors.js';

/**
 * Version of the on-disk snapshot layout written by this build; bumped on incompatible changes.
 * Format 3 added `chunks.offsets` and the `ip` metric; format 4 the metadata index.
 */
export const SNAPSHOT_FORMAT_VERSION = 4;

/**
 * Formats this build can serve. Format 2 snapshots (no `chunks.offsets`, always `cos`) still open,
 * so a deployment keeps serving the current index until the next reindex writes a newer format;
 * their record offsets are found by reading `chunks.jsonl` whole, as before. Formats 2 and 3 have
 * no `metadata.index`: it is built from the chunk records on the first filtered query.
 */
export const READABLE_SNAPSHOT_FORMATS: readonly number[] = [2, 3, 4, 5];

/** Storage precision of the HNSW vectors. `f32` exact, `f16` half, `i8` scalar-quantised. */
export type VectorDtype = 'f32' | 'f16' | 'i8';

/**
 * Distance of the HNSW index. Search always answers cosine similarity; `ip` is how it is computed
 * when rows and queries are unit-length (inner product = cosine, and usearch's `cos` metric
 * recomputes both norms on every distance: f16 search at 100k rows is ~1.6× faster with `ip`).
 */
export type HnswMetric = 'cos' | 'ip';

/**
 * The metric a new index uses: `ip` for L2-normalised spaces stored as f32 or f16; `cos` otherwise.
 * i8 rows are each scaled by their own largest component (see quantizedForInt8), so their inner
 * products are not comparable across rows and i8 needs `cos`.
 */
export function defaultHnswMetric(dtype: VectorDtype, normalized: boolean): HnswMetric {
  return normalized && dtype !== 'i8' ? 'ip' : 'cos';
}

/** Files of a snapshot directory; every one is listed with its sha256 in the manifest. */
export const SNAPSHOT_FILES = {
  /** usearch HNSW index, opened with `view()` (memory-mapped). Key = row number. */
  vectorIndex: 'index.usearch',
  /** Row-major float32 `[chunks, dimensions]`; exact search, filtered search and validation. */
  vectors: 'vectors.f32',
  /** One JSON chunk record per line; line number = row = usearch key. */
  chunks: 'chunks.jsonl',
  /**
   * Where each record of `chunks.jsonl` starts: `chunks + 1` little-endian float64 byte offsets
   * (the last is the file's size), so opening a snapshot reads 8 bytes per chunk instead of the
   * records themselves. Format 3.
   */
  chunkOffsets: 'chunks.offsets',
  /** BM25 inverted index over the same rows (binary `LexicalSegment`, format 2; JSON in format 1). */
  lexical: 'lexical.bm25',
  /**
   * Metadata index over the same rows (binary `MetadataIndex`): posting lists per field value and
   * sorted number / date values, so a filter never reads the chunk records. Format 4.
   */
  metadataIndex: 'metadata.index',
} as const;

export const MANIFEST_FILE = 'manifest.json';

/**
 * The usearch key of each row (`chunks` little-endian u32), in a snapshot whose HNSW graph was
 * updated from the previous version's rather than built afresh: its keys are no longer its rows.
 * Listed in `files` and described by `hnswKeys` (format 5); absent otherwise (key = row).
 */
export const HNSW_KEYS_FILE = 'index.keys';

/** Format of a snapshot with {@link HNSW_KEYS_FILE}: older readers must refuse it, not misread keys as rows. */
export const KEYED_SNAPSHOT_FORMAT_VERSION = 5;

const fileEntrySchema = z.object({
  bytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});

const recallEstimateSchema = z.object({
  recall: z.number().min(0).max(1),
  standardError: z.number().nonnegative(),
  queries: z.number().int().nonnegative(),
});

/** The `recall` section of a manifest: what build-time ef tuning chose and measured. */
export const recallTuningSchema = z.object({
  /** recall@k the build aimed for. */
  target: z.number().min(0).max(1),
  k: z.number().int().positive(),
  /** The ef chosen (also `index.expansionSearch`, which is what a query instance opens with). */
  expansionSearch: z.number().int().positive(),
  /** False when no ef up to `maxExpansionSearch` (and connectivity up to `maxConnectivity`) reached the target. */
  reached: z.boolean(),
  maxExpansionSearch: z.number().int().positive(),
  /** Connectivity the index was built with (raised from the configured one when needed). */
  connectivity: z.number().int().positive(),
  maxConnectivity: z.number().int().positive(),
  /** Recall on the queries ef was chosen with, at the chosen ef. */
  tuning: recallEstimateSchema,
  /** Recall on other queries (other rows, other noise) at the chosen ef: the figure to quote. */
  heldOut: recallEstimateSchema,
  /** Every ef measured, in order, with its tuning recall. */
  trials: z.array(
    z.object({
      expansionSearch: z.number().int().positive(),
      recall: z.number(),
      standardError: z.number(),
      connectivity: z.number().int().positive(),
    }),
  ),
  /** Query construction: relative noise on sampled stored vectors, and the seed. */
  noise: z.number().nonnegative(),
  seed: z.number().int(),
  /** Seconds the tuning added to the build (exact reference, searches, any rebuild). */
  seconds: z.number().nonnegative(),
});

export type RecallTuning = z.infer<typeof recallTuningSchema>;

/** Schema of `manifest.json`. */
export const snapshotManifestSchema = z.object({
  formatVersion: z.union([z.literal(2), z.literal(3), z.literal(4), z.literal(5)]),
  /** Sortable, unique version id, e.g. `20261123T181500Z-3fa2c1`. */
  version: z.string().min(1),
  /** ISO-8601 build time. */
  builtAt: z.string(),
  /** Highest change-log sequence included; later changes come from the delta. */
  watermark: z.number().int().nonnegative(),
  embedding: z.object({
    modelId: z.string(),
    /** sha256 of the model's files (see EmbeddingSpace); absent in manifests written before it. */
    fingerprint: z.string().optional(),
    dimensions: z.number().int().positive(),
    pooling: z.enum(['mean', 'cls', 'in-graph']),
    normalized: z.boolean(),
  }),
  index: z.object({
    /**
     * `cos`, or `ip` (inner product) for unit-length f32/f16 rows: the same ranking and scores as
     * cosine without computing two norms per distance. Snapshots written before `ip` existed say `cos`.
     */
    metric: z.enum(['cos', 'ip']),
    dtype: z.enum(['f32', 'f16', 'i8']),
    connectivity: z.number().int().positive(),
    expansionAdd: z.number().int().positive(),
    expansionSearch: z.number().int().positive(),
  }),
  /**
   * How `index.expansionSearch` was chosen: the smallest ef whose ANN recall@k against exact search
   * on sampled queries cleared `target` (see core/snapshot-validation.ts), and the recall measured
   * at it on held-out queries. Absent in manifests written before tuning: those open with their
   * `index.expansionSearch` (128, the previous default), as before.
   */
  recall: recallTuningSchema.optional(),
  counts: z.object({ chunks: z.number().int().nonnegative(), documents: z.number().int().nonnegative() }),
  /**
   * Present when the HNSW graph was updated from the previous version's (format 5): keys are below
   * `keySpace`, and `removedSinceRebuild` keys were removed since the graph was last built afresh
   * (their nodes stay as routing points; a build starts a fresh graph past a share of the rows).
   */
  hnswKeys: z
    .object({
      keySpace: z.number().int().nonnegative(),
      removedSinceRebuild: z.number().int().nonnegative(),
      baseVersion: z.string(),
    })
    .optional(),
  /**
   * What one BM25 entry of `lexical.bm25` is (see `LexicalUnit`); absent in snapshots written
   * before documents were indexed whole, which are chunk-level.
   */
  lexical: z.object({ unit: z.enum(['chunk', 'document']) }).optional(),
  files: z.record(z.string(), fileEntrySchema),
});

export type SnapshotManifest = z.infer<typeof snapshotManifestSchema>;

/** Parse and validate manifest JSON, with an error that says what is wrong. */
export function parseSnapshotManifest(json: string, where: string): SnapshotManifest {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (cause) {
    throw new SnapshotIntegrityError(`${where}: manifest is not valid JSON`, { cause });
  }
  const format = (value as { formatVersion?: unknown } | null)?.formatVersion;
  if (!READABLE_SNAPSHOT_FORMATS.includes(format as number)) {
    throw new SnapshotIntegrityError(
      `${where}: snapshot format ${String(format)} is not supported (this build reads formats ${READABLE_SNAPSHOT_FORMATS.join(' and ')})`,
    );
  }
  const parsed = snapshotManifestSchema.safeParse(value);
  if (!parsed.success) {
    throw new SnapshotIntegrityError(
      `${where}: invalid manifest (${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')})`,
    );
  }
  for (const name of Object.values(SNAPSHOT_FILES)) {
    if (name === SNAPSHOT_FILES.chunkOffsets && parsed.data.formatVersion < 3) continue;
    if (name === SNAPSHOT_FILES.metadataIndex && parsed.data.formatVersion < 4) continue;
    if (!parsed.data.files[name])
      throw new SnapshotIntegrityError(`${where}: manifest lists no checksum for ${name}`);
  }
  if (parsed.data.hnswKeys && !parsed.data.files[HNSW_KEYS_FILE])
    throw new SnapshotIntegrityError(`${where}: manifest lists no checksum for ${HNSW_KEYS_FILE}`);
  return parsed.data;
}

/**
 * A new snapshot version id: build time to the millisecond, then random bits, e.g.
 * `20261123T181500123Z-3fa2c1d9`. Sorts by build time; unique per build even when two builds of
 * identical content finish in the same millisecond (the pointer swap relies on distinct ids to
 * detect a concurrent reindex).
 */
export function snapshotVersionId(builtAt: Date, random: string): string {
  const stamp = builtAt.toISOString().replace(/[-:.]/g, '');
  return `${stamp}-${random.slice(0, 8)}`;
}

export type { EmbeddingSpace };
