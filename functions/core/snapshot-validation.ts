import type { SnapshotView } from './search-engine.js';

/**
 * Recall@k of the snapshot's HNSW index against exact search, averaged over `queries`: the
 * fraction of the exact top-k rows that HNSW also returns. The reindex refuses a version below
 * its threshold (a corrupt or mis-built graph shows up here even when checksums match).
 */
export function annRecallAtK(snapshot: SnapshotView, queries: readonly Float32Array[], k = 10): number {
  if (queries.length === 0 || snapshot.chunkCount === 0) return 1;
  let total = 0;
  for (const query of queries) {
    const exact = snapshot.searchExact(query, k).map((hit) => hit.row);
    const found = new Set(snapshot.searchApproximate(query, k).map((hit) => hit.row));
    total += exact.filter((row) => found.has(row)).length / Math.max(exact.length, 1);
  }
  return total / queries.length;
}

/** `count` row numbers spread evenly over `rows` (all of them when there are fewer). */
export function evenlySpacedRows(rows: number, count: number): number[] {
  if (rows <= count) return Array.from({ length: rows }, (_, row) => row);
  return Array.from({ length: count }, (_, i) => Math.floor((i * rows) / count));
}
