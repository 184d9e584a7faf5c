/**
 * Measurement helpers of `npm run bench`: percentiles, timers, machine facts, progress lines.
 * The machine is shared and noisy, so figures are medians/percentiles of many repetitions and
 * comparisons are ratios measured side by side in one run.
 */
import { execFileSync } from 'node:child_process';
import { availableParallelism, cpus, totalmem } from 'node:os';

/** p50 / p95 / p99 of a sample (nearest rank), in the sample's unit. */
export interface Percentiles {
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
}

/** Nearest-rank percentile `p` (0–100) of a sample; NaN when empty. */
export function percentile(sample: readonly number[], p: number): number {
  const sorted = [...sample].sort((a, b) => a - b);
  return (
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? Number.NaN
  );
}

export function percentiles(sample: readonly number[]): Percentiles {
  return { p50: percentile(sample, 50), p95: percentile(sample, 95), p99: percentile(sample, 99) };
}

/** Run `work` and return its result with the elapsed milliseconds. */
export async function timed<T>(work: () => Promise<T> | T): Promise<[T, number]> {
  const started = performance.now();
  const result = await work();
  return [result, performance.now() - started];
}

/** Milliseconds of each of `repetitions` calls of `work` (after `warmup` unmeasured calls). */
export async function sampleMs(
  repetitions: number,
  work: (index: number) => unknown,
  warmup = 0,
): Promise<number[]> {
  for (let i = 0; i < warmup; i += 1) await work(i);
  const sample: number[] = [];
  for (let i = 0; i < repetitions; i += 1) {
    const started = performance.now();
    await work(i);
    sample.push(performance.now() - started);
  }
  return sample;
}

/** Facts about the machine a result was measured on. */
export interface MachineInfo {
  readonly cores: number;
  readonly cpu: string;
  readonly memoryGiB: number;
  readonly node: string;
  readonly platform: string;
  readonly commit: string;
}

export function machineInfo(): MachineInfo {
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    // Not a git checkout: the figures still stand, only unattributed.
  }
  return {
    cores: availableParallelism(),
    cpu: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    commit,
  };
}

/** A progress line on stderr (stdout carries the summary). */
export function progress(line: string): void {
  process.stderr.write(`bench: ${line}\n`);
}

/** Deterministic pseudo-random numbers in [0, 1) (mulberry32), so derived corpora are repeatable. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
