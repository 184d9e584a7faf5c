import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exactNeighbours } from '../../functions/adapters/index/recall-tuning.js';
import { FileSnapshot, writeSnapshot } from '../../functions/adapters/index/snapshot-files.js';
import type { EmbeddedChunk } from '../../functions/core/delta.js';
import type { EmbeddingSpace } from '../../functions/core/embedding-space.js';
import {
  MANIFEST_FILE,
  parseSnapshotManifest,
  type SnapshotManifest,
} from '../../functions/core/snapshot-manifest.js';
import {
  chooseExpansionSearch,
  recallEstimate,
  recallVerdict,
} from '../../functions/core/snapshot-validation.js';
import { annRecallLine } from '../../infra/local/status-lines.js';
import { clusteredVectors } from '../support/clustered-vectors.js';

/**
 * A corpus on which HNSW at the previous fixed ef (128) misses the 0.98 target: 10k unit vectors in
 * 256 dimensions around 5 centres with wide spread (measured: recall@10 ~0.84 at ef 128 on fresh
 * points, ~0.995 at ef 768). Real text embeddings have lower intrinsic dimension; this is the
 * "another corpus" case of issue 14 made reproducible and small.
 */
const DIMENSIONS = 256;
const ROWS = 10_000;
const SPACE: EmbeddingSpace = {
  modelId: 'clustered',
  dimensions: DIMENSIONS,
  pooling: 'mean',
  normalized: true,
};
const corpus = clusteredVectors({ dimensions: DIMENSIONS, clusters: 5, spread: 4, seed: 7 });
const chunks: EmbeddedChunk[] = corpus.points(ROWS).map((vector, i) => {
  const docId = `doc-${String(i).padStart(5, '0')}`;
  return {
    chunkId: `${docId}#0`,
    docId,
    ordinal: 0,
    text: `chunk ${i}`,
    metadata: {},
    contentHash: `h${i}`,
    vector,
  };
});
/** Fresh points of the same distribution: not rows of the index, and not the queries Build tuned with. */
const heldOutQueries = corpus.points(400);

/** ANN recall@10 of an opened snapshot on the held-out queries, against its exact search. */
function heldOutRecall(snapshot: FileSnapshot): number {
  let total = 0;
  for (const query of heldOutQueries) {
    const exact = new Set(snapshot.searchExact(query, 10).map((hit) => hit.row));
    total += snapshot.searchApproximate(query, 10).filter((hit) => exact.has(hit.row)).length / 10;
  }
  return total / heldOutQueries.length;
}

