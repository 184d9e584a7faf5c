import { createHash, randomBytes, randomUUID } from 'node:crypto';
import {
  closeSync,
  createReadStream,
  createWriteStream,
  existsSync,
  openSync,
  readFileSync,
  readSync,
} from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { finished } from 'node:stream/promises';
import type { Chunk } from '../core/chunking.js';
import { embeddingInput } from '../core/chunking.js';
import type { EmbeddedChunk } from '../core/delta.js';
import { assertSameEmbeddingSpace, type EmbeddingSpace } from '../core/embedding-space.js';
import { SnapshotIntegrityError } from '../core/errors.js';
import { LexicalIndex, LexicalSegment } from '../core/lexical.js';
import type { SnapshotView } from '../core/search-engine.js';
import {
  MANIFEST_FILE,
  parseSnapshotManifest,
  SNAPSHOT_FILES,
  SNAPSHOT_FORMAT_VERSION,
  type SnapshotManifest,
  snapshotVersionId,
} from '../core/snapshot-manifest.js';
import { dot, exactTopK, type ScoredRow } from '../core/vectors.js';
import { DEFAULT_HNSW, HnswIndexFile, type HnswSettings, writeHnswIndex } from './usearch-index.js';

export interface WriteSnapshotInput {
  /** Chunks with their vectors; stored sorted by document id and ordinal (row = usearch key). */
  readonly chunks: readonly EmbeddedChunk[];
  readonly space: EmbeddingSpace;
  /** Highest change-log sequence the chunks include. Default 0. */
  readonly watermark?: number;
  readonly hnsw?: Partial<HnswSettings>;
  /** Build time recorded in the manifest and the version id. Default now. */
  readonly builtAt?: Date;
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
 * Write an immutable snapshot directory `<parent>/<version>/` (usearch index, vectors, chunks,
 * lexical index, manifest with the sha256 of every file). Files are written into a temporary
 * directory and renamed into place, so a crash never leaves a half-written version behind.
 */
export async function writeSnapshot(
  parent: string,
  input: WriteSnapshotInput,
): Promise<{ directory: string; manifest: SnapshotManifest }> {
  const hnsw: HnswSettings = { ...DEFAULT_HNSW, ...input.hnsw };
  const { dimensions } = input.space;
  const chunks = [...input.chunks].sort((a, b) =>
    a.docId < b.docId ? -1 : a.docId > b.docId ? 1 : a.ordinal - b.ordinal,
  );
  const vectors = new Float32Array(chunks.length * dimensions);
  chunks.forEach((chunk, row) => {
    if (chunk.vector.length !== dimensions) {
      throw new RangeError(
        `chunk ${chunk.chunkId} has ${chunk.vector.length} dimensions, the space has ${dimensions}`,
      );
    }
    vectors.set(chunk.vector, row * dimensions);
  });

  await mkdir(parent, { recursive: true });
  const staging = join(parent, `.staging-${randomUUID()}`);
  await mkdir(staging);
  try {
    writeHnswIndex(join(staging, SNAPSHOT_FILES.vectorIndex), vectors, dimensions, hnsw);
    await writeFile(
      join(staging, SNAPSHOT_FILES.vectors),
      new Uint8Array(vectors.buffer, vectors.byteOffset, vectors.byteLength),
    );
    await writeChunkRecords(join(staging, SNAPSHOT_FILES.chunks), chunks);
    await writeFile(
      join(staging, SNAPSHOT_FILES.lexical),
      LexicalSegment.build(chunks.map((chunk) => embeddingInput(chunk))).toBytes(),
    );

    const files: SnapshotManifest['files'] = {};
    for (const name of Object.values(SNAPSHOT_FILES)) files[name] = await fileDigest(join(staging, name));
    const builtAt = input.builtAt ?? new Date();

    const manifest: SnapshotManifest = {
      formatVersion: SNAPSHOT_FORMAT_VERSION,
      version: snapshotVersionId(builtAt, randomBytes(4).toString('hex')),
      builtAt: builtAt.toISOString(),
      watermark: input.watermark ?? 0,
      embedding: {
        modelId: input.space.modelId,
        dimensions,
        pooling: input.space.pooling,
        normalized: input.space.normalized,
      },
      index: { metric: 'cos', ...hnsw },
      counts: { chunks: chunks.length, documents: new Set(chunks.map((chunk) => chunk.docId)).size },
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
 * Write one JSON record per line, streamed: a million chunks make a file larger than the longest
 * string V8 can hold (~512 MB), so the records are never joined into one string.
 */
async function writeChunkRecords(path: string, chunks: readonly EmbeddedChunk[]): Promise<void> {
  const out = createWriteStream(path);
  const pending: string[] = [];
  const flush = async () => {
    if (!out.write(pending.join('')))
      await new Promise<void>((resolve) => out.once('drain', () => resolve()));
    pending.length = 0;
  };
  for (const { vector: _vector, ...chunk } of chunks) {
    pending.push(`${JSON.stringify(chunk)}\n`);
    if (pending.length === 1_000) await flush();
  }
  await flush();
  out.end();
  await finished(out);
}

/** Parse a chunk-record file line by line (see {@link writeChunkRecords} for why not in one string). */
async function readChunkRecords(path: string): Promise<Chunk[]> {
  const chunks: Chunk[] = [];
  const lines = createInterface({
    input: createReadStream(path, { highWaterMark: 1 << 20 }),
    crlfDelay: Infinity,
  });
  for await (const line of lines) if (line) chunks.push(JSON.parse(line) as Chunk);
  return chunks;
}

/** Candidates fetched per requested result from an i8 index before exact re-ranking. */
export const I8_RESCORE_FACTOR = 3;

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
 * A snapshot directory opened for search. The HNSW index is memory-mapped; chunk records are held
 * in memory for hydration and filters; the float32 vectors are read on the first exact search.
 */
export class FileSnapshot implements SnapshotView {
  private readonly rowByChunkId = new Map<string, number>();
  private readonly rowsByDocId = new Map<string, number[]>();
  private exactVectors: Float32Array | undefined;
  private lexicalSegment: LexicalSegment | undefined;
  private rowBuffer: Float32Array | undefined;

  private constructor(
    readonly directory: string,
    readonly manifest: SnapshotManifest,
    private readonly chunks: Chunk[],
    private readonly index: HnswIndexFile,
  ) {
    chunks.forEach((chunk, row) => {
      this.rowByChunkId.set(chunk.chunkId, row);
      const rows = this.rowsByDocId.get(chunk.docId);
      if (rows) rows.push(row);
      else this.rowsByDocId.set(chunk.docId, [row]);
    });
  }

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
    const chunks = await readChunkRecords(join(directory, SNAPSHOT_FILES.chunks));
    if (chunks.length !== manifest.counts.chunks) {
      throw new SnapshotIntegrityError(
        `${directory}: ${chunks.length} chunk records, manifest says ${manifest.counts.chunks}`,
      );
    }
    const expectedVectorBytes = manifest.counts.chunks * manifest.embedding.dimensions * 4;
    if ((await stat(join(directory, SNAPSHOT_FILES.vectors))).size !== expectedVectorBytes) {
      throw new SnapshotIntegrityError(
        `${directory}: ${SNAPSHOT_FILES.vectors} is not ${expectedVectorBytes} bytes`,
      );
    }
    const index = HnswIndexFile.open(
      join(directory, SNAPSHOT_FILES.vectorIndex),
      {
        dimensions: manifest.embedding.dimensions,
        dtype: manifest.index.dtype,
        count: manifest.counts.chunks,
      },
      { ...manifest.index, ...(options.expansionSearch ? { expansionSearch: options.expansionSearch } : {}) },
      options.indexMode ?? 'view',
    );
    return new FileSnapshot(directory, manifest, chunks, index);
  }

  get chunkCount(): number {
    return this.chunks.length;
  }

  chunkAt(row: number): Chunk {
    const chunk = this.chunks[row];
    if (!chunk) throw new RangeError(`row ${row} is outside snapshot ${this.manifest.version}`);
    return chunk;
  }

  rowOfChunk(chunkId: string): number | undefined {
    return this.rowByChunkId.get(chunkId);
  }

  rowsOfDocument(docId: string): readonly number[] {
    return this.rowsByDocId.get(docId) ?? [];
  }

  /**
   * HNSW top-k. An i8 index ranks near neighbours coarsely (recall@10 ~0.92 on use-lite vectors),
   * so its answer is over-fetched ({@link I8_RESCORE_FACTOR}×) and re-ranked by the exact float32
   * vectors, read row by row from `vectors.f32` (page cache) rather than held in memory, which
   * would undo i8's memory saving.
   */
  searchApproximate(query: Float32Array, k: number): ScoredRow[] {
    if (this.manifest.index.dtype !== 'i8') return this.index.search(query, k);
    const candidates = this.index.search(query, Math.min(k * I8_RESCORE_FACTOR, this.chunks.length));
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

  searchExact(query: Float32Array, k: number, rows?: Iterable<number>): ScoredRow[] {
    return exactTopK(this.vectors(), this.manifest.embedding.dimensions, query, k, rows);
  }

  /** The stored float32 vector of a row. */
  vectorAt(row: number): Float32Array {
    const { dimensions } = this.manifest.embedding;
    return this.vectors().subarray(row * dimensions, (row + 1) * dimensions);
  }

  /** A fresh lexical index over the snapshot's BM25 segment (read once, then shared: it is immutable). */
  loadLexicalIndex(): LexicalIndex {
    if (!this.lexicalSegment) {
      const path = join(this.directory, SNAPSHOT_FILES.lexical);
      try {
        this.lexicalSegment = LexicalSegment.fromBytes(readFileSync(path));
      } catch (cause) {
        throw new SnapshotIntegrityError(`${path}: ${(cause as Error).message}`, { cause });
      }
      if (this.lexicalSegment.rowCount !== this.chunks.length)
        throw new SnapshotIntegrityError(
          `${path}: ${this.lexicalSegment.rowCount} rows, snapshot has ${this.chunks.length} chunks`,
        );
    }
    return LexicalIndex.over(this.lexicalSegment, {
      chunkIdOf: (row) => this.chunkAt(row).chunkId,
      rowOf: (chunkId) => this.rowByChunkId.get(chunkId),
    });
  }

  private vectors(): Float32Array {
    if (!this.exactVectors) {
      const bytes = readFileSync(join(this.directory, SNAPSHOT_FILES.vectors));
      // A Float32Array view needs 4-byte alignment; small files can come from Node's shared pool.
      const aligned = bytes.byteOffset % 4 === 0 ? bytes : Buffer.from(bytes);
      this.exactVectors = new Float32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4);
    }
    return this.exactVectors;
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
