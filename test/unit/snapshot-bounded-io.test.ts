/**
 * Builds and searches at any size: the snapshot writer streams its chunks (none held after its
 * row is written, the HNSW index built from the vectors file in blocks), and exact search, vector
 * reads and the record cache stay bounded — no whole-file reads, no 2 GiB limit.
 */
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CHUNK_RECORD_CACHE_SIZE,
  ChunkRecords,
  EXACT_BLOCK_ROWS,
  FileSnapshot,
  readRowBlocks,
  writeSnapshot,
  writeSortedSnapshot,
} from '../../functions/adapters/index/snapshot-files.js';
import type { EmbeddedChunk } from '../../functions/core/delta.js';
import type { EmbeddingSpace } from '../../functions/core/embedding-space.js';
import { SNAPSHOT_FILES } from '../../functions/core/snapshot-manifest.js';
import { exactTopK, normalizeInPlace } from '../../functions/core/vectors.js';

const DIMENSIONS = 8;
const SPACE: EmbeddingSpace = {
  modelId: 'bounded-io',
  dimensions: DIMENSIONS,
  pooling: 'mean',
  normalized: true,
};
const SEED = Number(process.env.FC_SEED ?? 20_261_203);

function chunksOf(count: number, seed = 7): EmbeddedChunk[] {
  let state = seed;
  const random = () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31 - 0.5;
  };
  return Array.from({ length: count }, (_, i) => {
    const docId = `doc-${String(Math.floor(i / 3)).padStart(6, '0')}`;
    return {
      chunkId: `${docId}#${i % 3}`,
      docId,
      ordinal: i % 3,
      text: `chunk ${i} about ${i % 2 ? 'herons' : 'lynxes'}`,
      metadata: {},
      contentHash: `h${i}`,
      // Coarse components: ties between rows exist, so the tie order is tested too.
      vector: normalizeInPlace(Float32Array.from({ length: DIMENSIONS }, () => Math.round(random() * 4))),
    };
  });
}

let parent: string;
beforeAll(() => {
  parent = mkdtempSync(join(tmpdir(), 'bisearch-bounded-'));
});
afterAll(() => rmSync(parent, { recursive: true, force: true }));

describe('streaming snapshot build', () => {
  it('a snapshot streamed from an async source has the same files as one built from an array', async () => {
    const chunks = chunksOf(3_000);
    const fromArray = await writeSnapshot(join(parent, 'array'), {
      chunks: [...chunks].reverse(),
      space: SPACE,
    });
    const progress: number[] = [];
    async function* stream() {
      for (const chunk of chunks) yield chunk;
    }
    const streamed = await writeSortedSnapshot(join(parent, 'stream'), {
      chunks: stream(),
      space: SPACE,
      onProgress: (count) => progress.push(count),
    });
    for (const name of [
      SNAPSHOT_FILES.vectors,
      SNAPSHOT_FILES.chunks,
      SNAPSHOT_FILES.chunkOffsets,
      SNAPSHOT_FILES.lexical,
    ])
      expect(streamed.manifest.files[name]?.sha256, name).toBe(fromArray.manifest.files[name]?.sha256);
    expect(streamed.manifest.counts).toEqual({ chunks: 3_000, documents: 1_000 });
    expect(progress).toEqual([]); // under 10,000 chunks: no progress lines
    const snapshot = await FileSnapshot.open(streamed.directory, { expectedSpace: SPACE });
    const query = chunks[1_234]?.vector as Float32Array;
    expect(snapshot.searchApproximate(query, 1)[0]?.similarity).toBeCloseTo(1, 2); // f16 index
  });

  it('refuses chunks out of row order (a streamed build cannot sort)', async () => {
    const chunks = chunksOf(10);
    await expect(
      writeSortedSnapshot(join(parent, 'unsorted'), {
        chunks: [chunks[1], chunks[0]] as EmbeddedChunk[],
        space: SPACE,
      }),
    ).rejects.toThrow(/not in row order/);
  });
});