describe('recall is a guarantee: Build chooses the search ef for a recall target', () => {
  let parent: string;
  let directory: string;
  let manifest: SnapshotManifest;
  beforeAll(async () => {
    parent = mkdtempSync(join(tmpdir(), 'bisearch-recall-'));
    ({ directory, manifest } = await writeSnapshot(parent, { chunks, space: SPACE }));
  }, 120_000);
  afterAll(() => rmSync(parent, { recursive: true, force: true }));

  it('on a clustered corpus where ef 128 misses 0.98, the tuned ef reaches it on held-out queries', async () => {
    const recall = manifest.recall;
    expect(recall).toMatchObject({ target: 0.98, k: 10, reached: true, connectivity: 16 });
    // The chosen ef is what the manifest tells a query instance to open with.
    expect(manifest.index.expansionSearch).toBe(recall?.expansionSearch);
    expect(recall?.expansionSearch).toBeGreaterThan(128);
    expect(recall?.heldOut.recall).toBeGreaterThanOrEqual(0.98);
    expect(recall?.trials.map((trial) => trial.expansionSearch).slice(0, 3)).toEqual([64, 128, 256]);

    const previousDefault = await FileSnapshot.open(directory, {
      expansionSearch: 128,
      verifyChecksums: false,
    });
    expect(heldOutRecall(previousDefault)).toBeLessThan(0.98);
    // Opened as the query Lambda opens it: no override, so the manifest's ef applies.
    const served = await FileSnapshot.open(directory, { verifyChecksums: false });
    expect(heldOutRecall(served)).toBeGreaterThanOrEqual(0.98);
  });

  it('the manifest round-trips, and one written before tuning opens with its own ef (the previous default)', async () => {
    const text = readFileSync(join(directory, MANIFEST_FILE), 'utf8');
    expect(parseSnapshotManifest(text, directory)).toEqual(manifest);
    const { recall: _recall, ...older } = manifest;
    writeFileSync(
      join(directory, MANIFEST_FILE),
      JSON.stringify({ ...older, index: { ...older.index, expansionSearch: 128 } }),
    );
    try {
      const opened = await FileSnapshot.open(directory, { verifyChecksums: false });
      expect(opened.manifest.recall).toBeUndefined();
      expect(opened.manifest.index.expansionSearch).toBe(128);
      const explicit128 = await FileSnapshot.open(directory, {
        expansionSearch: 128,
        verifyChecksums: false,
      });
      const tuned = await FileSnapshot.open(directory, {
        expansionSearch: manifest.index.expansionSearch,
        verifyChecksums: false,
      });
      const answers = (snapshot: FileSnapshot) =>
        heldOutQueries
          .slice(0, 50)
          .map((query) => snapshot.searchApproximate(query, 10).map((hit) => hit.row));
      expect(answers(opened)).toEqual(answers(explicit128));
      expect(answers(opened)).not.toEqual(answers(tuned));
      expect(
        annRecallLine({
          version: opened.manifest.version,
          vectors: ROWS,
          builtAt: null,
          deltaSize: 0,
          expansionSearch: 128,
          recall: null,
        }),
      ).toBe('ef 128 (version built before recall tuning: not measured)');
    } finally {
      writeFileSync(join(directory, MANIFEST_FILE), text);
    }
  });

  it('when the ef cap is not enough, Build doubles connectivity and reaches the target', async () => {
    const { directory: raisedDirectory, manifest: raised } = await writeSnapshot(parent, {
      chunks,
      space: SPACE,
      recall: { maxExpansionSearch: 256, maxConnectivity: 32 },
    });
    const recall = raised.recall;
    if (!recall) throw new Error('no recall section');
    expect(recall).toMatchObject({ reached: true, connectivity: 32 });
    expect(raised.index).toMatchObject({ connectivity: 32, expansionSearch: recall.expansionSearch });
    expect(recall.trials.filter((trial) => trial.connectivity === 16).at(-1)?.expansionSearch).toBe(256);
    expect(recallVerdict({ measured: recall.heldOut, minimum: 0.95, tuning: recall })).toEqual({ ok: true });
    const served = await FileSnapshot.open(raisedDirectory, { verifyChecksums: false });
    expect(heldOutRecall(served)).toBeGreaterThanOrEqual(0.98);
  }, 120_000);

  it('when neither ef nor connectivity may grow enough, the manifest says so and validation refuses with the reason', async () => {
    const { manifest: missed } = await writeSnapshot(parent, {
      chunks,
      space: SPACE,
      recall: { maxExpansionSearch: 128, maxConnectivity: 16 },
    });
    const recall = missed.recall;
    expect(recall).toMatchObject({ reached: false, expansionSearch: 128, connectivity: 16 });
    if (!recall) throw new Error('no recall section');
    const verdict = recallVerdict({ measured: recall.heldOut, minimum: 0.5, tuning: recall });
    expect(verdict).toEqual({
      ok: false,
      reason: expect.stringMatching(/target 0\.98 not reached at the largest ef 128 with connectivity 16/),
    });
    expect(
      annRecallLine({
        version: missed.version,
        vectors: ROWS,
        builtAt: null,
        deltaSize: 0,
        expansionSearch: 128,
        recall: { target: 0.98, k: 10, measured: recall.heldOut.recall, reached: false, connectivity: 16 },
      }),
    ).toMatch(
      /^0\.\d{4} recall@10 on held-out queries, target 0\.98 NOT reached \(ef 128, connectivity 16\)$/,
    );
  }, 120_000);
});

