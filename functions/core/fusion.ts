/** A ranked candidate from one retriever. */
export interface RankedItem {
  readonly id: string;
  readonly score: number;
}

/** Constant of reciprocal-rank fusion (Cormack et al. 2009): 1 / (k + rank). */
export const RRF_K = 60;

/**
 * Reciprocal-rank fusion of several rankings (best first). Ignores raw scores, so BM25 scores
 * and cosine similarities need no calibration. Returns the fused ranking, best first.
 */
export function reciprocalRankFusion(
  rankings: ReadonlyArray<readonly RankedItem[]>,
  k = RRF_K,
): RankedItem[] {
  const fused = new Map<string, number>();
  for (const ranking of rankings) {
    for (const [rank, item] of ranking.entries())
      fused.set(item.id, (fused.get(item.id) ?? 0) + 1 / (k + rank + 1));
  }
  return sortByScore(fused);
}

/**
 * Normalised-score fusion: each ranking's scores are min–max scaled to [0, 1] and summed with the
 * given weights (an item missing from a ranking contributes 0 there).
 *
 * @param floors optional minimum per ranking, for a ranking cut short of the list whose minimum
 *   should set the scale (default: the ranking's own lowest score).
 */
export function normalizedScoreFusion(
  rankings: ReadonlyArray<readonly RankedItem[]>,
  weights?: readonly number[],
  floors?: readonly (number | undefined)[],
): RankedItem[] {
  const fused = new Map<string, number>();
  rankings.forEach((ranking, index) => {
    if (ranking.length === 0) return;
    const weight = weights?.[index] ?? 1;
    const scores = ranking.map((item) => item.score);
    const max = Math.max(...scores);
    const min = Math.min(floors?.[index] ?? Number.POSITIVE_INFINITY, ...scores);
    const span = max - min;
    for (const item of ranking) {
      const scaled = span > 0 ? (item.score - min) / span : 1;
      fused.set(item.id, (fused.get(item.id) ?? 0) + weight * scaled);
    }
  });
  return sortByScore(fused);
}

function sortByScore(scores: Map<string, number>): RankedItem[] {
  return [...scores]
    .map(([id, score]) => ({ id, score }))
    .sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
