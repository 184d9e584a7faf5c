import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { closeSync, createReadStream, createWriteStream, existsSync, openSync, readSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { type Chunk, documentIdOfChunk } from '../../core/chunking.js';
import type { EmbeddedChunk } from '../../core/delta.js';
import type { DocumentMetadata } from '../../core/documents.js';
import { assertSameEmbeddingSpace, type EmbeddingSpace } from '../../core/embedding-space.js';
import { SnapshotIntegrityError } from '../../core/errors.js';
import type { MetadataFilter } from '../../core/filters.js';
import {
  type Bm25Parameters,
  DEFAULT_LEXICAL_UNIT,
  LexicalIndex,
  LexicalSegment,
  LexicalSegmentBuilder,
  type LexicalUnit,
  lexicalRowTexts,
} from '../../core/lexical.js';
import { MetadataIndex, type RowBitset, rowsMatching } from '../../core/metadata-index.js';
import type { SnapshotView } from '../../core/search-engine.js';
import {
  defaultHnswMetric,
  HNSW_KEYS_FILE,
  KEYED_SNAPSHOT_FORMAT_VERSION,
  MANIFEST_FILE,
  parseSnapshotManifest,
  type RecallTuning,
  SNAPSHOT_FILES,
  SNAPSHOT_FORMAT_VERSION,
  type SnapshotManifest,
  snapshotVersionId,
} from '../../core/snapshot-manifest.js';
import type { RecallTargetOptions } from '../../core/snapshot-validation.js';
import { dot, offerRows, type ScoredRow, TopK } from '../../core/vectors.js';
import { measureUpdatedHnswIndex, writeTunedHnswIndex } from './recall-tuning.js';
import {
  BUILD_BLOCK_ROWS,
  DEFAULT_HNSW,
  HnswIndexFile,
  type HnswSettings,
  I8_RESCORE_FACTOR,
  updateHnswIndex,
  writeHnswIndexFromBlocks,
} from './usearch-index.js';

export { I8_RESCORE_FACTOR };

export interface WriteSnapshotInput {
  /** Chunks with their vectors; stored sorted by document id and ordinal (row = usearch key). */
  readonly chunks: readonly EmbeddedChunk[];
  readonly space: EmbeddingSpace;
  /** Highest change-log sequence the chunks include. Default 0. */
  readonly watermark?: number;
  readonly hnsw?: Partial<HnswSettings>;
  /** Build time recorded in the manifest and the version id. Default now. */
  readonly builtAt?: Date;
  /**
   * Choose `ef` for this recall target (adapters/index/recall-tuning.ts; defaults DEFAULT_RECALL_TARGET) and
   * record it in the manifest's `recall`; `false` keeps the configured ef unmeasured. An explicit
   * `hnsw.expansionSearch` is measured, not changed. Default `{}` (tune with the defaults).
   */
  readonly recall?: Partial<RecallTargetOptions> | false;
  /** What a BM25 entry is. Default `DEFAULT_LEXICAL_UNIT` (whole documents). */
  readonly lexicalUnit?: LexicalUnit;
  /** BM25 parameters stored in the segment (queries use them). Default `DEFAULT_BM25`. */
  readonly bm25?: Bm25Parameters;
}

/** sha256 and size of a file, streamed (snapshot files can be gigabytes). */
export async function fileDigest(path: string): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 })) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { bytes, sha256: hash.digest('hex') };
}

/**
 * Write an immutable snapshot directory `<parent>/<version>/` from chunks in any order (sorted
 * here, in memory): see {@link writeSortedSnapshot}, which large builds use directly.
 */
export async function writeSnapshot(
  parent: string,
  input: WriteSnapshotInput,
): Promise<{ directory: string; manifest: SnapshotManifest }> {
  const chunks = [...input.chunks].sort(compareChunkOrder);
  return writeSortedSnapshot(parent, { ...input, chunks });
}

/** Row order of a snapshot: document id, then ordinal. */
export function compareChunkOrder(a: Pick<Chunk, 'docId' | 'ordinal'>, b: Pick<Chunk, 'docId' | 'ordinal'>) {
  return a.docId < b.docId ? -1 : a.docId > b.docId ? 1 : a.ordinal - b.ordinal;
}

/** Input of {@link writeSortedSnapshot}. */
export interface WriteSortedSnapshotInput extends Omit<WriteSnapshotInput, 'chunks'> {
  /** Chunks in row order (document id, then ordinal; checked), streamed: none is held after its row is written. */
  readonly chunks: AsyncIterable<EmbeddedChunk> | Iterable<EmbeddedChunk>;
  /** Called every 10,000 chunks written, with the count so far (progress of long builds). */
  readonly onProgress?: (chunks: number) => void;
  /**
   * Update the previous version's HNSW graph instead of building one (incremental reindex):
   * unchanged chunks keep their key, removed ones are removed, new ones are added. A fresh graph
   * is built instead when removed keys since the last fresh one would pass `maxRemovedFraction`
   * of the rows, when its settings are not this build's, or when the updated graph's held-out
   * recall misses the target.
   */
  readonly reuseGraph?: GraphReuse;
}

