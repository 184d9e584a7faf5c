import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileSnapshot, writeSnapshot } from '../../functions/adapters/index/snapshot-files.js';
import {
  HnswIndexFile,
  quantizedForInt8,
  readHnswHeader,
} from '../../functions/adapters/index/usearch-index.js';
import type { EmbeddedChunk } from '../../functions/core/delta.js';
import type { EmbeddingSpace } from '../../functions/core/embedding-space.js';
import { EmbeddingSpaceMismatchError, SnapshotIntegrityError } from '../../functions/core/errors.js';
import { LexicalSegment } from '../../functions/core/lexical.js';
import {
  MANIFEST_FILE,
  SNAPSHOT_FILES,
  SNAPSHOT_FORMAT_VERSION,
  type VectorDtype,
} from '../../functions/core/snapshot-manifest.js';
import { normalizeInPlace } from '../../functions/core/vectors.js';

const DIMENSIONS = 24;
const SPACE: EmbeddingSpace = {
  modelId: 'test-space',
  dimensions: DIMENSIONS,
  pooling: 'mean',
  normalized: true,
};

/** Deterministic unit vectors (a linear congruential generator), clustered so neighbours are meaningful. */
function syntheticChunks(count: number): EmbeddedChunk[] {
  let state = 42;
  const random = () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31 - 0.5;
  };
  return Array.from({ length: count }, (_, i) => {
    const vector = normalizeInPlace(
      Float32Array.from({ length: DIMENSIONS }, (_, d) => random() + (d === i % DIMENSIONS ? 1.5 : 0)),
    );
    const docId = `doc-${Math.floor(i / 2)}`;
    return {
      chunkId: `${docId}#${i % 2}`,
      docId,
      ordinal: i % 2,
      text: `chunk ${i} text`,
      metadata: { group: i % 3 },
      contentHash: `h${i}`,
      vector,
    };
  });
}

