import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileSnapshot, writeSnapshot } from '../../functions/adapters/index/snapshot-files.js';
import type { EmbeddedChunk } from '../../functions/core/delta.js';
import type { EmbeddingSpace, TextEmbedder } from '../../functions/core/embedding-space.js';
import type { MetadataFilter } from '../../functions/core/filters.js';
import { exactFilterLimit, SearchEngine } from '../../functions/core/search-engine.js';
import { clusteredVector } from '../support/synthetic-documents.js';

const CHUNKS = 20_000;
const DIMENSIONS = 64;
const QUERIES = 40;
const SELECTIVITIES = [0.001, 0.01, 0.1, 0.5];
const SPACE: EmbeddingSpace = {
  modelId: 'synthetic',
  dimensions: DIMENSIONS,
  pooling: 'mean',
  normalized: true,
};

/** A deterministic uniform draw per row, so selectivity s selects the rows with u < s. */
const draw = (row: number) => (Math.imul(row + 1, 2_654_435_761) >>> 0) / 4_294_967_296;

/** Query vectors by text (`q<n>`): nothing is embedded in this test. */
class QueryVectors implements TextEmbedder {
  readonly space = SPACE;
  readonly maxContentTokens = 512;
  readonly vectors = Array.from({ length: QUERIES }, (_, n) => clusteredVector(5_000_000 + n, DIMENSIONS));
  countTokens(text: string) {
    return text.length;
  }
  async embedQuery(text: string) {
    return this.vectors[Number(text.slice(1))] as Float32Array;
  }
  async embedDocuments(): Promise<Float32Array[]> {
    throw new Error('not used');
  }
}

describe(`filtered dense recall@10 equals exact filtered search (${CHUNKS} chunks, real snapshot and usearch)`, () => {
  let parent: string;
  let snapshot: FileSnapshot;
  const embedder = new QueryVectors();

  beforeAll(async () => {
    parent = mkdtempSync(join(tmpdir(), 'bisearch-filtered-recall-'));
    const chunks = Array.from({ length: CHUNKS }, (_, row): EmbeddedChunk => {
      const docId = `c${String(row).padStart(6, '0')}`;
      const u = draw(row);
      return {
        chunkId: `${docId}#0`,
        docId,
        ordinal: 0,
        text: `chunk ${row}`,
        metadata: {
          u,
          day: new Date(Math.floor(u * 100_000) * 86_400_000).toISOString().slice(0, 10),
          ...Object.fromEntries(SELECTIVITIES.map((s) => [`in_${s}`, u < s])),
        },
        contentHash: String(row),
        vector: clusteredVector(row, DIMENSIONS),
      };
    });
    const { directory } = await writeSnapshot(parent, { chunks, space: SPACE });
    snapshot = await FileSnapshot.open(directory);
  }, 120_000);
  afterAll(() => rmSync(parent, { recursive: true, force: true }));

  /** Mean recall@10 of the engine's dense answers against brute force over the rows with u < s. */
  async function recallAt10(engine: SearchEngine, filter: MetadataFilter, selectivity: number) {
    const matching = Array.from({ length: CHUNKS }, (_, row) => row).filter((row) => draw(row) < selectivity);
    let found = 0;
    for (let n = 0; n < QUERIES; n += 1) {
      const truth = snapshot
        .searchExact(embedder.vectors[n] as Float32Array, 10, matching)
        .map((hit) => snapshot.chunkAt(hit.row).chunkId);
      const { results } = await engine.search({ query: `q${n}`, k: 10, mode: 'dense', filter });
      const answer = new Set(results.map((result) => result.chunkId));
      found += truth.filter((id) => answer.has(id)).length;
    }
    return { recall: found / (QUERIES * 10), matching: matching.length };
  }

  it.each(SELECTIVITIES)('selectivity %s: equality, number range, date range and negation', async (s) => {
    const engine = new SearchEngine(snapshot, embedder);
    const day = (n: number) => new Date(n * 86_400_000).toISOString().slice(0, 10);
    for (const filter of [
      { [`in_${s}`]: true },
      { u: { lt: s } },
      { day: { lt: day(Math.round(s * 100_000)) } },
      { [`in_${s}`]: { ne: false } },
    ] as MetadataFilter[]) {
      const { recall, matching } = await recallAt10(engine, filter, s);
      expect(matching).toBeGreaterThanOrEqual(10);
      expect(snapshot.rowsMatching(filter).count()).toBe(matching);
      expect(recall, JSON.stringify(filter)).toBe(1);
    }
  });

  it('above the exact limit (HNSW candidates tested against the bitmap) recall is that of HNSW, ≥ 0.99 at 10% and 50%', async () => {
    // A limit below 10% of 20k forces the HNSW path that large corpora take. This path is not
    // exact: its recall is that of an HNSW search 1.3 × 100 ÷ selectivity candidates deep.
    const engine = new SearchEngine(snapshot, embedder, undefined, { exactFilterLimit: 1_000 });
    expect(exactFilterLimit(100, CHUNKS)).toBeGreaterThan(0.1 * CHUNKS);
    for (const s of [0.1, 0.5])
      expect((await recallAt10(engine, { u: { lt: s } }, s)).recall).toBeGreaterThanOrEqual(0.99);
  });
});