/** The previous version's graph, for {@link WriteSortedSnapshotInput.reuseGraph}. */
export interface GraphReuse {
  /** Its `index.usearch`, on local disk (verified). */
  readonly indexPath: string;
  readonly manifest: SnapshotManifest;
  /** Its row → key ({@link HNSW_KEYS_FILE}); undefined when its keys are its rows. */
  readonly rowKeys: Uint32Array | undefined;
  /** The previous version's row of a chunk streamed unchanged from it; undefined for new chunks. */
  readonly baseRowOf: (chunk: EmbeddedChunk) => number | undefined;
  /** Default {@link DEFAULT_MAX_REMOVED_FRACTION}. */
  readonly maxRemovedFraction?: number;
}

/**
 * Removed keys (since the last fresh graph) past which an incremental build starts a fresh graph:
 * removed nodes stay as routing points, and a graph of many of them searches worse.
 */
export const DEFAULT_MAX_REMOVED_FRACTION = 0.2;

/** Records and vectors buffered before a write to their files. */
const WRITE_BATCH = 1_000;

/**
 * Write an immutable snapshot directory `<parent>/<version>/` (usearch index, vectors, chunk
 * records and their offsets, lexical index, manifest with the sha256 of every file) from chunks
 * streamed in row order. Memory stays bounded by the HNSW index (usearch's own copy of the
 * vectors and its graph), the BM25 postings and 8 bytes of offset per chunk: the chunks, their
 * texts and the float32 matrix are never held whole (the index is built from `vectors.f32` in
 * blocks of {@link BUILD_BLOCK_ROWS}). The index metric is {@link defaultHnswMetric} unless
 * `input.hnsw.metric` says otherwise. Files are written into a temporary directory and renamed
 * into place, so a crash never leaves a half-written version behind.
 */
