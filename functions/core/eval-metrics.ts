/** Graded relevance judgements: query id → document id → grade (> 0 is relevant). */
export type Qrels = ReadonlyMap<string, ReadonlyMap<string, number>>;

/** Ranked document ids per query, best first. */
export type Run = ReadonlyMap<string, readonly string[]>;

/** Mean retrieval metrics over the judged queries, as BEIR / pytrec_eval define them. */
export interface RetrievalMetrics {
  readonly ndcgAt10: number;
  readonly recallAt10: number;
  readonly recallAt100: number;
  readonly mrrAt10: number;
  /** Queries averaged over (those with at least one relevant document). */
  readonly queries: number;
}

/** nDCG@k with linear gain (pytrec_eval `ndcg_cut`, used by BEIR). */
export function ndcgAtK(
  ranking: readonly string[],
  judgements: ReadonlyMap<string, number>,
  k: number,
): number {
  let dcg = 0;
  ranking.slice(0, k).forEach((docId, index) => {
    const grade = judgements.get(docId) ?? 0;
    if (grade > 0) dcg += grade / Math.log2(index + 2);
  });
  const ideal = [...judgements.values()]
    .filter((grade) => grade > 0)
    .sort((a, b) => b - a)
    .slice(0, k);
  const idcg = ideal.reduce((sum, grade, index) => sum + grade / Math.log2(index + 2), 0);
  return idcg === 0 ? 0 : dcg / idcg;
}

/** Fraction of the relevant documents found in the first k. */
export function recallAtK(
  ranking: readonly string[],
  judgements: ReadonlyMap<string, number>,
  k: number,
): number {
  const relevant = [...judgements].filter(([, grade]) => grade > 0).map(([docId]) => docId);
  if (relevant.length === 0) return 0;
  const top = new Set(ranking.slice(0, k));
  return relevant.filter((docId) => top.has(docId)).length / relevant.length;
}

/** Reciprocal rank of the first relevant document within the first k (0 if none). */
export function reciprocalRankAtK(
  ranking: readonly string[],
  judgements: ReadonlyMap<string, number>,
  k: number,
): number {
  const index = ranking.slice(0, k).findIndex((docId) => (judgements.get(docId) ?? 0) > 0);
  return index < 0 ? 0 : 1 / (index + 1);
}

/** Average the metrics over every query that has a relevant judgement (missing runs count as 0). */
export function evaluateRun(run: Run, qrels: Qrels): RetrievalMetrics {
  let ndcg = 0;
  let recall10 = 0;
  let recall100 = 0;
  let mrr = 0;
  let queries = 0;
  for (const [queryId, judgements] of qrels) {
    if (![...judgements.values()].some((grade) => grade > 0)) continue;
    const ranking = run.get(queryId) ?? [];
    ndcg += ndcgAtK(ranking, judgements, 10);
    recall10 += recallAtK(ranking, judgements, 10);
    recall100 += recallAtK(ranking, judgements, 100);
    mrr += reciprocalRankAtK(ranking, judgements, 10);
    queries += 1;
  }
  const mean = (sum: number) => (queries === 0 ? 0 : sum / queries);
  return {
    ndcgAt10: mean(ndcg),
    recallAt10: mean(recall10),
    recallAt100: mean(recall100),
    mrrAt10: mean(mrr),
    queries,
  };
}

/** Mean overlap of the first k ids of approximate and exact rankings (ANN recall@k). */
export function overlapAtK(approximate: Run, exact: Run, k: number): number {
  let total = 0;
  let count = 0;
  for (const [queryId, exactRanking] of exact) {
    const truth = exactRanking.slice(0, k);
    if (truth.length === 0) continue;
    const found = new Set(approximate.get(queryId)?.slice(0, k) ?? []);
    total += truth.filter((id) => found.has(id)).length / truth.length;
    count += 1;
  }
  return count === 0 ? 0 : total / count;
}

/** nDCG@10 of every judged query that has a relevant document (missing runs score 0). */
export function perQueryNdcgAt10(run: Run, qrels: Qrels): Record<string, number> {
  const scores: Record<string, number> = {};
  for (const [queryId, judgements] of qrels) {
    if (![...judgements.values()].some((grade) => grade > 0)) continue;
    scores[queryId] = ndcgAtK(run.get(queryId) ?? [], judgements, 10);
  }
  return scores;
}

/** A paired comparison of two runs over the queries both scored. */
export interface PairedComparison {
  readonly queries: number;
  /** Mean of (candidate − baseline). */
  readonly meanDifference: number;
  /** Two-sided p-value of the paired randomisation (sign-flip) test. */
  readonly pValue: number;
  readonly permutations: number;
}

/**
 * Paired randomisation test (Fisher; Smucker, Allan & Carterette 2007, "A comparison of
 * statistical significance tests for information retrieval evaluation"): under the null
 * hypothesis each query's difference is as likely negative as positive, so the observed mean
 * difference is compared with the means of `permutations` random sign flips. Seeded (mulberry32),
 * so a report is reproducible. The p-value counts the observed arrangement as one permutation.
 */
export function pairedRandomizationTest(
  baseline: Readonly<Record<string, number>>,
  candidate: Readonly<Record<string, number>>,
  permutations = 10_000,
  seed = 20_261_203,
): PairedComparison {
  const differences = Object.keys(candidate)
    .filter((queryId) => queryId in baseline)
    .map((queryId) => (candidate[queryId] as number) - (baseline[queryId] as number));
  const n = differences.length;
  if (n === 0) return { queries: 0, meanDifference: 0, pValue: 1, permutations: 0 };
  const observed = Math.abs(differences.reduce((sum, value) => sum + value, 0));
  let state = seed >>> 0;
  const random = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
  let atLeastAsExtreme = 0;
  for (let p = 0; p < permutations; p += 1) {
    let sum = 0;
    for (const difference of differences) sum += random() < 0.5 ? -difference : difference;
    // A small tolerance: sign flips of equal magnitudes reproduce the observed sum up to rounding.
    if (Math.abs(sum) >= observed - 1e-12) atLeastAsExtreme += 1;
  }
  return {
    queries: n,
    meanDifference: differences.reduce((sum, value) => sum + value, 0) / n,
    pValue: (atLeastAsExtreme + 1) / (permutations + 1),
    permutations,
  };
}
