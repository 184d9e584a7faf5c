/**
 * Publishing peers figures measured in several runs (e.g. 10k and 100k with relevance in one run,
 * 1M alone in another): a run's sizes replace only those sizes, relevance is kept unless the run
 * measured it, and the ratios come from the merged rows.
 */
import { describe, expect, it } from 'vitest';
import {
  mergePeers,
  type PeerColdOpen,
  type PeerSizeResult,
  type PeerSystem,
  type PeersResults,
} from '../bench/sections/peers.js';

const latency = (p50: number) => ({ p50, p99: p50 * 2, cpuMsPerQuery: p50, queries: 300 });

function sizeRow(system: PeerSystem, chunks: number, p50: number): PeerSizeResult {
  return {
    system,
    chunks,
    exactDense: false,
    build: { seconds: p50, bytes: p50 * 1000, what: '' },
    denseCurve: [],
    denseAtRecall: { recallTarget: 0.95, p50, p99: p50 * 2 },
    queryingSetting: '',
    text: latency(p50),
    hybrid: latency(p50),
    filtered: [],
    notes: [],
  };
}

const open = (system: PeerSystem, chunks: number, firstAnswerMs: number): PeerColdOpen => ({
  system,
  chunks,
  from: 'local disk',
  runs: 3,
  openMs: firstAnswerMs,
  firstAnswerMs,
  rssAfterOpenMiB: 100,
  rssAfterQueriesMiB: firstAnswerMs,
  queriesForMemory: 1000,
});

function results(
  chunks: readonly number[],
  systems: readonly PeerSystem[],
  p50: number,
  relevance: boolean,
  createdAt: string,
): PeersResults {
  return {
    measured: [{ createdAt, commit: createdAt, chunks, relevance }],
    queries: 300,
    recallTarget: 0.95,
    versions: {},
    sizes: chunks.flatMap((size) => systems.map((system) => sizeRow(system, size, p50))),
    coldOpen: chunks.flatMap((size) => systems.map((system) => open(system, size, p50))),
    relevance: relevance
      ? {
          chunks: 30_000,
          queries: 300,
          rows: [
            { system: 'bisearch', mode: 'hybrid', ndcgAt10: 0.7, recallAt10: 0.8, how: '' },
            { system: 'LanceDB', mode: 'hybrid', ndcgAt10: 0.5, recallAt10: 0.6, how: '' },
          ],
        }
      : { chunks: 0, queries: 0, rows: [] },
    ratios: [],
    skipped: [],
  };
}

describe('mergePeers', () => {
  const published = results([10_000, 100_000], ['bisearch', 'LanceDB', 'Orama'], 2, true, 'first');

  it('adds a size measured alone, keeps the rest, and derives every ratio from the merged rows', () => {
    const million = {
      ...results([1_000_000], ['bisearch', 'LanceDB'], 4, false, 'second'),
      skipped: [{ what: 'Orama at 1000000 chunks', why: 'projected' }],
    };
    const merged = mergePeers(published, million);
    expect(merged.sizes.map((row) => `${row.system} ${row.chunks}`)).toEqual([
      'bisearch 10000',
      'LanceDB 10000',
      'Orama 10000',
      'bisearch 100000',
      'LanceDB 100000',
      'Orama 100000',
      'bisearch 1000000',
      'LanceDB 1000000',
    ]);
    expect(merged.relevance).toEqual(published.relevance);
    expect(merged.skipped).toEqual(million.skipped);
    expect(merged.measured).toEqual([
      { createdAt: 'first', commit: 'first', chunks: [10_000, 100_000], relevance: true },
      { createdAt: 'second', commit: 'second', chunks: [1_000_000], relevance: false },
    ]);
    const chunksWithRatios = new Set(merged.ratios.map((row) => row.chunks));
    expect(chunksWithRatios).toEqual(new Set([10_000, 100_000, 1_000_000, null]));
    // Ratios at 1M compare the 1M rows only (both 4 ms), not rows of another run.
    expect(merged.ratios.find((row) => row.chunks === 1_000_000 && row.figure === 'hybrid p50')?.ratio).toBe(
      1,
    );
    expect(merged.ratios.some((row) => row.chunks === 1_000_000 && row.peer === 'Orama')).toBe(false);
    expect(merged.ratios.find((row) => row.figure === 'nDCG@10 hybrid (SciFact)')?.ratio).toBeCloseTo(1.4);
  });

  it('replaces the sizes a run measured again, and its relevance when it measured one', () => {
    const again = results([100_000], ['bisearch', 'LanceDB', 'Orama'], 3, true, 'third');
    const merged = mergePeers(published, again);
    expect(merged.sizes.filter((row) => row.chunks === 100_000).map((row) => row.text.p50)).toEqual([
      3, 3, 3,
    ]);
    expect(merged.sizes.filter((row) => row.chunks === 10_000)).toHaveLength(3);
    expect(merged.coldOpen.filter((row) => row.chunks === 100_000).map((row) => row.firstAnswerMs)).toEqual([
      3, 3, 3,
    ]);
    expect(merged.measured).toEqual([
      { createdAt: 'first', commit: 'first', chunks: [10_000], relevance: false },
      { createdAt: 'third', commit: 'third', chunks: [100_000], relevance: true },
    ]);
  });

  it('reads results published before runs were recorded one by one', () => {
    const legacy = { ...published, measured: { createdAt: 'old', commit: 'old' } } as unknown as PeersResults;
    const merged = mergePeers(legacy, results([1_000_000], ['bisearch'], 1, false, 'new'));
    expect(merged.measured?.[0]).toEqual({
      createdAt: 'old',
      commit: 'old',
      chunks: [10_000, 100_000],
      relevance: true,
    });
  });
});