export async function writeSortedSnapshot(
  parent: string,
  input: WriteSortedSnapshotInput,
): Promise<{ directory: string; manifest: SnapshotManifest }> {
  const dtype = input.hnsw?.dtype ?? DEFAULT_HNSW.dtype;
  const configured: HnswSettings = {
    ...DEFAULT_HNSW,
    metric: defaultHnswMetric(dtype, input.space.normalized),
    ...input.hnsw,
  };
  const { dimensions } = input.space;
  const lexicalUnit = input.lexicalUnit ?? DEFAULT_LEXICAL_UNIT;
  await mkdir(parent, { recursive: true });
  const staging = join(parent, `.staging-${randomUUID()}`);
  await mkdir(staging);
  try {
    const vectorsPath = join(staging, SNAPSHOT_FILES.vectors);
    const vectorsOut = createWriteStream(vectorsPath);
    const recordsOut = createWriteStream(join(staging, SNAPSHOT_FILES.chunks));
    const lexical = new LexicalSegmentBuilder();
    let documentChunks: Pick<Chunk, 'chunkId' | 'docId' | 'ordinal' | 'title' | 'text'>[] = [];
    const addDocumentTexts = () => {
      for (const text of lexicalRowTexts(documentChunks, lexicalUnit)) lexical.add(text);
      documentChunks = [];
    };
    // Metadata objects only (small, usually a few fields), for the metadata index built at the end.
    const metadata: DocumentMetadata[] = [];
    let starts = new Float64Array(1_024);
    let offset = 0;
    let count = 0;
    let documents = 0;
    let previous: EmbeddedChunk | undefined;
    // Graph reuse: each row's key, the base rows kept, and the new rows' keys and vectors.
    const reuse = input.reuseGraph;
    const baseCount = reuse?.manifest.counts.chunks ?? 0;
    const baseKeyOf = (row: number) => (reuse?.rowKeys ? (reuse.rowKeys[row] as number) : row);
    let nextKey = reuse ? (reuse.manifest.hnswKeys?.keySpace ?? baseCount) : 0;
    let rowKeys = new Uint32Array(reuse ? 1_024 : 0);
    const keptBase = new Uint8Array(baseCount);
    const addedKeys: number[] = [];
    let addedVectors = new Float32Array(0);
    let pendingRecords: string[] = [];
    let pendingVectors: Buffer[] = [];
    const write = async (stream: NodeJS.WritableStream, data: string | Buffer) => {
      if (!stream.write(data)) await new Promise<void>((resolve) => stream.once('drain', () => resolve()));
    };
    const flush = async () => {
      await write(recordsOut, pendingRecords.join(''));
      await write(vectorsOut, Buffer.concat(pendingVectors));
      pendingRecords = [];
      pendingVectors = [];
    };
    for await (const chunk of input.chunks) {
      if (chunk.vector.length !== dimensions)
        throw new RangeError(
          `chunk ${chunk.chunkId} has ${chunk.vector.length} dimensions, the space has ${dimensions}`,
        );
      if (previous && compareChunkOrder(previous, chunk) >= 0)
        throw new RangeError(
          `chunks are not in row order: ${chunk.chunkId} follows ${previous.chunkId} (sort by document id, then ordinal)`,
        );
      if (previous?.docId !== chunk.docId) documents += 1;
      previous = chunk;
      const { vector, ...record } = chunk;
      const line = `${JSON.stringify(record)}\n`;
      if (count + 1 >= starts.length) {
        const grown = new Float64Array(starts.length * 2);
        grown.set(starts);
        starts = grown;
      }
      starts[count] = offset;
      offset += Buffer.byteLength(line);
      pendingRecords.push(line);
      pendingVectors.push(Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength));
      // BM25 rows per document: a document's texts are added once its last chunk has arrived.
      if (documentChunks.length > 0 && documentChunks[0]?.docId !== chunk.docId) addDocumentTexts();
      documentChunks.push({
        chunkId: chunk.chunkId,
        docId: chunk.docId,
        ordinal: chunk.ordinal,
        title: chunk.title,
        text: chunk.text,
      });
      metadata.push(chunk.metadata);
      if (reuse) {
        if (count >= rowKeys.length) {
          const grown = new Uint32Array(rowKeys.length * 2);
          grown.set(rowKeys);
          rowKeys = grown;
        }
        const baseRow = reuse.baseRowOf(chunk);
        if (baseRow !== undefined && baseRow < baseCount && keptBase[baseRow] === 0) {
          keptBase[baseRow] = 1;
          rowKeys[count] = baseKeyOf(baseRow);
        } else {
          rowKeys[count] = nextKey;
          if ((addedKeys.length + 1) * dimensions > addedVectors.length) {
            const grown = new Float32Array(
              Math.max(1_024, (addedVectors.length / dimensions) * 2) * dimensions,
            );
            grown.set(addedVectors);
            addedVectors = grown;
          }
          addedVectors.set(chunk.vector, addedKeys.length * dimensions);
          addedKeys.push(nextKey);
          nextKey += 1;
        }
      }
      count += 1;
      if (pendingRecords.length === WRITE_BATCH) await flush();
      if (count % 10_000 === 0) input.onProgress?.(count);
    }
    addDocumentTexts();
    starts[count] = offset;
    await flush();
    vectorsOut.end();
    recordsOut.end();
    await Promise.all([finished(vectorsOut), finished(recordsOut)]);

    const indexPath = join(staging, SNAPSHOT_FILES.vectorIndex);
    const target = input.recall === false ? undefined : (input.recall ?? {});
    let hnsw = configured;
    let recall: Awaited<ReturnType<typeof writeTunedHnswIndex>>['recall'];
    let hnswKeys: SnapshotManifest['hnswKeys'];
    const keys = rowKeys.subarray(0, count);
    const updated = reuse
      ? updateGraph(reuse, {
          indexPath,
          vectorsPath,
          dimensions,
          count,
          configured,
          target,
          keptBase,
          baseKeyOf,
          added: { keys: addedKeys, vectors: addedVectors.subarray(0, addedKeys.length * dimensions) },
          keySpace: nextKey,
          rowKeys: keys,
        })
      : undefined;
    if (updated) {
      ({ hnsw, recall, hnswKeys } = updated);
      await writeFile(
        join(staging, HNSW_KEYS_FILE),
        new Uint8Array(keys.buffer, keys.byteOffset, keys.byteLength),
      );
    } else if (target && count > 0) {
      // Tuning measures exact neighbours over every row, so it needs the matrix (2 GiB at 1M × 512,
      // read with pread into one typed array: no fs 2 GiB limit). Without a target, blocks suffice.
      ({ settings: hnsw, recall } = writeTunedHnswIndex(
        indexPath,
        readAllRows(vectorsPath, dimensions, count),
        dimensions,
        configured,
        target,
        input.hnsw?.expansionSearch,
      ));
    } else {
      writeHnswIndexFromBlocks(
        indexPath,
        readRowBlocks(vectorsPath, dimensions, BUILD_BLOCK_ROWS),
        dimensions,
        configured,
        count,
      );
    }
    const recordStarts = starts.subarray(0, count + 1);
    await writeFile(
      join(staging, SNAPSHOT_FILES.chunkOffsets),
      new Uint8Array(recordStarts.buffer, recordStarts.byteOffset, recordStarts.byteLength),
    );
    await writeFile(join(staging, SNAPSHOT_FILES.lexical), lexical.finish(input.bm25).toBytes());
    await writeFile(join(staging, SNAPSHOT_FILES.metadataIndex), MetadataIndex.encode(metadata));

    const files: SnapshotManifest['files'] = {};
    for (const name of [...Object.values(SNAPSHOT_FILES), ...(hnswKeys ? [HNSW_KEYS_FILE] : [])])
      files[name] = await fileDigest(join(staging, name));
    const builtAt = input.builtAt ?? new Date();

    const manifest: SnapshotManifest = {
      formatVersion: hnswKeys ? KEYED_SNAPSHOT_FORMAT_VERSION : SNAPSHOT_FORMAT_VERSION,
      version: snapshotVersionId(builtAt, randomBytes(4).toString('hex')),
      builtAt: builtAt.toISOString(),
      watermark: input.watermark ?? 0,
      embedding: {
        modelId: input.space.modelId,
        ...(input.space.fingerprint ? { fingerprint: input.space.fingerprint } : {}),
        dimensions,
        pooling: input.space.pooling,
        normalized: input.space.normalized,
      },
      index: hnsw,
      ...(recall ? { recall } : {}),
      counts: { chunks: count, documents },
      ...(hnswKeys ? { hnswKeys } : {}),
      lexical: { unit: lexicalUnit },
      files,
    };
    await writeFile(join(staging, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
    const directory = join(parent, manifest.version);
    if (existsSync(directory))
      throw new Error(`snapshot ${directory} already exists; snapshots are immutable`);
    await rename(staging, directory);
    return { directory, manifest };
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw error;
  }
}

/**
 * The graph of an incremental build from the previous version's ({@link GraphReuse}), or undefined
 * when a fresh one must be built (the caller then builds and tunes as for a full rebuild).
 */
function updateGraph(
  reuse: GraphReuse,
  build: {
    readonly indexPath: string;
    readonly vectorsPath: string;
    readonly dimensions: number;
    readonly count: number;
    readonly configured: HnswSettings;
    readonly target: Partial<RecallTargetOptions> | undefined;
    readonly keptBase: Uint8Array;
    readonly baseKeyOf: (row: number) => number;
    /** New rows' keys, and their vectors row-major. */
    readonly added: { readonly keys: number[]; readonly vectors: Float32Array };
    readonly keySpace: number;
    readonly rowKeys: Uint32Array;
  },
):
  | {
      hnsw: HnswSettings;
      recall: RecallTuning | undefined;
      hnswKeys: NonNullable<SnapshotManifest['hnswKeys']>;
    }
  | undefined {
  const base = reuse.manifest;
  const settings: HnswSettings = { ...base.index };
  const removeKeys: number[] = [];
  for (let row = 0; row < build.keptBase.length; row += 1)
    if (build.keptBase[row] === 0) removeKeys.push(build.baseKeyOf(row));
  const removedSinceRebuild = (base.hnswKeys?.removedSinceRebuild ?? 0) + removeKeys.length;
  const sameSettings =
    settings.dtype === build.configured.dtype &&
    settings.metric === build.configured.metric &&
    base.embedding.dimensions === build.dimensions;
  if (
    build.count === 0 ||
    !sameSettings ||
    (build.target && !base.recall) ||
    removedSinceRebuild > (reuse.maxRemovedFraction ?? DEFAULT_MAX_REMOVED_FRACTION) * build.count
  )
    return undefined;
  updateHnswIndex(reuse.indexPath, build.indexPath, build.dimensions, settings, removeKeys, build.added);
  const hnswKeys = { keySpace: build.keySpace, removedSinceRebuild, baseVersion: base.version };
  if (!build.target || !base.recall) return { hnsw: settings, recall: undefined, hnswKeys };
  const recall = measureUpdatedHnswIndex(
    build.indexPath,
    readAllRows(build.vectorsPath, build.dimensions, build.count),
    build.dimensions,
    settings,
    keyToRowMap(build.rowKeys, build.keySpace, build.indexPath),
    base.recall,
    build.target.queries,
  );
  return recall.reached
    ? { hnsw: { ...settings, expansionSearch: recall.expansionSearch }, recall, hnswKeys }
    : undefined;
}

/** The usearch key of every row, from a snapshot's {@link HNSW_KEYS_FILE} (u32 little-endian). */
export async function readRowKeys(path: string, rows: number): Promise<Uint32Array> {
  const bytes = await readWholeFile(path);
  if (bytes.byteLength !== rows * 4)
    throw new SnapshotIntegrityError(
      `${path}: ${bytes.byteLength} bytes, expected ${rows * 4} (a u32 key per row)`,
    );
  const keys = new Uint32Array(rows);
  new Uint8Array(keys.buffer).set(bytes);
  return keys;
}

/**
 * The row of each key below `keySpace` (−1 for none), from the key of each row; throws
 * SnapshotIntegrityError on a key out of range or given to two rows.
 */
export function keyToRowMap(rowKeys: Uint32Array, keySpace: number, where: string): Int32Array {
  const rows = new Int32Array(keySpace).fill(-1);
  for (let row = 0; row < rowKeys.length; row += 1) {
    const key = rowKeys[row] as number;
    if (key >= keySpace)
      throw new SnapshotIntegrityError(`${where}: row ${row} has key ${key}, beyond ${keySpace}`);
    if (rows[key] !== -1)
      throw new SnapshotIntegrityError(`${where}: key ${key} belongs to rows ${rows[key]} and ${row}`);
    rows[key] = row;
  }
  return rows;
}

/** Every row of a float32 vectors file in one typed array, read block by block (any size). */
export function readAllRows(path: string, dimensions: number, count: number): Float32Array {
  const all = new Float32Array(count * dimensions);
  let offset = 0;
  for (const block of readRowBlocks(path, dimensions, BUILD_BLOCK_ROWS)) {
    all.set(block, offset);
    offset += block.length;
  }
  if (offset !== all.length)
    throw new SnapshotIntegrityError(`${path}: ${offset / dimensions} rows, expected ${count}`);
  return all;
}

/**
 * Rows of a float32 vectors file, `rows` at a time (the last block shorter), read with `pread`
 * into one reused buffer: never the whole file, whatever its size.
 */
export function* readRowBlocks(path: string, dimensions: number, rows: number): Generator<Float32Array> {
  const rowBytes = dimensions * 4;
  const buffer = new Float32Array(rows * dimensions);
  const bytes = new Uint8Array(buffer.buffer);
  const file = openSync(path, 'r');
  try {
    for (let position = 0; ; ) {
      let filled = 0;
      while (filled < bytes.length) {
        const read = readSync(file, bytes, filled, bytes.length - filled, position + filled);
        if (read === 0) break;
        filled += read;
      }
      if (filled % rowBytes !== 0)
        throw new SnapshotIntegrityError(`${path}: ${position + filled} bytes is not a whole number of rows`);
      if (filled === 0) return;
      yield buffer.subarray(0, filled / 4);
      position += filled;
      if (filled < bytes.length) return;
    }
  } finally {
    closeSync(file);
  }
}

/**
 * A snapshot's chunk records, parsed one at a time on first use. Parsing a million records up
 * front took seconds at every cold start and ~1.5 GB of heap; a query touches about a hundred.
 *
 * With an offsets file (format 3) only the offsets are read at open (8 bytes per record) and a
 * record is read with `pread` when first needed, so the 0.5 GB of records at 1M chunks is neither
 * read at cold start nor held in memory (it stays in the page cache). Without one (format 2) the
 * file is read whole and its newlines are scanned, which took 2.8 s at 1M chunks.
 *
 * Rows are sorted by document id then ordinal (see {@link writeSnapshot}), so a document's rows
 * are found by binary search, without an id map.
 */
/** An open file, closed by {@link descriptorCloser} once its owner is garbage-collected. */
interface HeldFile {
  descriptor: number | undefined;
}
const descriptorCloser = new FinalizationRegistry<HeldFile>((file) => {
  if (file.descriptor !== undefined) closeSync(file.descriptor);
});

/**
 * Parsed chunk records a snapshot keeps (most recently used): ~1.5 KB each, so ~75 MB at most.
 * Holding every record a filtered scan touched would grow to gigabytes at a million chunks.
 */
export const CHUNK_RECORD_CACHE_SIZE = 50_000;

export class ChunkRecords {
  /** Recently parsed records by row; a Map iterates in insertion order, so the first key is the oldest. */
  private readonly parsed = new Map<number, Chunk>();
  private readonly file: HeldFile = { descriptor: undefined };
  private scratch = Buffer.alloc(4_096);

  private constructor(
    private readonly path: string,
    /** The whole file (format 2), or undefined when records are read from the file on demand. */
    private readonly bytes: Buffer | undefined,
    /** Byte offset where each record starts; `starts[count]` is one past the last record's newline. */
    private readonly starts: Float64Array,
  ) {}

  /**
   * Open the records at `path`, using the offsets file at `offsetsPath` when there is one.
   * @throws SnapshotIntegrityError when the offsets do not describe the records file.
   */
  static async open(path: string, offsetsPath?: string): Promise<ChunkRecords> {
    if (!offsetsPath) return ChunkRecords.scan(path);
    const raw = await readWholeFile(offsetsPath);
    // A Float64Array view needs 8-byte alignment, which a small file's buffer may not have.
    const aligned = raw.byteOffset % 8 === 0 ? raw : Buffer.from(raw);
    if (aligned.byteLength % 8 !== 0 || aligned.byteLength === 0)
      throw new SnapshotIntegrityError(
        `${offsetsPath}: ${aligned.byteLength} bytes is not a list of offsets`,
      );
    // Little-endian, as written: every Lambda architecture (x86_64, arm64) is little-endian.
    const starts = new Float64Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 8);
    const size = (await stat(path)).size;
    let previous = -1;
    for (const start of starts) {
      if (!(start > previous)) throw new SnapshotIntegrityError(`${offsetsPath}: offsets are not increasing`);
      previous = start;
    }
    if (starts[0] !== 0 || previous !== size)
      throw new SnapshotIntegrityError(
        `${offsetsPath}: offsets span ${starts[0]}–${previous}, ${path} has ${size} bytes`,
      );
    const records = new ChunkRecords(path, undefined, starts);
    // A descriptor held until the records are collected, like usearch's memory map of the index.
    descriptorCloser.register(records, records.file);
    return records;
  }

  /** Format 2: read the whole file and find the records by their newlines. */
  private static async scan(path: string): Promise<ChunkRecords> {
    const bytes = await readFile(path);
    const starts: number[] = [0];
    for (let newline = bytes.indexOf(10); newline !== -1; newline = bytes.indexOf(10, newline + 1))
      starts.push(newline + 1);
    // A last record without its newline still counts.
    if ((starts.at(-1) as number) < bytes.length) starts.push(bytes.length + 1);
    return new ChunkRecords(path, bytes, Float64Array.from(starts));
  }

  get count(): number {
    return this.starts.length - 1;
  }

  /** Parsed records held (at most {@link CHUNK_RECORD_CACHE_SIZE}). */
  get cachedCount(): number {
    return this.parsed.size;
  }

  at(row: number): Chunk {
    const cached = this.parsed.get(row);
    if (cached) {
      // Move to the newest end.
      this.parsed.delete(row);
      this.parsed.set(row, cached);
      return cached;
    }
    if (!(row >= 0 && row < this.count)) throw new RangeError(`row ${row} is outside ${this.path}`);
    const text = this.recordText(row);
    let chunk: Chunk;
    try {
      chunk = JSON.parse(text) as Chunk;
    } catch (cause) {
      throw new SnapshotIntegrityError(`${this.path}: record ${row} is not valid JSON`, { cause });
    }
    this.parsed.set(row, chunk);
    if (this.parsed.size > CHUNK_RECORD_CACHE_SIZE)
      this.parsed.delete(this.parsed.keys().next().value as number);
    return chunk;
  }

  /** A record's JSON, without its newline. */
  private recordText(row: number): string {
    const start = this.starts[row] as number;
    const end = (this.starts[row + 1] as number) - 1;
    if (this.bytes) return this.bytes.toString('utf8', start, end);
    const length = end - start;
    if (length > this.scratch.length) this.scratch = Buffer.alloc(2 ** Math.ceil(Math.log2(length)));
    this.file.descriptor ??= openSync(this.path, 'r');
    const read = readSync(this.file.descriptor, this.scratch, 0, length, start);
    if (read !== length)
      throw new SnapshotIntegrityError(
        `${this.path}: record ${row} is truncated (${read} of ${length} bytes)`,
      );
    return this.scratch.toString('utf8', 0, length);
  }

  /** Rows of a document, in ordinal order (binary search over the sorted records). */
  rowsOf(docId: string): number[] {
    let low = 0;
    let high = this.count;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.at(middle).docId < docId) low = middle + 1;
      else high = middle;
    }
    const rows: number[] = [];
    for (let row = low; row < this.count && this.at(row).docId === docId; row += 1) rows.push(row);
    return rows;
  }

  rowOf(chunkId: string): number | undefined {
    const docId = documentIdOfChunk(chunkId);
    if (docId === undefined) return undefined;
    return this.rowsOf(docId).find((row) => this.at(row).chunkId === chunkId);
  }
}

