import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  FileSnapshot,
  readRowKeys,
  writeSortedSnapshot,
} from '../../functions/adapters/index/snapshot-files.js';
import type { EmbeddedChunk } from '../../functions/core/delta.js';
import type { EmbeddingSpace } from '../../functions/core/embedding-space.js';
import {
  HNSW_KEYS_FILE,
  MANIFEST_FILE,
  SNAPSHOT_FILES,
  type SnapshotManifest,
} from '../../functions/core/snapshot-manifest.js';
import { clusteredVector } from '../support/synthetic-documents.js';

const DIMENSIONS = 64;
const SPACE: EmbeddingSpace = {
  modelId: 'synthetic',
  dimensions: DIMENSIONS,
  pooling: 'mean',
  normalized: true,
};
const parent = mkdtempSync(join(tmpdir(), 'bisearch-graph-reuse-'));
afterAll(() => rmSync(parent, { recursive: true, force: true }));

const chunkOf = (docId: string, seed: number): EmbeddedChunk => ({
  chunkId: `${docId}#0`,
  docId,
  ordinal: 0,
  text: `text ${docId}`,
  metadata: {},
  contentHash: `${docId}:${seed}`,
  vector: clusteredVector(seed, DIMENSIONS, 100),
});
const id = (prefix: string, n: number) => `${prefix}${String(n).padStart(5, '0')}`;

/** Stream `rows` as the incremental build does: base chunks by identity, so their base row is known. */
function tagged(rows: EmbeddedChunk[], base: readonly EmbeddedChunk[]) {
  const rowOf = new WeakMap<EmbeddedChunk, number>();
  base.forEach((chunk, row) => {
    rowOf.set(chunk, row);
  });
  return { chunks: rows, baseRowOf: (chunk: EmbeddedChunk) => rowOf.get(chunk) };
}

/** Rebuild from the keyed version `base` with `next` as its rows, its graph reused (`manifest` as given). */
async function rebuildFrom(
  base: { directory: string; rows: EmbeddedChunk[] },
  next: EmbeddedChunk[],
  name: string,
  change: { manifest?: (manifest: SnapshotManifest) => SnapshotManifest; maxRemovedFraction?: number } = {},
) {
  const manifest = JSON.parse(readFileSync(join(base.directory, MANIFEST_FILE), 'utf8')) as SnapshotManifest;
  const { chunks, baseRowOf } = tagged(next, base.rows);
  return writeSortedSnapshot(join(parent, name), {
    chunks,
    space: SPACE,
    reuseGraph: {
      indexPath: join(base.directory, SNAPSHOT_FILES.vectorIndex),
      manifest: change.manifest ? change.manifest(manifest) : manifest,
      rowKeys: await readRowKeys(join(base.directory, HNSW_KEYS_FILE), base.rows.length),
      baseRowOf,
      ...(change.maxRemovedFraction !== undefined ? { maxRemovedFraction: change.maxRemovedFraction } : {}),
    },
  });
}

async function open(directory: string) {
  const snapshot = await FileSnapshot.open(directory);
  const vectors = Array.from({ length: snapshot.chunkCount }, (_, row) => snapshot.vectorAt(row));
  return { snapshot, vectors };
}