describe('snapshot files', () => {
  let parent: string;
  const chunks = syntheticChunks(400);
  beforeAll(() => {
    parent = mkdtempSync(join(tmpdir(), 'bisearch-snapshot-'));
  });
  afterAll(() => rmSync(parent, { recursive: true, force: true }));

  it.each<VectorDtype>(['f32', 'f16', 'i8'])(
    'writes an immutable %s snapshot whose HNSW agrees with exact search',
    async (dtype) => {
      const { directory, manifest } = await writeSnapshot(parent, {
        chunks,
        space: SPACE,
        watermark: 7,
        hnsw: { dtype },
      });
      expect(manifest).toMatchObject({
        formatVersion: SNAPSHOT_FORMAT_VERSION,
        watermark: 7,
        embedding: SPACE,
        counts: { chunks: 400, documents: 200 },
      });
      // Unit-length f32/f16 rows are searched by inner product; i8 rows are rescaled one by one.
      const metric = dtype === 'i8' ? 'cos' : 'ip';
      expect(manifest.index).toEqual({
        metric,
        dtype,
        connectivity: 16,
        expansionAdd: 128,
        // Chosen for the recall target at build time (recall-tuning.test.ts).
        expansionSearch: manifest.recall?.expansionSearch,
      });
      expect(Object.keys(manifest.files).sort()).toEqual(Object.values(SNAPSHOT_FILES).sort());
      expect(readHnswHeader(join(directory, SNAPSHOT_FILES.vectorIndex))).toMatchObject({
        metric,
        dtype,
        count: 400,
        dimensions: DIMENSIONS,
      });

      const snapshot = await FileSnapshot.open(directory, { expectedSpace: SPACE });
      expect(snapshot.chunkCount).toBe(400);
      expect(snapshot.rowsOfDocument('doc-3').map((row) => snapshot.chunkAt(row).chunkId)).toEqual([
        'doc-3#0',
        'doc-3#1',
      ]);
      let overlap = 0;
      for (let i = 0; i < 50; i += 1) {
        const query = (chunks[i] as EmbeddedChunk).vector;
        const exact = snapshot.searchExact(query, 10).map((hit) => hit.row);
        const approximate = snapshot.searchApproximate(query, 10).map((hit) => hit.row);
        overlap += approximate.filter((row) => exact.includes(row)).length / 10;
        expect(snapshot.chunkAt(exact[0] as number).chunkId).toBe(chunks[i]?.chunkId);
      }
      // i8 answers are re-ranked with the float32 vectors, so they reach f16's recall.
      expect(overlap / 50).toBeGreaterThanOrEqual(0.97);
      // Every chunk is reachable: a small index is built on one thread, because usearch's parallel
      // insert leaves ~0.1% of rows unreachable (SINGLE_THREADED_BUILD_BELOW).
      const unreachable = chunks.filter(
        (chunk) =>
          !snapshot
            .searchApproximate(chunk.vector, 10)
            .some((hit) => snapshot.chunkAt(hit.row).chunkId === chunk.chunkId),
      );
      expect(unreachable.map((chunk) => chunk.chunkId)).toEqual([]);
      if (dtype === 'i8') {
        const query = (chunks[5] as EmbeddedChunk).vector;
        const [best] = snapshot.searchApproximate(query, 1);
        expect(best?.similarity).toBeCloseTo(snapshot.searchExact(query, 1)[0]?.similarity as number, 6);
      }
      // Records are parsed on demand and found by binary search over the sorted rows.
      for (const chunk of chunks.slice(0, 40))
        expect(snapshot.chunkAt(snapshot.rowOfChunk(chunk.chunkId) as number).chunkId).toBe(chunk.chunkId);
      expect(snapshot.rowOfChunk('doc-3#7')).toBeUndefined();
      expect(snapshot.rowOfChunk('no-separator')).toBeUndefined();
      expect(snapshot.rowsOfDocument('doc-1999')).toEqual([]);
      expect(snapshot.rowsOfDocument('doc-0')).toEqual([0, 1]);
      const restoredVector = snapshot.vectorAt(snapshot.rowOfChunk('doc-0#1') as number);
      expect(Array.from(restoredVector)).toEqual(Array.from((chunks[1] as EmbeddedChunk).vector));
      // BM25 indexes whole documents by default: the hit names the document's first chunk.
      expect(snapshot.manifest.lexical?.unit).toBe('document');
      expect(snapshot.loadLexicalIndex().search('chunk 17', 1)[0]?.chunkId).toBe(`${chunks[17]?.docId}#0`);
    },
  );

  it('quantises i8 rows by their largest component (usearch would divide by the norm and truncate)', () => {
    const quantized = quantizedForInt8(Float32Array.from([0.05, -0.1, 0.02, 0.6, -0.3, 0.1]), 3);
    expect(Array.from(quantized)).toEqual([64, -127, 25, 127, -63, 21]);
  });

  it('answers the same with inner product as with cosine, and keeps cosine where inner product would be wrong', async () => {
    const inner = await FileSnapshot.open((await writeSnapshot(parent, { chunks, space: SPACE })).directory);
    // A snapshot written before `ip` existed (or asked for `cos`) still opens and agrees.
    const cosine = await FileSnapshot.open(
      (await writeSnapshot(parent, { chunks, space: SPACE, hnsw: { metric: 'cos' } })).directory,
    );
    expect([inner.manifest.index.metric, cosine.manifest.index.metric]).toEqual(['ip', 'cos']);
    let agreement = 0;
    for (let i = 0; i < 50; i += 1) {
      const query = (chunks[i] as EmbeddedChunk).vector;
      const [a, b] = [inner.searchApproximate(query, 10), cosine.searchApproximate(query, 10)];
      // HNSW is approximate and its multi-threaded build varies, so the chunk itself is asked to
      // be among the ten, not first.
      expect(a.map((hit) => inner.chunkAt(hit.row).chunkId)).toContain(chunks[i]?.chunkId);
      for (const hit of a) {
        const same = b.find((other) => other.row === hit.row);
        if (!same) continue;
        agreement += 1 / 10;
        // Both are cosine similarity, up to f16 rounding.
        expect(hit.similarity).toBeCloseTo(same.similarity, 3);
      }
    }
    expect(agreement / 50).toBeGreaterThanOrEqual(0.97);

    const unnormalized = await writeSnapshot(parent, {
      chunks: chunks.slice(0, 20),
      space: { ...SPACE, normalized: false },
      hnsw: { dtype: 'f16' },
    });
    expect(unnormalized.manifest.index.metric).toBe('cos');
    const longRows = chunks
      .slice(0, 20)
      .map((chunk) => ({ ...chunk, vector: chunk.vector.map((x) => x * 2) }));
    await expect(
      writeSnapshot(parent, { chunks: longRows, space: SPACE, hnsw: { metric: 'ip' } }),
    ).rejects.toThrow(/metric 'ip' needs unit-length rows; row 0 has length 2\.0000/);
    await expect(
      writeSnapshot(parent, {
        chunks: chunks.slice(0, 20),
        space: SPACE,
        hnsw: { dtype: 'i8', metric: 'ip' },
      }),
    ).rejects.toThrow(/metric 'ip' needs f32 or f16 rows/);
  });

  it('gives every build its own version id, even for identical content built at the same instant', async () => {
    const builtAt = new Date('2026-11-23T18:00:00.123Z');
    const first = await writeSnapshot(parent, { chunks: chunks.slice(0, 10), space: SPACE, builtAt });
    const second = await writeSnapshot(parent, { chunks: chunks.slice(0, 10), space: SPACE, builtAt });
    expect(first.manifest.version).not.toBe(second.manifest.version);
    expect(first.manifest.version).toMatch(/^20261123T180000123Z-[0-9a-f]{8}$/);
    // Same content (the HNSW graph itself varies: construction is multi-threaded).
    for (const file of [SNAPSHOT_FILES.vectors, SNAPSHOT_FILES.chunks, SNAPSHOT_FILES.lexical]) {
      expect(first.manifest.files[file]).toEqual(second.manifest.files[file]);
    }
  });

  it('builds and opens an empty snapshot', async () => {
    const { directory } = await writeSnapshot(parent, { chunks: [], space: SPACE });
    const snapshot = await FileSnapshot.open(directory);
    expect(snapshot.chunkCount).toBe(0);
    expect(snapshot.searchApproximate(new Float32Array(DIMENSIONS), 5)).toEqual([]);
  });

  describe('refuses to serve a snapshot that is not what its manifest says', () => {
    let good: string;
    beforeAll(async () => {
      good = (
        await writeSnapshot(parent, { chunks: chunks.slice(0, 60), space: SPACE, hnsw: { dtype: 'f32' } })
      ).directory;
    });
    const copy = () => {
      const target = mkdtempSync(join(parent, 'copy-'));
      cpSync(good, target, { recursive: true });
      return target;
    };

    it.each(Object.values(SNAPSHOT_FILES))('flipped bytes in %s fail the checksum', async (file) => {
      const directory = copy();
      const bytes = readFileSync(join(directory, file));
      bytes[Math.floor(bytes.length / 2)] = (bytes[Math.floor(bytes.length / 2)] ?? 0) ^ 0xff;
      writeFileSync(join(directory, file), bytes);
      await expect(FileSnapshot.open(directory)).rejects.toThrow(
        new RegExp(`checksum mismatch for ${file.replace('.', '\\.')}`),
      );
    });

    it('a missing file, a bad manifest or an unknown format version are refused', async () => {
      const missing = copy();
      rmSync(join(missing, SNAPSHOT_FILES.lexical));
      await expect(FileSnapshot.open(missing)).rejects.toThrow(/lexical\.bm25 is missing/);
      const garbled = copy();
      writeFileSync(join(garbled, MANIFEST_FILE), '{');
      await expect(FileSnapshot.open(garbled)).rejects.toBeInstanceOf(SnapshotIntegrityError);
      const future = copy();
      const manifest = JSON.parse(readFileSync(join(future, MANIFEST_FILE), 'utf8'));
      writeFileSync(join(future, MANIFEST_FILE), JSON.stringify({ ...manifest, formatVersion: 99 }));
      await expect(FileSnapshot.open(future)).rejects.toThrow(/format 99 is not supported/);
    });

    it('chunk offsets that do not describe the records file are refused', async () => {
      const directory = copy();
      const path = join(directory, SNAPSHOT_FILES.chunkOffsets);
      const offsets = new Float64Array(new Uint8Array(readFileSync(path)).buffer);
      // Checksums are skipped here (as for files just verified), so the offsets check is what refuses.
      const reopen = () => FileSnapshot.open(directory, { verifyChecksums: false });
      const write = (values: Float64Array) =>
        writeFileSync(path, new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
      write(offsets.map((offset, i) => (i === offsets.length - 1 ? offset + 5 : offset)));
      await expect(reopen()).rejects.toThrow(/offsets span 0–\d+, .*chunks\.jsonl has \d+ bytes/);
      write(offsets.map((offset, i) => (i === 3 ? (offsets[1] as number) : offset)));
      await expect(reopen()).rejects.toThrow(/offsets are not increasing/);
      writeFileSync(path, Buffer.alloc(12));
      await expect(reopen()).rejects.toThrow(/12 bytes is not a list of offsets/);
      // Fewer offsets than records: the last offset is not the end of the file.
      write(offsets.subarray(0, 30));
      await expect(reopen()).rejects.toThrow(/offsets span/);
    });

    it('a BM25 segment that is not one, or not of these rows, is refused at open', async () => {
      const directory = copy();
      const path = join(directory, SNAPSHOT_FILES.lexical);
      writeFileSync(path, 'not a segment');
      await expect(FileSnapshot.open(directory, { verifyChecksums: false })).rejects.toThrow(
        /lexical\.bm25: not a bisearch BM25 segment/,
      );
      writeFileSync(path, LexicalSegment.build(['one row only']).toBytes());
      await expect(FileSnapshot.open(directory, { verifyChecksums: false })).rejects.toThrow(
        /lexical\.bm25: 1 rows, snapshot has 60 chunks/,
      );
    });

    it('a format 2 snapshot (before chunk offsets and inner product) still opens and answers', async () => {
      const { directory: written } = await writeSnapshot(parent, {
        chunks: chunks.slice(0, 60),
        space: SPACE,
        hnsw: { dtype: 'f32', metric: 'cos' },
      });
      const manifest = JSON.parse(readFileSync(join(written, MANIFEST_FILE), 'utf8'));
      delete manifest.files[SNAPSHOT_FILES.chunkOffsets];
      rmSync(join(written, SNAPSHOT_FILES.chunkOffsets));
      writeFileSync(join(written, MANIFEST_FILE), JSON.stringify({ ...manifest, formatVersion: 2 }));
      const older = await FileSnapshot.open(written, { expectedSpace: SPACE });
      const current = await FileSnapshot.open(good);
      for (const chunk of chunks.slice(0, 60)) {
        const row = older.rowOfChunk(chunk.chunkId) as number;
        expect(older.chunkAt(row)).toEqual(current.chunkAt(current.rowOfChunk(chunk.chunkId) as number));
        expect(older.searchApproximate(chunk.vector, 10).map((hit) => hit.row)).toContain(row);
      }
      // A format 3 manifest must list the offsets.
      writeFileSync(join(written, MANIFEST_FILE), JSON.stringify({ ...manifest, formatVersion: 3 }));
      await expect(FileSnapshot.open(written)).rejects.toThrow(/lists no checksum for chunks\.offsets/);
    });

    it('a format 3 snapshot (no metadata index) answers filters from its records, the same rows', async () => {
      const { directory: written } = await writeSnapshot(parent, {
        chunks: chunks.slice(0, 60),
        space: SPACE,
      });
      const current = await FileSnapshot.open(written);
      const manifest = JSON.parse(readFileSync(join(written, MANIFEST_FILE), 'utf8'));
      delete manifest.files[SNAPSHOT_FILES.metadataIndex];
      rmSync(join(written, SNAPSHOT_FILES.metadataIndex));
      writeFileSync(join(written, MANIFEST_FILE), JSON.stringify({ ...manifest, formatVersion: 3 }));
      const older = await FileSnapshot.open(written);
      const keys = Object.keys(chunks[0]?.metadata ?? {});
      expect(keys.length).toBeGreaterThan(0);
      for (const key of keys) {
        const filter = { [key]: { exists: true } };
        expect([...older.rowsMatching(filter).rows()]).toEqual([...current.rowsMatching(filter).rows()]);
        expect(current.rowsMatching(filter).count()).toBeGreaterThan(0);
      }
      // A format 4 manifest must list the metadata index.
      writeFileSync(join(written, MANIFEST_FILE), JSON.stringify({ ...manifest, formatVersion: 4 }));
      await expect(FileSnapshot.open(written)).rejects.toThrow(/lists no checksum for metadata\.index/);
    });

    it('another model or dimension count is refused before any file is read', async () => {
      await expect(
        FileSnapshot.open(good, { expectedSpace: { ...SPACE, modelId: 'other' } }),
      ).rejects.toBeInstanceOf(EmbeddingSpaceMismatchError);
      await expect(FileSnapshot.open(good, { expectedSpace: { ...SPACE, dimensions: 384 } })).rejects.toThrow(
        /dimensions: expected 384, found 24/,
      );
    });

    it('a usearch file whose header disagrees with the manifest is refused even with matching checksums', async () => {
      const path = join(good, SNAPSHOT_FILES.vectorIndex);
      expect(() =>
        HnswIndexFile.open(
          path,
          { dimensions: 32, dtype: 'f32', count: 60, metric: 'ip' },
          { connectivity: 16, expansionAdd: 128, expansionSearch: 64 },
        ),
      ).toThrow(/dimensions 24, expected 32/);
      expect(() =>
        HnswIndexFile.open(
          path,
          { dimensions: 24, dtype: 'i8', count: 60, metric: 'ip' },
          { connectivity: 16, expansionAdd: 128, expansionSearch: 64 },
        ),
      ).toThrow(/dtype f32, expected i8/);
      expect(() =>
        HnswIndexFile.open(
          path,
          { dimensions: 24, dtype: 'f32', count: 60, metric: 'cos' },
          { connectivity: 16, expansionAdd: 128, expansionSearch: 64 },
        ),
      ).toThrow(/metric ip, expected cos/);
    });
  });
});