export interface OpenSnapshotOptions {
  /** Refuse the snapshot unless it was built in this embedding space. */
  readonly expectedSpace?: EmbeddingSpace;
  /** Verify the sha256 of every file (default true; skip only for files just verified). */
  readonly verifyChecksums?: boolean;
  /** `view` (memory-map, default) or `load` the HNSW index. */
  readonly indexMode?: 'view' | 'load';
  /** Search-time candidate list size (HNSW ef); default the manifest's. Higher: better recall, slower. */
  readonly expansionSearch?: number;
}

/**
 * A snapshot directory opened for search. The HNSW index is memory-mapped; chunk records are read
 * and parsed when first used ({@link ChunkRecords}, a bounded cache); the float32 vectors are read
 * from `vectors.f32` in bounded pieces by exact search, i8 re-ranking and {@link vectorAt}.
 */
export class FileSnapshot implements SnapshotView {
  private rowBuffer: Float32Array | undefined;

  private constructor(
    readonly directory: string,
    readonly manifest: SnapshotManifest,
    private readonly records: ChunkRecords,
    private readonly index: HnswIndexFile,
    private readonly lexicalSegment: LexicalSegment,
    /** Read at open (format 4); built from the records on first use for older formats. */
    private metadata: MetadataIndex | undefined,
  ) {}

