/**
 * Cold start and memory of a query process: a new Node process (the esbuild-bundled probe) loads
 * the model, opens a snapshot already on local disk with usearch `view()` or `load()`, and
 * answers. Also the snapshot download from the local S3 emulator: parallel ranged GETs (what the
 * query Lambda does) against one plain GET.
 */
import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { type Percentiles, percentiles, progress } from '../lib/measure.js';

const run = promisify(execFile);

/** What one probe process reported (milliseconds since its start; MiB). */
export interface ProbeReport {
  readonly importsMs: number;
  readonly modelMs: number;
  readonly snapshotMs: number;
  readonly engineMs: number;
  readonly firstAnswerMs: number;
  /** Wall time from spawn to the report, seen by the parent (includes Node's own start). */
  readonly wallMs: number;
  readonly rssMiB: number;
  readonly heapUsedMiB: number;
  readonly externalMiB: number;
}

/**
 * Bundle the probe once (esbuild, packages external, like the Lambda bundle). It is written inside
 * the project (`.bisearch/bench-probe/`) so that its imports resolve from the project's node_modules.
 */
export async function bundleProbe(probe = 'open-snapshot'): Promise<string> {
  const outfile = resolve('.bisearch', 'bench-probe', `${probe}.mjs`);
  mkdirSync(join(outfile, '..'), { recursive: true });
  await build({
    entryPoints: [resolve('test/bench/probes', `${probe}.ts`)],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    outfile,
    logLevel: 'error',
  });
  return outfile;
}

/** Spawn the probe once. */
export async function runProbe(
  probe: string,
  options: {
    snapshot: string;
    modelDirectory: string;
    indexMode: 'view' | 'load';
    queries: readonly string[];
    verify?: boolean;
  },
): Promise<ProbeReport> {
  const args = [
    '--max-old-space-size=12288',
    probe,
    '--snapshot',
    options.snapshot,
    '--model-dir',
    options.modelDirectory,
    '--index-mode',
    options.indexMode,
    ...(options.verify ? ['--verify'] : []),
    ...options.queries.flatMap((query) => ['--query', query]),
  ];
  const started = performance.now();
  // The probe resolves its packages from the project's node_modules, so it runs from the project.
  const { stdout } = await run(process.execPath, args, { maxBuffer: 1 << 20, cwd: resolve('.') });
  const wallMs = performance.now() - started;
  return { ...(JSON.parse(stdout.trim().split('\n').at(-1) as string) as ProbeReport), wallMs };
}

export interface ColdStartResult {
  readonly chunks: number;
  readonly indexMode: 'view' | 'load';
  /** Whether the probe re-verified every file's sha256 on open (the runtime does, after a download). */
  readonly verified: boolean;
  readonly runs: number;
  /** Medians over the runs, ms since process start. */
  readonly medianMs: Omit<ProbeReport, 'rssMiB' | 'heapUsedMiB' | 'externalMiB'>;
  readonly wallMs: Percentiles;
}

const VARIANTS = [
  { indexMode: 'view', verify: false },
  { indexMode: 'load', verify: false },
  { indexMode: 'view', verify: true },
] as const;

/**
 * `runs` cold starts of each variant (view, load, view with checksum verification), alternating
 * so all see the same machine noise.
 */
export async function benchColdStart(
  probe: string,
  options: { snapshot: string; chunks: number; modelDirectory: string; query: string; runs: number },
): Promise<ColdStartResult[]> {
  const reports: ProbeReport[][] = VARIANTS.map(() => []);
  for (let run = 0; run < options.runs; run += 1) {
    for (const [variant, { indexMode, verify }] of VARIANTS.entries()) {
      reports[variant]?.push(
        await runProbe(probe, {
          snapshot: options.snapshot,
          modelDirectory: options.modelDirectory,
          indexMode,
          verify,
          queries: [options.query],
        }),
      );
    }
  }
  return VARIANTS.map(({ indexMode, verify }, variant) => {
    const sample = reports[variant] as ProbeReport[];
    const median = (field: keyof ProbeReport) => percentiles(sample.map((report) => report[field])).p50;
    progress(
      `cold start ${options.chunks} chunks ${indexMode}${verify ? ' + sha256' : ''}: first answer at ${median('firstAnswerMs').toFixed(0)} ms`,
    );
    return {
      chunks: options.chunks,
      indexMode,
      verified: verify,
      runs: sample.length,
      medianMs: {
        importsMs: median('importsMs'),
        modelMs: median('modelMs'),
        snapshotMs: median('snapshotMs'),
        engineMs: median('engineMs'),
        firstAnswerMs: median('firstAnswerMs'),
        wallMs: median('wallMs'),
      },
      wallMs: percentiles(sample.map((report) => report.wallMs)),
    };
  });
}

export interface MemoryResult {
  readonly chunks: number;
  readonly dtype: string;
  readonly indexMode: 'view' | 'load';
  readonly rssMiB: number;
  readonly heapUsedMiB: number;
  readonly externalMiB: number;
}

/** RSS of a query process after answering `queries`, per index mode. */
export async function benchMemory(
  probe: string,
  options: {
    snapshot: string;
    chunks: number;
    dtype: string;
    modelDirectory: string;
    queries: readonly string[];
  },
): Promise<MemoryResult[]> {
  const results: MemoryResult[] = [];
  for (const indexMode of ['view', 'load'] as const) {
    const report = await runProbe(probe, { ...options, indexMode });
    results.push({
      chunks: options.chunks,
      dtype: options.dtype,
      indexMode,
      rssMiB: report.rssMiB,
      heapUsedMiB: report.heapUsedMiB,
      externalMiB: report.externalMiB,
    });
    progress(
      `memory ${options.chunks} chunks ${options.dtype} ${indexMode}: RSS ${report.rssMiB.toFixed(0)} MiB`,
    );
  }
  return results;
}