describe('exact reference', () => {
  it('a view with a byte offset is searched as its own rows (usearch exactSearch reads its buffer from the start)', () => {
    const rows = corpus.points(300);
    const padded = new Float32Array((rows.length + 7) * DIMENSIONS);
    rows.forEach((row, i) => {
      padded.set(row, (i + 7) * DIMENSIONS);
    });
    const view = padded.subarray(7 * DIMENSIONS);
    const copy = view.slice();
    const queries = new Float32Array(heldOutQueries.slice(0, 20).flatMap((query) => Array.from(query)));
    const fromView = exactNeighbours(view, DIMENSIONS, queries, 10, 'ip');
    expect(fromView).toEqual(exactNeighbours(copy, DIMENSIONS, queries, 10, 'ip'));
    // And it is the exact top 10 by inner product.
    const first = heldOutQueries[0] as Float32Array;
    const byDot = rows
      .map((row, index) => ({
        index,
        score: row.reduce((sum, value, d) => sum + value * (first[d] as number), 0),
      }))
      .sort((a, b) => b.score - a.score)
      .slice(0, 10)
      .map((hit) => hit.index);
    expect(fromView[0]).toEqual(byDot);
  });
});

describe('choosing ef and judging a measured recall', () => {
  const exactly = (recall: number) => ({ recall, standardError: 0, queries: 100 });

  it('finds the smallest passing ef on a ~1.5× grid, doubling then trying the midpoint', () => {
    const curve = (ef: number) => exactly(1 - 8 / ef); // 0.875 at 64, 0.9375 at 128, 0.979 at 384, 0.984 at 512
    expect(
      chooseExpansionSearch(curve, 0.98, { minExpansionSearch: 64, maxExpansionSearch: 1024 }),
    ).toMatchObject({
      expansionSearch: 512,
      reached: true,
    });
    expect(
      chooseExpansionSearch(curve, 0.97, { minExpansionSearch: 64, maxExpansionSearch: 1024 })
        .expansionSearch,
    ).toBe(384);
    expect(
      chooseExpansionSearch(curve, 0.5, { minExpansionSearch: 64, maxExpansionSearch: 1024 }),
    ).toMatchObject({
      expansionSearch: 64,
      trials: [{ expansionSearch: 64 }],
    });
    expect(
      chooseExpansionSearch(curve, 0.999, { minExpansionSearch: 64, maxExpansionSearch: 1000 }),
    ).toMatchObject({
      expansionSearch: 1000,
      reached: false,
    });
  });

  it('an estimate must clear the target by two standard errors to be chosen', () => {
    const noisy = () => ({ recall: 0.985, standardError: 0.004, queries: 500 });
    expect(
      chooseExpansionSearch(noisy, 0.98, { minExpansionSearch: 64, maxExpansionSearch: 128 }).reached,
    ).toBe(false);
    const estimate = recallEstimate([1, 1, 0.9, 1]);
    expect(estimate.recall).toBeCloseTo(0.975, 12);
    expect(estimate.standardError).toBeCloseTo(0.025, 12);
  });

  it('validation refuses clearly low recall and a missed target, and lets sampling noise pass', () => {
    const tuning = {
      target: 0.98,
      reached: true,
      expansionSearch: 256,
      connectivity: 16,
      maxExpansionSearch: 1024,
      maxConnectivity: 32,
    };
    expect(
      recallVerdict({
        measured: { recall: 0.978, standardError: 0.002, queries: 500 },
        minimum: 0.95,
        tuning,
      }),
    ).toEqual({ ok: true });
    expect(
      recallVerdict({
        measured: { recall: 0.97, standardError: 0.002, queries: 500 },
        minimum: 0.95,
        tuning,
      }),
    ).toMatchObject({
      ok: false,
      reason: expect.stringMatching(
        /0\.9700 ± 0\.0020 on 500 held-out queries is below the target 0\.98 at ef 256/,
      ),
    });
    // Without a target (tuning off or an older build) only the floor applies.
    expect(recallVerdict({ measured: exactly(0.96), minimum: 0.95 })).toEqual({ ok: true });
    expect(recallVerdict({ measured: exactly(0.9), minimum: 0.95 })).toMatchObject({ ok: false });
  });
});