  /**
   * Open and verify a snapshot: manifest schema and format, embedding space, sha256 and size of
   * every file, usearch header against the manifest, chunk count. Any mismatch throws
   * {@link SnapshotIntegrityError} or EmbeddingSpaceMismatchError and nothing is served.
   */
  static async open(directory: string, options: OpenSnapshotOptions = {}): Promise<FileSnapshot> {
    const manifestPath = join(directory, MANIFEST_FILE);
    if (!existsSync(manifestPath))
      throw new SnapshotIntegrityError(`${directory}: no ${MANIFEST_FILE}; not a snapshot`);
    const manifest = parseSnapshotManifest(await readFile(manifestPath, 'utf8'), directory);
    if (options.expectedSpace)
      assertSameEmbeddingSpace(options.expectedSpace, manifest.embedding, `snapshot ${manifest.version}`);
    if (options.verifyChecksums ?? true) await verifySnapshotFiles(directory, manifest);
    const expectedVectorBytes = manifest.counts.chunks * manifest.embedding.dimensions * 4;
    if ((await stat(join(directory, SNAPSHOT_FILES.vectors))).size !== expectedVectorBytes) {
      throw new SnapshotIntegrityError(
        `${directory}: ${SNAPSHOT_FILES.vectors} is not ${expectedVectorBytes} bytes`,
      );
    }
    // The BM25 segment is read on libuv's thread pool while this thread reads the record offsets
    // and maps the index: at 1M chunks the segment read and view() take ~0.6 and ~0.45 s (mostly
    // first-touch page faults), and overlapping them took opening from 1.2 to ~0.8 s. (Reading the
    // offsets concurrently as well made it slower: the faults contend.)
    const lexicalPath = join(directory, SNAPSHOT_FILES.lexical);
    const lexicalBytes = readWholeFile(lexicalPath);
    lexicalBytes.catch(() => {}); // awaited below; a failure before then must not go unhandled
    const records = await ChunkRecords.open(
      join(directory, SNAPSHOT_FILES.chunks),
      manifest.files[SNAPSHOT_FILES.chunkOffsets] ? join(directory, SNAPSHOT_FILES.chunkOffsets) : undefined,
    );
    if (records.count !== manifest.counts.chunks) {
      throw new SnapshotIntegrityError(
        `${directory}: ${records.count} chunk records, manifest says ${manifest.counts.chunks}`,
      );
    }
    const index = HnswIndexFile.open(
      join(directory, SNAPSHOT_FILES.vectorIndex),
      {
        dimensions: manifest.embedding.dimensions,
        dtype: manifest.index.dtype,
        count: manifest.counts.chunks,
        metric: manifest.index.metric,
      },
      { ...manifest.index, ...(options.expansionSearch ? { expansionSearch: options.expansionSearch } : {}) },
      options.indexMode ?? 'view',
      manifest.hnswKeys
        ? keyToRowMap(
            await readRowKeys(join(directory, HNSW_KEYS_FILE), manifest.counts.chunks),
            manifest.hnswKeys.keySpace,
            directory,
          )
        : undefined,
    );
    let lexicalSegment: LexicalSegment;
    try {
      lexicalSegment = LexicalSegment.fromBytes(await lexicalBytes);
    } catch (cause) {
      throw new SnapshotIntegrityError(`${lexicalPath}: ${(cause as Error).message}`, { cause });
    }
    if (lexicalSegment.rowCount !== records.count)
      throw new SnapshotIntegrityError(
        `${lexicalPath}: ${lexicalSegment.rowCount} rows, snapshot has ${records.count} chunks`,
      );
    let metadata: MetadataIndex | undefined;
    if (manifest.files[SNAPSHOT_FILES.metadataIndex]) {
      const metadataPath = join(directory, SNAPSHOT_FILES.metadataIndex);
      try {
        metadata = MetadataIndex.fromBytes(await readWholeFile(metadataPath));
      } catch (cause) {
        throw new SnapshotIntegrityError(`${metadataPath}: ${(cause as Error).message}`, { cause });
      }
      if (metadata.rowCount !== records.count)
        throw new SnapshotIntegrityError(
          `${metadataPath}: ${metadata.rowCount} rows, snapshot has ${records.count} chunks`,
        );
    }
    return new FileSnapshot(directory, manifest, records, index, lexicalSegment, metadata);
  }