describe('bounded reads of a snapshot', () => {
  const chunks = chunksOf(2 * EXACT_BLOCK_ROWS + 1_001);
  let snapshot: FileSnapshot;
  let matrix: Float32Array;
  beforeAll(async () => {
    const { directory } = await writeSnapshot(join(parent, 'exact'), { chunks, space: SPACE });
    snapshot = await FileSnapshot.open(directory, { expectedSpace: SPACE });
    const bytes = readFileSync(join(directory, SNAPSHOT_FILES.vectors));
    matrix = new Float32Array(new Uint8Array(bytes).buffer);
  });

  it('exact search read in blocks ranks exactly as a scan of the whole matrix, with any row subset (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: chunks.length - 1 }),
        fc.integer({ min: 1, max: 40 }),
        fc.option(
          fc.uniqueArray(fc.integer({ min: 0, max: chunks.length - 1 }), { minLength: 1, maxLength: 3_000 }),
        ),
        (queryRow, k, rows) => {
          const query = chunks[queryRow]?.vector as Float32Array;
          const reference = exactTopK(
            matrix,
            DIMENSIONS,
            query,
            k,
            rows ? [...rows].sort((a, b) => a - b) : undefined,
          );
          expect(snapshot.searchExact(query, k, rows ?? undefined)).toEqual(reference);
        },
      ),
      { seed: SEED, numRuns: 60 },
    );
  });

  it('vectorAt reads one row, anywhere, and refuses rows outside the snapshot', () => {
    const last = snapshot.chunkCount - 1;
    expect(Array.from(snapshot.vectorAt(last))).toEqual(Array.from(matrix.subarray(last * DIMENSIONS)));
    expect(() => snapshot.vectorAt(snapshot.chunkCount)).toThrow(RangeError);
    expect(() => snapshot.searchExact(matrix.subarray(0, DIMENSIONS), 1, [snapshot.chunkCount])).toThrow(
      RangeError,
    );
  });

  it(`keeps at most ${CHUNK_RECORD_CACHE_SIZE.toLocaleString('en')} parsed chunk records however many are read`, async () => {
    // Records and offsets as the snapshot writer lays them out (one JSON line each, float64 starts).
    const count = CHUNK_RECORD_CACHE_SIZE + 5_000;
    const lines = Array.from(
      { length: count },
      (_, row) => `${JSON.stringify({ chunkId: `d#${row}`, docId: 'd', ordinal: row })}\n`,
    );
    const starts = new Float64Array(count + 1);
    for (let row = 0; row < count; row += 1)
      starts[row + 1] = (starts[row] as number) + Buffer.byteLength(lines[row] as string);
    writeFileSync(join(parent, 'records.jsonl'), lines.join(''));
    writeFileSync(join(parent, 'records.offsets'), new Uint8Array(starts.buffer));
    const records = await ChunkRecords.open(join(parent, 'records.jsonl'), join(parent, 'records.offsets'));
    for (let row = 0; row < count; row += 1) records.at(row);
    expect(records.cachedCount).toBe(CHUNK_RECORD_CACHE_SIZE);
    // An evicted record is read again, the same.
    expect(records.at(0)).toMatchObject({ chunkId: 'd#0' });
    expect(snapshot.cachedChunkRecords).toBeLessThanOrEqual(CHUNK_RECORD_CACHE_SIZE);
  });

  it('reads a vectors file larger than 2 GiB block by block (sparse file; Node cannot hold it in one buffer)', async () => {
    const path = join(parent, 'huge.f32');
    const rowBytes = 512 * 4;
    const rows = Math.ceil((2 ** 31 + rowBytes) / rowBytes);
    // Writing only the last row makes a sparse file: 2 GiB of holes read as zeros.
    const fd = openSync(path, 'w');
    const marker = new Float32Array(512).fill(0.5);
    writeSync(fd, new Uint8Array(marker.buffer), 0, rowBytes, (rows - 1) * rowBytes);
    closeSync(fd);
    let seen = 0;
    let lastValue = 0;
    for (const block of readRowBlocks(path, 512, 65_536)) {
      seen += block.length / 512;
      lastValue = block[block.length - 1] as number;
    }
    expect(seen).toBe(rows);
    expect(lastValue).toBe(0.5);
    rmSync(path);
  }, 60_000);
});
