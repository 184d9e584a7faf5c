/**
 * What recall tuning adds to a build: writes one snapshot of synthetic clustered unit vectors with
 * the default recall target and prints the snapshot write time, the tuning's share of it (the
 * manifest's `recall.seconds`), the ef chosen with every ef tried, and how long Validate's
 * held-out measurement takes on the written version. Fresh points of the same distribution (not
 * rows, not tuning queries) are searched too, as an independent check of the held-out figure.
 *
 *   npx tsx test/bench/probes/recall-tuning-cost.ts --rows 100000 --dimensions 512
 *
 * Prints JSON lines. Not part of `npm run bench`: one run takes minutes at 100k rows.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { measureServingRecall } from '../../../functions/adapters/index/recall-tuning.js';
import { FileSnapshot, writeSnapshot } from '../../../functions/adapters/index/snapshot-files.js';
import { DEFAULT_RECALL_TARGET } from '../../../functions/core/snapshot-validation.js';
import { clusteredVectors } from '../../support/clustered-vectors.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string', default: '100000' },
      dimensions: { type: 'string', default: '512' },
      clusters: { type: 'string', default: '50' },
      spread: { type: 'string', default: '1' },
    },
  });
  const rows = Number(values.rows);
  const dimensions = Number(values.dimensions);
  const corpus = clusteredVectors({
    dimensions,
    clusters: Number(values.clusters),
    spread: Number(values.spread),
    seed: 11,
  });
  const chunks = corpus.points(rows).map((vector, i) => {
    const docId = `doc-${String(i).padStart(8, '0')}`;
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
  const parent = mkdtempSync(join(tmpdir(), 'bisearch-recall-cost-'));
  try {
    const started = performance.now();
    const { directory, manifest } = await writeSnapshot(parent, {
      chunks,
      space: { modelId: 'clustered', dimensions, pooling: 'mean', normalized: true },
    });
    const recall = manifest.recall;
    console.log(
      JSON.stringify({
        rows,
        dimensions,
        writeSnapshotSeconds: Math.round(performance.now() - started) / 1000,
        tuningSeconds: recall?.seconds,
        expansionSearch: recall?.expansionSearch,
        connectivity: recall?.connectivity,
        reached: recall?.reached,
        heldOut: recall?.heldOut,
        trials: recall?.trials.map(
          (trial) => `M${trial.connectivity} ef${trial.expansionSearch}: ${trial.recall.toFixed(4)}`,
        ),
      }),
    );
    const snapshot = await FileSnapshot.open(directory, { verifyChecksums: false });
    const bytes = readFileSync(join(directory, 'vectors.f32'));
    const vectors = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4).slice();
    const validateStarted = performance.now();
    const measured = measureServingRecall(
      (query, k) => snapshot.searchApproximate(query, k),
      vectors,
      dimensions,
      manifest.index.metric,
      { ...DEFAULT_RECALL_TARGET, seed: DEFAULT_RECALL_TARGET.seed + 1 },
    );
    console.log(
      JSON.stringify({ validateSeconds: Math.round(performance.now() - validateStarted) / 1000, measured }),
    );
    let total = 0;
    const fresh = corpus.points(300);
    for (const query of fresh) {
      const exact = new Set(snapshot.searchExact(query, 10).map((hit) => hit.row));
      total += snapshot.searchApproximate(query, 10).filter((hit) => exact.has(hit.row)).length / 10;
    }
    console.log(JSON.stringify({ freshPointsRecall: total / fresh.length }));
  } finally {
    rmSync(parent, { recursive: true, force: true });
  }
}

void main();