  /**
   * Rows whose metadata matches `filter`, from the metadata index (no chunk record is read). A
   * snapshot older than format 4 builds the index from its records on the first call.
   */
  rowsMatching(filter: MetadataFilter): RowBitset {
    this.metadata ??= MetadataIndex.build(
      Array.from({ length: this.records.count }, (_, row) => this.records.at(row).metadata),
    );
    return rowsMatching(filter, this.metadata);
  }

  get chunkCount(): number {
    return this.records.count;
  }

  chunkAt(row: number): Chunk {
    return this.records.at(row);
  }

  /** Parsed chunk records held in memory (bounded by {@link CHUNK_RECORD_CACHE_SIZE}). */
  get cachedChunkRecords(): number {
    return this.records.cachedCount;
  }

  rowOfChunk(chunkId: string): number | undefined {
    return this.records.rowOf(chunkId);
  }

  rowsOfDocument(docId: string): readonly number[] {
    return this.records.rowsOf(docId);
  }

  /**
   * HNSW top-k. An i8 index ranks near neighbours coarsely (recall@10 ~0.92 on use-lite vectors),
   * so its answer is over-fetched ({@link I8_RESCORE_FACTOR}×) and re-ranked by the exact float32
   * vectors, read row by row from `vectors.f32` (page cache) rather than held in memory, which
   * would undo i8's memory saving.
   */
  searchApproximate(query: Float32Array, k: number): ScoredRow[] {
    if (this.manifest.index.dtype !== 'i8') return this.index.search(query, k);
    const candidates = this.index.search(query, Math.min(k * I8_RESCORE_FACTOR, this.chunkCount));
    const dimensions = this.manifest.embedding.dimensions;
    const row = this.rowBuffer ?? new Float32Array(dimensions);
    this.rowBuffer = row;
    const bytes = new Uint8Array(row.buffer);
    // Opened per search, not held: a swapped-out snapshot's directory is deleted, and a held
    // descriptor would keep its gigabytes on disk.
    const file = openSync(join(this.directory, SNAPSHOT_FILES.vectors), 'r');
    try {
      const rescored = candidates.map((candidate) => {
        readSync(file, bytes, 0, bytes.length, candidate.row * bytes.length);
        return { row: candidate.row, similarity: dot(query, row) };
      });
      return rescored.sort((a, b) => b.similarity - a.similarity || a.row - b.row).slice(0, k);
    } finally {
      closeSync(file);
    }
  }

