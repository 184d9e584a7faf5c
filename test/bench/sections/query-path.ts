/**
 * The warm query path, in process: the real SearchEngine over a real snapshot (usearch view,
 * BM25 segment, chunk records) with the real query embedder, k = 10, hybrid and dense. Each stage
 * is timed by the engine itself (`timingsMs`), so these are the figures a deployed query reports.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FileSnapshot, writeSnapshot } from '../../../functions/adapters/index/snapshot-files.js';
import type { EmbeddedChunk } from '../../../functions/core/delta.js';
import type { EmbeddingSpace } from '../../../functions/core/embedding-space.js';
import { SearchEngine, type SearchMode, type SearchTimings } from '../../../functions/core/search-engine.js';
import {
  MANIFEST_FILE,
  SNAPSHOT_FORMAT_VERSION,
  type VectorDtype,
} from '../../../functions/core/snapshot-manifest.js';
import type { BaseCorpus } from '../lib/derived-corpus.js';
import { type Percentiles, percentiles, progress, timed } from '../lib/measure.js';

/**
 * A snapshot of `chunks` under `<parent>/<key>/`, built once and reused by later runs with the same
 * key and snapshot format (a million-chunk build takes minutes). Returns its directory, the seconds its build took
 * (recorded beside it), and whether this run reused it.
 */
export async function cachedSnapshot(
  parent: string,
  key: string,
  build: () => { chunks: readonly EmbeddedChunk[]; space: EmbeddingSpace; dtype: VectorDtype },
): Promise<{ directory: string; buildSeconds: number | null; reused: boolean }> {
  const home = join(parent, key);
  // Only a snapshot in the format this build writes is reused: an older one measures older code.
  const existing = existsSync(home)
    ? readdirSync(home).find((name) => {
        const manifest = join(home, name, MANIFEST_FILE);
        return (
          existsSync(manifest) &&
          JSON.parse(readFileSync(manifest, 'utf8')).formatVersion === SNAPSHOT_FORMAT_VERSION
        );
      })
    : undefined;
  if (existing) {
    const recorded = join(home, 'built-seconds');
    const buildSeconds = existsSync(recorded) ? Number(readFileSync(recorded, 'utf8')) : null;
    return { directory: join(home, existing), buildSeconds, reused: true };
  }
  rmSync(home, { recursive: true, force: true });
  mkdirSync(home, { recursive: true });
  const { chunks, space, dtype } = build();
  progress(`building snapshot ${key} (${chunks.length} chunks, ${dtype})`);
  const [{ directory }, ms] = await timed(() => writeSnapshot(home, { chunks, space, hnsw: { dtype } }));
  writeFileSync(join(home, 'built-seconds'), `${ms / 1000}\n`);
  return { directory, buildSeconds: ms / 1000, reused: false };
}

export type StageName = keyof SearchTimings | 'totalWithoutEmbed';

export interface QueryPathResult {
  readonly chunks: number;
  readonly mode: SearchMode;
  readonly queries: number;
  readonly stagesMs: Record<StageName, Percentiles>;
}

const STAGES: (keyof SearchTimings)[] = ['embed', 'dense', 'lexical', 'fusion', 'hydrate', 'search', 'total'];

/** Run every query once to warm up, then `passes` measured passes, in each mode. */
export async function benchQueryPath(options: {
  readonly snapshotDirectory: string;
  readonly base: BaseCorpus;
  readonly modes: readonly SearchMode[];
  readonly passes: number;
}): Promise<QueryPathResult[]> {
  const snapshot = await FileSnapshot.open(options.snapshotDirectory, { verifyChecksums: false });
  const engine = new SearchEngine(snapshot, options.base.embedder);
  const results: QueryPathResult[] = [];
  for (const mode of options.modes) {
    for (const { text } of options.base.queries) await engine.search({ query: text, k: 10, mode });
    const samples = Object.fromEntries(
      [...STAGES, 'totalWithoutEmbed'].map((stage) => [stage, [] as number[]]),
    ) as Record<StageName, number[]>;
    for (let pass = 0; pass < options.passes; pass += 1) {
      for (const { text } of options.base.queries) {
        const { timingsMs } = await engine.search({ query: text, k: 10, mode });
        for (const stage of STAGES) samples[stage].push(timingsMs[stage]);
        samples.totalWithoutEmbed.push(timingsMs.total - timingsMs.embed);
      }
    }
    results.push({
      chunks: snapshot.chunkCount,
      mode,
      queries: samples.total.length,
      stagesMs: Object.fromEntries(
        Object.entries(samples).map(([stage, sample]) => [stage, percentiles(sample)]),
      ) as Record<StageName, Percentiles>,
    });
    progress(
      `query path ${snapshot.chunkCount} chunks ${mode}: p50 ${results.at(-1)?.stagesMs.totalWithoutEmbed.p50.toFixed(2)} ms without embedding`,
    );
  }
  return results;
}