describe('incremental build: the previous version’s HNSW graph updated, not rebuilt', () => {
  let base: { directory: string; rows: EmbeddedChunk[] };

  it('keeps unchanged rows’ keys, removes the gone, adds the new; the version serves every row and no removed one', async () => {
    const rows = Array.from({ length: 3_000 }, (_, n) => chunkOf(id('d', n), n));
    const built = await writeSortedSnapshot(join(parent, 'v1'), { chunks: rows, space: SPACE });
    base = { directory: built.directory, rows };
    // 100 removed (d00000–d00099), 100 changed (d00100–d00199), 100 added (e…).
    const next = [
      ...rows.slice(100, 200).map((chunk, n) => chunkOf(chunk.docId, 50_000 + n)),
      ...rows.slice(200),
      ...Array.from({ length: 100 }, (_, n) => chunkOf(id('e', n), 60_000 + n)),
    ];
    const { chunks, baseRowOf } = tagged(next, rows);
    const { directory, manifest } = await writeSortedSnapshot(join(parent, 'v2'), {
      chunks,
      space: SPACE,
      reuseGraph: {
        indexPath: join(built.directory, SNAPSHOT_FILES.vectorIndex),
        manifest: built.manifest,
        rowKeys: undefined,
        baseRowOf,
      },
    });
    expect(manifest).toMatchObject({
      formatVersion: 5,
      counts: { chunks: 3_000 },
      hnswKeys: { keySpace: 3_200, removedSinceRebuild: 200, baseVersion: built.manifest.version },
      index: {
        expansionSearch: built.manifest.index.expansionSearch,
        connectivity: built.manifest.index.connectivity,
      },
      recall: { reached: true, target: 0.98 },
    });
    const keys = await readRowKeys(join(directory, HNSW_KEYS_FILE), 3_000);
    // Row 0 is the changed d00100 (a new key); row 100 is d00200, row 200 of the base, key 200.
    expect(keys[0]).toBeGreaterThanOrEqual(3_000);
    expect(keys[100]).toBe(200);
    const { snapshot, vectors } = await open(directory);
    let found = 0;
    vectors.forEach((vector, row) => {
      const [best] = snapshot.searchApproximate(vector, 1);
      if (best?.row === row) found += 1;
    });
    expect(found / vectors.length).toBeGreaterThanOrEqual(0.99);
    // A removed document's old vector finds only current rows.
    for (const gone of rows.slice(0, 100)) {
      for (const hit of snapshot.searchApproximate(gone.vector, 10))
        expect(snapshot.chunkAt(hit.row).docId).not.toMatch(/^d000[0-9][0-9]$/);
    }
    // Everything but the graph is what a fresh build of the same rows writes.
    const fresh = await writeSortedSnapshot(join(parent, 'fresh'), { chunks: next, space: SPACE });
    for (const file of [SNAPSHOT_FILES.chunks, SNAPSHOT_FILES.vectors, SNAPSHOT_FILES.lexical])
      expect(manifest.files[file]?.sha256).toBe(fresh.manifest.files[file]?.sha256);
    expect(fresh.manifest.hnswKeys).toBeUndefined();
    expect(fresh.manifest.formatVersion).toBe(4);
    base = { directory, rows: next };
  });

  it('an updated graph below the target at the previous ef widens the search before it would rebuild', async () => {
    // As if the previous version had been tuned to a much narrower search than this corpus needs.
    const widened = await rebuildFrom(base, base.rows.slice(10), 'v2b', {
      manifest: (manifest) => ({ ...manifest, index: { ...manifest.index, expansionSearch: 2 } }),
    });
    expect(widened.manifest.hnswKeys).toMatchObject({ removedSinceRebuild: 210 });
    expect(widened.manifest.index.expansionSearch).toBeGreaterThan(2);
    expect(widened.manifest.recall?.trials[0]).toMatchObject({ expansionSearch: 2 });
    expect(widened.manifest.recall?.reached).toBe(true);
    expect(widened.manifest.recall?.expansionSearch).toBe(widened.manifest.index.expansionSearch);
  });

  it('past the removed share it builds a fresh graph (format 4, keys are rows again)', async () => {
    const rebuilt = await rebuildFrom(base, base.rows.slice(50), 'v3', { maxRemovedFraction: 0.05 });
    // 200 removed before + 50 now = 250 > 5% of 2,950.
    expect(rebuilt.manifest.hnswKeys).toBeUndefined();
    expect(rebuilt.manifest.formatVersion).toBe(4);
    await expect(FileSnapshot.open(rebuilt.directory)).resolves.toBeDefined();
  });

  it('a keys file that gives one key to two rows is refused at open', async () => {
    const keysPath = join(base.directory, HNSW_KEYS_FILE);
    const keys = await readRowKeys(keysPath, base.rows.length);
    keys[1] = keys[0] as number;
    writeFileSync(keysPath, new Uint8Array(keys.buffer));
    await expect(FileSnapshot.open(base.directory, { verifyChecksums: false })).rejects.toThrow(
      /key \d+ belongs to rows 0 and 1/,
    );
  });
});