  /**
   * Exact top-k over every row, or over `rows` (filtered search). Vectors are read from
   * `vectors.f32` in blocks of {@link EXACT_BLOCK_ROWS} rows (selected rows gathered with `pread`,
   * consecutive ones in one read), never the whole file: at 1M × 512 it is 2 GiB, past Node's
   * largest buffer and a large share of a query function's memory. The page cache keeps it warm.
   */
  searchExact(query: Float32Array, k: number, rows?: Iterable<number>): ScoredRow[] {
    const { dimensions } = this.manifest.embedding;
    const heap = new TopK(k);
    const path = join(this.directory, SNAPSHOT_FILES.vectors);
    if (rows === undefined) {
      let first = 0;
      for (const block of readRowBlocks(path, dimensions, EXACT_BLOCK_ROWS)) {
        offerRows(heap, block, dimensions, query, first);
        first += block.length / dimensions;
      }
      return heap.sorted();
    }
    const wanted = Float64Array.from(rows).sort();
    const rowBytes = dimensions * 4;
    const buffer = new Float32Array(Math.min(wanted.length, EXACT_BLOCK_ROWS) * dimensions);
    const bytes = new Uint8Array(buffer.buffer);
    const file = openSync(path, 'r');
    try {
      for (let start = 0; start < wanted.length; start += EXACT_BLOCK_ROWS) {
        const group = wanted.subarray(start, start + EXACT_BLOCK_ROWS);
        // Runs of consecutive rows are read with one pread each.
        for (let i = 0; i < group.length; ) {
          let end = i + 1;
          while (end < group.length && group[end] === (group[end - 1] as number) + 1) end += 1;
          const first = group[i] as number;
          if (!(first >= 0 && (group[end - 1] as number) < this.chunkCount))
            throw new RangeError(`row ${first} is outside the snapshot's ${this.chunkCount} rows`);
          readFully(file, bytes, i * rowBytes, (end - i) * rowBytes, first * rowBytes, path);
          i = end;
        }
        // Offered in ascending row order, as a whole-matrix scan would (same tie order).
        for (let i = 0; i < group.length; i += 1)
          offerRows(heap, buffer, dimensions, query, (group[i] as number) - i, [i]);
      }
    } finally {
      closeSync(file);
    }
    return heap.sorted();
  }

  /** The stored float32 vector of a row (read from `vectors.f32`; a fresh array). */
  vectorAt(row: number): Float32Array {
    const { dimensions } = this.manifest.embedding;
    if (!(row >= 0 && row < this.chunkCount))
      throw new RangeError(`row ${row} is outside the snapshot's ${this.chunkCount} rows`);
    const vector = new Float32Array(dimensions);
    const path = join(this.directory, SNAPSHOT_FILES.vectors);
    const file = openSync(path, 'r');
    try {
      readFully(file, new Uint8Array(vector.buffer), 0, dimensions * 4, row * dimensions * 4, path);
    } finally {
      closeSync(file);
    }
    return vector;
  }

  /** A fresh lexical index over the snapshot's BM25 segment (read at open, shared: it is immutable). */
  loadLexicalIndex(): LexicalIndex {
    return LexicalIndex.over(
      this.lexicalSegment,
      {
        chunkIdOf: (row) => this.chunkAt(row).chunkId,
        rowOf: (chunkId) => this.rowOfChunk(chunkId),
      },
      this.manifest.lexical?.unit ?? 'chunk',
    );
  }
}

/** Rows per block of an exact search read from `vectors.f32` (16 MiB at 512 dimensions). */
export const EXACT_BLOCK_ROWS = 8_192;

/** `pread` exactly `length` bytes at `position` into `target` at `offset`, or throw. */
function readFully(
  file: number,
  target: Uint8Array,
  offset: number,
  length: number,
  position: number,
  path: string,
): void {
  for (let done = 0; done < length; ) {
    const read = readSync(file, target, offset + done, length - done, position + done);
    if (read === 0)
      throw new SnapshotIntegrityError(`${path} ended at ${position + done} bytes while being read`);
    done += read;
  }
}

/**
 * Read a whole file in one thread-pool request where the OS allows. `fs.readFile` reads 512 KiB at
 * a time, and each next read waits for the event loop, so it makes no progress while this thread
 * is busy (usearch's `view()` of a 1M-chunk index blocks it for ~0.5 s).
 */
async function readWholeFile(path: string): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    const buffer = Buffer.allocUnsafe(size);
    for (let offset = 0; offset < size; ) {
      const { bytesRead } = await handle.read(buffer, offset, size - offset, offset);
      if (bytesRead === 0) throw new Error(`${path} ended at ${offset} of ${size} bytes while being read`);
      offset += bytesRead;
    }
    return buffer;
  } finally {
    await handle.close();
  }
}

/** Check every file the manifest lists against its size and sha256. */
export async function verifySnapshotFiles(directory: string, manifest: SnapshotManifest): Promise<void> {
  for (const [name, expected] of Object.entries(manifest.files)) {
    const path = join(directory, name);
    if (!existsSync(path)) throw new SnapshotIntegrityError(`${directory}: ${name} is missing`);
    const actual = await fileDigest(path);
    if (actual.bytes !== expected.bytes || actual.sha256 !== expected.sha256) {
      throw new SnapshotIntegrityError(
        `${directory}: checksum mismatch for ${name} (expected ${expected.bytes} bytes sha256 ${expected.sha256.slice(0, 12)}…, found ${actual.bytes} bytes ${actual.sha256.slice(0, 12)}…)`,
      );
    }
  }
}
