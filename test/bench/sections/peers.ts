/**
 * Whole systems a team would pick instead of bisearch, on the same vectors, texts and queries, in
 * the same run: LanceDB (`@lancedb/lancedb`, embedded, Rust core) and Orama (`@orama/orama`, pure
 * TypeScript). Per corpus size: build/ingest time and size on disk; warm latency of dense,
 * full-text and hybrid queries (dense at equal recall@10, interpolated on each system's own knob:
 * bisearch's HNSW ef, LanceDB's IVF nprobes, Orama's similarity threshold); filtered dense search
 * at 0.1–50% selectivity against exact filtered search; cold open to first answer (local disk,
 * and from the local S3 emulator) and resident memory, in fresh processes. On real SciFact chunks:
 * each system's own full-text and hybrid ranking, nDCG@10 with bisearch's metric code.
 *
 * Every query is issued alone (one in flight) from this single JavaScript thread. bisearch and
 * Orama answer on that thread; LanceDB answers on its Rust runtime's threads, which may run parts
 * of one query in parallel, so CPU time per query is reported beside wall time.
 */
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { finished } from 'node:stream/promises';
import { promisify } from 'node:util';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { save } from '@orama/orama';
import { s3Client } from '../../../functions/adapters/aws/aws-clients.js';
import { IndexBucket } from '../../../functions/adapters/aws/index-bucket.js';
import { readBeirDataset } from '../../../functions/adapters/datasets/beir-dataset.js';
import type { EmbeddedChunk } from '../../../functions/core/delta.js';
import { evaluateRun } from '../../../functions/core/eval-metrics.js';
import type { BaseCorpus } from '../lib/derived-corpus.js';
import { deriveCorpus, exactNeighbours, queryMatrix } from '../lib/derived-corpus.js';
import { percentile, progress, seededRandom, timed } from '../lib/measure.js';
import {
  buildOrama,
  directoryBytes,
  FILTER_FIELDS,
  type FilterField,
  indexedText,
  jsonBytes,
  openLance,
  openOurs,
  oramaSearcher,
  type PeerQuery,
  type PeerSearcher,
  saveOrama,
} from '../lib/peer-systems.js';
import { qpsAtRecall } from './ann.js';
import { bundleProbe } from './cold-start.js';
import { cachedSnapshot } from './query-path.js';

const run = promisify(execFile);
const K = 10;
export const PEER_SYSTEMS = ['bisearch', 'LanceDB', 'Orama'] as const;
export type PeerSystem = (typeof PEER_SYSTEMS)[number];

/** Wall-time percentiles of one kind of query, and CPU time per query (all threads of the process). */
export interface PeerLatency {
  readonly p50: number;
  readonly p99: number;
  readonly cpuMsPerQuery: number;
  /** Queries measured: all of them, or the first ones answered within the pass's time budget. */
  readonly queries: number;
}

export interface PeerCurvePoint extends PeerLatency {
  /** The system's own speed knob: `ef <n>`, `nprobes <n>`, `similarity ≥ <x>`, `flat`. */
  readonly setting: string;
  readonly recallAt10: number;
}

export interface PeerFiltered extends PeerLatency {
  readonly selectivity: number;
  readonly matchingRows: number;
  readonly recallAt10: number;
}

export interface PeerSizeResult {
  readonly system: PeerSystem;
  readonly chunks: number;
  /** True when dense search scores every vector (brute force), at any setting. */
  readonly exactDense: boolean;
  readonly build: { readonly seconds: number | null; readonly bytes: number; readonly what: string };
  readonly denseCurve: PeerCurvePoint[];
  /** Dense latency read off the curve at recall@10 = target (log latency interpolated); null if never reached. */
  readonly denseAtRecall: {
    readonly recallTarget: number;
    readonly p50: number | null;
    readonly p99: number | null;
  };
  /** The setting used for full-text, hybrid and filtered queries (the cheapest reaching the target). */
  readonly queryingSetting: string;
  readonly text: PeerLatency;
  readonly hybrid: PeerLatency;
  readonly filtered: PeerFiltered[];
  readonly notes: string[];
}

export interface PeerColdOpen {
  readonly system: PeerSystem;
  readonly chunks: number;
  readonly from: 'local disk' | 'local S3 emulator';
  readonly runs: number;
  /** Medians, ms since process start (no model is loaded: query vectors are precomputed). */
  readonly openMs: number | null;
  readonly firstAnswerMs: number | null;
  readonly rssAfterOpenMiB: number | null;
  readonly rssAfterQueriesMiB: number | null;
  readonly queriesForMemory: number;
  /** How many of those were hybrid (the rest dense: hybrid ones stop after a time budget). */
  readonly hybridQueriesForMemory?: number;
  readonly error?: string;
}

export interface PeerRelevance {
  readonly system: PeerSystem;
  readonly mode: 'full-text' | 'hybrid' | 'dense';
  readonly ndcgAt10: number;
  readonly recallAt10: number;
  readonly how: string;
}

/** One run behind published peers figures: when, at which commit, its sizes, and whether it measured relevance. */
export interface PeersRun {
  readonly createdAt: string;
  readonly commit: string;
  readonly chunks: readonly number[];
  readonly relevance: boolean;
}

export interface PeersResults {
  /**
   * When and at which commit each run behind these figures measured, and its sizes (a published
   * RESULTS.md merges runs: e.g. 10k and 100k with the relevance in one, 1M in another).
   */
  measured?: readonly PeersRun[];
  readonly queries: number;
  readonly recallTarget: number;
  readonly versions: Record<string, string>;
  readonly sizes: PeerSizeResult[];
  readonly coldOpen: PeerColdOpen[];
  readonly relevance: { readonly chunks: number; readonly queries: number; readonly rows: PeerRelevance[] };
  /** ours ÷ theirs per figure and size (latency, time, bytes: below 1 = bisearch better; nDCG: above 1). */
  readonly ratios: {
    readonly figure: string;
    readonly chunks: number | null;
    readonly peer: PeerSystem;
    readonly ratio: number | null;
  }[];
  readonly skipped: { readonly what: string; readonly why: string }[];
}

/** The rows of one size: derived chunks (one per "document", so no system aggregates), with filter flags. */
export function peerCorpus(base: readonly EmbeddedChunk[], size: number) {
  const derived = deriveCorpus(base, size);
  const random = seededRandom(1601);
  const draws = Float64Array.from({ length: size }, () => random());
  const flags = (row: number) =>
    Object.fromEntries(
      FILTER_FIELDS.map(({ field, selectivity }) => [field, (draws[row] as number) < selectivity]),
    ) as Record<FilterField, boolean>;
  // Each chunk is its own document: bisearch's engine returns one chunk per document, the peers
  // return chunks, so this makes every system's top 10 the same kind of list.
  const chunks = derived.chunks.map((chunk, row) => ({
    ...chunk,
    docId: chunk.chunkId,
    metadata: { ...chunk.metadata, ...flags(row) },
  }));
  return { chunks, matrix: derived.matrix, dimensions: derived.dimensions, flags };
}

/** Exact top 10 per query (chunk ids) over all rows and over each filter's matching rows. */
export function peerTruth(corpus: ReturnType<typeof peerCorpus>, baseQueries: BaseCorpus['queries']) {
  const ids = corpus.chunks.map((chunk) => chunk.chunkId);
  const queryRows = queryMatrix(baseQueries);
  const toIds = (rows: number[][]) => rows.map((list) => list.map((row) => ids[row] as string));
  const truth = toIds(exactNeighbours(corpus.matrix, corpus.dimensions, queryRows, K));
  const filteredTruth = new Map<FilterField, { truth: string[][]; matching: number }>();
  for (const { field } of FILTER_FIELDS) {
    const rows = corpus.chunks.flatMap((_, row) => (corpus.flags(row)[field] ? [row] : []));
    const sub = new Float32Array(rows.length * corpus.dimensions);
    rows.forEach((row, index) => {
      sub.set(
        corpus.matrix.subarray(row * corpus.dimensions, (row + 1) * corpus.dimensions),
        index * corpus.dimensions,
      );
    });
    const k = Math.min(K, rows.length);
    const found = k > 0 ? exactNeighbours(sub, corpus.dimensions, queryRows, k) : baseQueries.map(() => []);
    filteredTruth.set(field, {
      matching: rows.length,
      truth: found.map((list) => list.map((index) => ids[rows[index] as number] as string)),
    });
  }
  return { truth, filteredTruth };
}

/** Mean share of the true top k (chunk ids) found in each answer. */
function recall(allTruth: readonly string[][], answers: readonly string[][]): number {
  // A pass cut short by its time budget answered the first queries only.
  const truth = allTruth.slice(0, answers.length);
  let sum = 0;
  truth.forEach((expected, query) => {
    if (expected.length === 0) return;
    const found = new Set(answers[query] ?? []);
    sum += expected.filter((id) => found.has(id)).length / expected.length;
  });
  return sum / Math.max(1, truth.filter((expected) => expected.length > 0).length);
}

const WARMUP_QUERIES = 30;
/** Warm-up stops early after this long (Orama at 100k: seconds per full-text query). */
const WARMUP_BUDGET_MS = 10_000;
/** A measured pass stops after this long once it has {@link MIN_QUERIES} answers. */
const PASS_BUDGET_MS = 30_000;
const MIN_QUERIES = 100;

/** A few unmeasured queries (JIT, caches), then every query once (within a time budget), timed alone. */
async function measure(
  queries: readonly PeerQuery[],
  call: (query: PeerQuery) => Promise<string[]>,
): Promise<{ answers: string[][] } & PeerLatency> {
  const warming = performance.now();
  for (const query of queries.slice(0, WARMUP_QUERIES)) {
    await call(query);
    if (performance.now() - warming > WARMUP_BUDGET_MS) break;
  }
  const answers: string[][] = [];
  const sample: number[] = [];
  const cpu = process.cpuUsage();
  const started = performance.now();
  for (const query of queries) {
    const queryStarted = performance.now();
    answers.push(await call(query));
    sample.push(performance.now() - queryStarted);
    // A slow system (Orama at 100k: about a second per hybrid query) is measured on fewer queries.
    if (answers.length >= MIN_QUERIES && performance.now() - started > PASS_BUDGET_MS) break;
  }
  const used = process.cpuUsage(cpu);
  return {
    answers,
    p50: percentile(sample, 50),
    p99: percentile(sample, 99),
    cpuMsPerQuery: (used.user + used.system) / 1000 / answers.length,
    queries: answers.length,
  };
}

/** Latency at `target` recall on a curve, using the ANN section's interpolation (on 1 / latency). */
function latencyAtRecall(points: readonly PeerCurvePoint[], target: number, field: 'p50' | 'p99') {
  const rate = qpsAtRecall(
    points.map((point) => ({ library: '', ef: 0, recallAt10: point.recallAt10, qps: 1 / point[field] })),
    target,
  );
  return rate === null ? null : 1 / rate;
}

/** Dense curve, then full-text, hybrid and filtered queries at the cheapest setting reaching the target. */
export async function measureSystem(
  system: PeerSystem,
  options: {
    readonly queries: readonly PeerQuery[];
    readonly truth: string[][];
    readonly filteredTruth: Map<FilterField, { truth: string[][]; matching: number }>;
    readonly recallTarget: number;
    readonly settings: readonly { label: string; searcher: () => Promise<PeerSearcher> }[];
  },
) {
  const denseCurve: PeerCurvePoint[] = [];
  for (const setting of options.settings) {
    const searcher = await setting.searcher();
    const { answers, ...latency } = await measure(options.queries, (query) => searcher.dense(query, K));
    denseCurve.push({ setting: setting.label, recallAt10: recall(options.truth, answers), ...latency });
    await searcher.close();
    progress(
      `peers: ${system} dense ${setting.label}: recall@10 ${denseCurve.at(-1)?.recallAt10.toFixed(3)}, p50 ${latency.p50.toFixed(2)} ms`,
    );
  }
  const reaching = denseCurve
    .map((point, index) => ({ point, index }))
    .filter(({ point }) => point.recallAt10 >= options.recallTarget)
    .sort((a, b) => a.point.p50 - b.point.p50)[0];
  const best = denseCurve.reduce((a, b) => (b.recallAt10 > a.recallAt10 ? b : a));
  const chosenIndex = reaching?.index ?? denseCurve.indexOf(best);
  const chosen = options.settings[chosenIndex] as (typeof options.settings)[number];
  const searcher = await chosen.searcher();
  const text = await measure(options.queries, (query) => searcher.text(query, K));
  const hybrid = await measure(options.queries, (query) => searcher.hybrid(query, K));
  const filtered: PeerFiltered[] = [];
  for (const { field, selectivity } of FILTER_FIELDS) {
    const expected = options.filteredTruth.get(field) as { truth: string[][]; matching: number };
    const { answers, ...latency } = await measure(options.queries, (query) =>
      searcher.filtered(query, K, field),
    );
    filtered.push({
      selectivity,
      matchingRows: expected.matching,
      recallAt10: recall(expected.truth, answers),
      ...latency,
    });
  }
  await searcher.close();
  progress(
    `peers: ${system} at ${chosen.label}: full-text p50 ${text.p50.toFixed(2)} ms, hybrid p50 ${hybrid.p50.toFixed(2)} ms`,
  );
  return {
    denseCurve,
    denseAtRecall: {
      recallTarget: options.recallTarget,
      p50: latencyAtRecall(denseCurve, options.recallTarget, 'p50'),
      p99: latencyAtRecall(denseCurve, options.recallTarget, 'p99'),
    },
    queryingSetting: chosen.label,
    text: { p50: text.p50, p99: text.p99, cpuMsPerQuery: text.cpuMsPerQuery, queries: text.queries },
    hybrid: {
      p50: hybrid.p50,
      p99: hybrid.p99,
      cpuMsPerQuery: hybrid.cpuMsPerQuery,
      queries: hybrid.queries,
    },
    filtered,
  };
}

interface ProbeReport {
  readonly openMs: number;
  readonly firstAnswerMs: number;
  readonly rssAfterOpenMiB: number;
  readonly rssAfterQueriesMiB: number;
  readonly queries: number;
  readonly hybrid: number;
}

/** The memory run's hybrid queries stop after this long, dense ones follow (Orama at 100k: seconds per hybrid query). */
const MEMORY_BUDGET_MS = 180_000;

async function runPeerProbe(probe: string, args: readonly string[]): Promise<ProbeReport> {
  const { stdout } = await run(process.execPath, ['--max-old-space-size=12288', probe, ...args], {
    maxBuffer: 1 << 22,
    cwd: resolve('.'),
    env: { ...process.env, RUST_LOG: 'error', LANCEDB_LOG: 'error' },
  });
  return JSON.parse(stdout.trim().split('\n').at(-1) as string) as ProbeReport;
}

/** A point of LanceDB's dense curve: IVF partitions probed and PQ re-ranking depth, or a flat scan. */
export interface LanceSetting {
  readonly label: string;
  readonly nprobes: number | 'flat';
  readonly refineFactor?: number;
}

/**
 * LanceDB's dense curve: nprobes 1–64 at refine factor 10, then deeper re-ranking at 64 partitions
 * (at 100k chunks refine 10 stops at recall@10 0.926, the PQ codes' limit, so a user reaching for
 * 0.95 raises the refine factor), then a flat scan.
 */
export const LANCE_SETTINGS: readonly LanceSetting[] = [
  ...[1, 2, 4, 8, 16, 32, 64].map((nprobes) => ({ label: `nprobes ${nprobes}`, nprobes })),
  ...[30, 100].map((refineFactor) => ({
    label: `nprobes 64, refine ${refineFactor}`,
    nprobes: 64,
    refineFactor,
  })),
  { label: 'flat', nprobes: 'flat' },
];

/** The cold-open probe's arguments for LanceDB's chosen setting (a flat choice opens at nprobes 64). */
function lanceProbeArgs(setting: LanceSetting | undefined): string[] {
  if (!setting || setting.nprobes === 'flat') return ['--nprobes', '64'];
  return [
    '--nprobes',
    String(setting.nprobes),
    ...(setting.refineFactor ? ['--refine', String(setting.refineFactor)] : []),
  ];
}

/** Cold opens (median of `runs`) and one run with `count` queries for memory. */
async function coldOpen(
  probe: string,
  system: PeerSystem,
  chunks: number,
  from: PeerColdOpen['from'],
  args: readonly string[],
  runs: number,
  count: number,
): Promise<PeerColdOpen> {
  try {
    const reports: ProbeReport[] = [];
    for (let n = 0; n < runs; n += 1) reports.push(await runPeerProbe(probe, [...args, '--count', '0']));
    const memory = await runPeerProbe(probe, [
      ...args,
      '--count',
      String(count),
      '--budget-ms',
      String(MEMORY_BUDGET_MS),
    ]);
    const median = (field: keyof ProbeReport) =>
      percentile(
        reports.map((report) => report[field]),
        50,
      );
    progress(
      `peers: cold open ${system} ${chunks} chunks from ${from}: first answer at ${median('firstAnswerMs').toFixed(0)} ms, RSS ${memory.rssAfterQueriesMiB.toFixed(0)} MiB after ${memory.queries} queries (${memory.hybrid} hybrid)`,
    );
    return {
      system,
      chunks,
      from,
      runs,
      openMs: median('openMs'),
      firstAnswerMs: median('firstAnswerMs'),
      rssAfterOpenMiB: memory.rssAfterOpenMiB,
      rssAfterQueriesMiB: memory.rssAfterQueriesMiB,
      queriesForMemory: memory.queries,
      hybridQueriesForMemory: memory.hybrid,
    };
  } catch (error) {
    const message = ((error as { stderr?: string }).stderr || (error as Error).message)
      .split('\n')
      .filter((line) => line.trim())
      .slice(-6)
      .join(' | ');
    progress(`peers: cold open ${system} ${chunks} chunks from ${from} failed: ${message}`);
    return {
      system,
      chunks,
      from,
      runs: 0,
      openMs: null,
      firstAnswerMs: null,
      rssAfterOpenMiB: null,
      rssAfterQueriesMiB: null,
      queriesForMemory: count,
      error: message.slice(0, 1_500),
    };
  }
}

/** The local S3 emulator in a process of its own (probes/s3-server.ts); bucket `bench-index`. */
async function startS3(directory: string): Promise<{ endpoint: string; stop: () => void }> {
  rmSync(directory, { recursive: true, force: true });
  mkdirSync(directory, { recursive: true });
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', resolve('test/bench/probes/s3-server.ts'), directory],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const port = await new Promise<number>((done, fail) => {
    child.stdout.once('data', (data: Buffer) => done(JSON.parse(data.toString()).port));
    child.once('exit', (code) => fail(new Error(`s3rver exited with ${code}`)));
  });
  return { endpoint: `http://127.0.0.1:${port}`, stop: () => child.kill('SIGTERM') };
}

/** Upload every file under `directory` to `s3://bench-index/<prefix>/…` (LanceDB's layout as is). */
async function uploadTree(endpoint: string, directory: string, prefix: string): Promise<void> {
  const { readdirSync, readFileSync, statSync } = await import('node:fs');
  const s3 = s3Client({
    region: 'us-east-1',
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    endpoints: { s3: endpoint },
  });
  const walk = (path: string): string[] =>
    statSync(path).isDirectory() ? readdirSync(path).flatMap((name) => walk(join(path, name))) : [path];
  for (const file of walk(directory))
    await s3.send(
      new PutObjectCommand({
        Bucket: 'bench-index',
        Key: `${prefix}/${relative(directory, file)}`,
        Body: readFileSync(file),
      }),
    );
}

/**
 * Build the LanceDB table in a child process (probes/build-lance.ts, which explains why), killed
 * after `timeoutMs`. Returns the build's own milliseconds and those of each step, measured inside the child.
 */
async function buildLanceApart(
  input: string,
  directory: string,
  chunks: readonly EmbeddedChunk[],
  flags: (row: number) => Record<FilterField, boolean>,
  timeoutMs: number,
): Promise<{ ms: number; steps: Record<string, number> }> {
  const dimensions = chunks[0]?.vector.length ?? 0;
  const matrix = new Float32Array(chunks.length * dimensions);
  chunks.forEach((chunk, row) => {
    matrix.set(chunk.vector, row * dimensions);
  });
  writeFileSync(`${input}.f32`, Buffer.from(matrix.buffer, matrix.byteOffset, matrix.byteLength));
  // One JSON row per line, written in pieces: at 1M chunks the rows' JSON (~700 MB) is longer than
  // V8's maximum string length, so it cannot be one JSON.stringify.
  const lines = createWriteStream(`${input}.jsonl`);
  for (const [row, chunk] of chunks.entries())
    if (
      !lines.write(
        `${JSON.stringify({ chunkId: chunk.chunkId, text: indexedText(chunk), flags: flags(row) })}\n`,
      )
    )
      await once(lines, 'drain');
  lines.end();
  await finished(lines);
  try {
    const { stdout } = await run(
      process.execPath,
      [
        '--max-old-space-size=8192',
        '--import',
        'tsx',
        resolve('test/bench/probes/build-lance.ts'),
        directory,
        input,
      ],
      {
        timeout: timeoutMs,
        killSignal: 'SIGKILL',
        maxBuffer: 1 << 20,
        env: { ...process.env, RUST_LOG: 'error', LANCEDB_LOG: 'error' },
      },
    );
    return JSON.parse(stdout.trim().split('\n').at(-1) as string) as {
      ms: number;
      steps: Record<string, number>;
    };
  } finally {
    rmSync(`${input}.f32`, { force: true });
    rmSync(`${input}.jsonl`, { force: true });
  }
}

/** Run the peers section. */
export async function benchPeers(options: {
  readonly base: BaseCorpus;
  readonly sizes: readonly number[];
  readonly datasetDirectory: string;
  readonly workDirectory: string;
  readonly snapshotParent: string;
  readonly coldRuns: number;
  readonly memoryQueries: number;
  readonly recallTarget: number;
  /** How long the LanceDB build may take before it is killed and that size recorded as skipped. */
  readonly lanceBuildTimeoutMs: number;
  /** Orama runs at sizes up to this (chunks); above it the size is skipped with a measured reason. */
  readonly oramaMaxChunks: number;
  /** Measure SciFact relevance (nDCG@10 of each system's full-text, hybrid and dense ranking). */
  readonly relevance: boolean;
  /** Published figures of smaller sizes, to project a skipped Orama size from when this run has none. */
  readonly projectFrom?: Pick<PeersResults, 'sizes' | 'coldOpen'>;
  readonly skipped: readonly { what: string; why: string }[];
}): Promise<PeersResults> {
  const { base } = options;
  const queries: PeerQuery[] = base.queries.map((query) => ({ text: query.text, vector: query.vector }));
  const work = join(options.workDirectory, 'peers');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const modelKey = base.embedder.space.modelId.replace(/[^\w.-]+/g, '_');
  const sizes: PeerSizeResult[] = [];
  const coldOpens: PeerColdOpen[] = [];
  const skipped = [...options.skipped];
  const queriesFile = join(work, 'queries.json');
  writeFileSync(
    queriesFile,
    JSON.stringify(queries.map((query) => ({ text: query.text, vector: Array.from(query.vector) }))),
  );
  const probe = await bundleProbe('peer-open');
  const s3 = await startS3(join(work, 's3rver'));
  try {
    for (const size of options.sizes) {
      const corpus = peerCorpus(base.chunks, size);
      const { truth, filteredTruth } = peerTruth(corpus, base.queries);
      const common = { queries, truth, filteredTruth, recallTarget: options.recallTarget };

      // bisearch: a snapshot as the reindex writes it (HNSW f16 on all cores, BM25, chunk records).
      const snapshot = await cachedSnapshot(
        options.snapshotParent,
        `peers-${modelKey}-${base.chunks.length}-${size}-f16`,
        () => ({
          chunks: corpus.chunks,
          space: base.embedder.space,
          dtype: 'f16',
        }),
      );
      const ours = await measureSystem('bisearch', {
        ...common,
        settings: [16, 32, 64, 128, 256, 512].map((ef) => ({
          label: `ef ${ef}`,
          searcher: () => openOurs(snapshot.directory, queries, ef),
        })),
      });
      sizes.push({
        system: 'bisearch',
        chunks: size,
        exactDense: false,
        build: {
          seconds: snapshot.buildSeconds,
          bytes: directoryBytes(snapshot.directory),
          what: `writeSnapshot (HNSW f16 on all cores, BM25 segment, chunk records, sha256)${snapshot.reused ? '; built by an earlier run, reused' : ''}`,
        },
        ...ours,
        notes: [
          'The engine asks HNSW for max(5k, 100) = 100 candidates whatever k is, so ef below 100 behaves like ef 100.',
          'Filtered search finds the matching rows in the metadata index, scores them exactly up to exactFilterLimit (~11k at 100k chunks), and tests HNSW candidates (1.3 × 100 ÷ selectivity) against the bitmap above.',
        ],
      });

      // LanceDB: one table, IVF_PQ (its documented defaults, cosine), FTS and bitmap indexes.
      const lanceDirectory = join(work, `lance-${size}`);
      progress(`peers: building LanceDB over ${size} chunks`);
      let lanceBuild: { ms: number; steps: Record<string, number> } | null = null;
      try {
        lanceBuild = await buildLanceApart(
          join(work, `lance-input-${size}`),
          lanceDirectory,
          corpus.chunks,
          corpus.flags,
          options.lanceBuildTimeoutMs,
        );
      } catch (error) {
        const why = `its build did not finish (${(error as { killed?: boolean }).killed ? `killed after ${options.lanceBuildTimeoutMs / 60_000} min` : (error as Error).message.slice(0, 500)})`;
        progress(`peers: LanceDB at ${size} chunks skipped: ${why}`);
        skipped.push({ what: `LanceDB at ${size} chunks`, why });
      }
      let lanceChosen: LanceSetting | undefined;
      const lanceSettings = LANCE_SETTINGS;
      if (lanceBuild !== null) {
        const lance = await measureSystem('LanceDB', {
          ...common,
          settings: lanceSettings.map(({ label, nprobes, refineFactor }) => ({
            label,
            searcher: () => openLance(lanceDirectory, { nprobes, refineFactor }),
          })),
        });
        sizes.push({
          system: 'LanceDB',
          chunks: size,
          exactDense: false,
          build: {
            seconds: lanceBuild.ms / 1000,
            bytes: directoryBytes(lanceDirectory),
            what: `createTable + IVF_PQ (default partitions and sub-vectors, cosine) + FTS + 4 bitmap indexes, its own threads (LANCE_CPU_THREADS=${process.env.LANCE_CPU_THREADS}); steps: ${Object.entries(
              lanceBuild.steps,
            )
              .map(([step, ms]) => `${step} ${(ms / 1000).toFixed(1)} s`)
              .join(', ')}`,
          },
          ...lance,
          notes: [
            'IVF_PQ with refine factor 10 (the top k × 10 PQ candidates re-ranked with the full vectors) unless the setting names another; "flat" scans every vector.',
            'Queries run on its Rust runtime: CPU ms per query above the wall time means more than one thread worked on a query.',
            'Hybrid: full-text + vector in one query, fused by its default RRF reranker.',
          ],
        });
        lanceChosen = lanceSettings.find((setting) => setting.label === lance.queryingSetting);
      }

      // Orama: in memory, one thread; brute-force vectors, so the similarity threshold is its knob.
      // Above its size cap it is skipped with the reason this run measured (see oramaSkipReason).
      let oramaFile: string | null = null;
      if (size > options.oramaMaxChunks) {
        const why = oramaSkipReason(
          size,
          [...sizes, ...(options.projectFrom?.sizes ?? [])],
          [...coldOpens, ...(options.projectFrom?.coldOpen ?? [])],
        );
        progress(`peers: Orama at ${size} chunks skipped: ${why}`);
        skipped.push({ what: `Orama at ${size} chunks`, why });
      } else {
        progress(`peers: inserting ${size} chunks into Orama`);
        const [orama, oramaMs] = await timed(() => buildOrama(corpus.chunks, corpus.flags));
        const oramaJsonBytes = jsonBytes(save(orama));
        const file = join(work, `orama-${size}.v8`);
        oramaFile = file;
        const [oramaBytes, oramaSaveMs] = await timed(() => saveOrama(orama, file));
        const similarities = [0.6, 0.5, 0.4, 0];
        const oramaResult = await measureSystem('Orama', {
          ...common,
          settings: similarities.map((similarity) => ({
            label: `similarity ≥ ${similarity}`,
            searcher: () => oramaSearcher(orama, { similarity }),
          })),
        });
        sizes.push({
          system: 'Orama',
          chunks: size,
          exactDense: true,
          build: {
            seconds: oramaMs / 1000,
            bytes: oramaBytes,
            what: 'create + insertMultiple (batches of 1,000), one thread; size: its save() object written with v8.serialize (no on-disk format of its own)',
          },
          ...oramaResult,
          notes: [
            "Vector search is brute force (every vector scored in JavaScript): exact; a similarity threshold drops rows below it, losing recall when a query's 10th neighbour scores lower.",
            'Full-text with threshold 1 (any term may match, as BM25 ranks); hybrid mode with its default weights (0.5 / 0.5).',
            `Persisted as v8.serialize(save()) in ${(oramaSaveMs / 1000).toFixed(1)} s (not in the ingest time); the JSON of save() would be ${(oramaJsonBytes / 2 ** 20).toFixed(0)} MiB${oramaJsonBytes >= 2 ** 29 - 24 ? ", beyond V8's maximum string length, so JSON.stringify cannot write it" : ''}.`,
          ],
        });
      }

      // Cold open and memory, each system in fresh processes.
      coldOpens.push(
        await coldOpen(
          probe,
          'bisearch',
          size,
          'local disk',
          ['--system', 'ours', '--location', snapshot.directory, '--queries', queriesFile],
          options.coldRuns,
          options.memoryQueries,
        ),
        await coldOpen(
          probe,
          'LanceDB',
          size,
          'local disk',
          [
            '--system',
            'lancedb',
            '--location',
            lanceDirectory,
            '--queries',
            queriesFile,
            ...lanceProbeArgs(lanceChosen),
          ],
          options.coldRuns,
          options.memoryQueries,
        ),
      );
      if (oramaFile !== null)
        coldOpens.push(
          await coldOpen(
            probe,
            'Orama',
            size,
            'local disk',
            ['--system', 'orama', '--location', oramaFile, '--queries', queriesFile],
            options.coldRuns,
            options.memoryQueries,
          ),
        );
      const bucket = new IndexBucket(
        s3Client({
          region: 'us-east-1',
          credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
          endpoints: { s3: s3.endpoint },
        }),
        'bench-index',
      );
      const prefix = await bucket.uploadSnapshot(snapshot.directory, `peers-${size}`);
      if (existsSync(lanceDirectory)) await uploadTree(s3.endpoint, lanceDirectory, `lance-${size}`);
      coldOpens.push(
        await coldOpen(
          probe,
          'bisearch',
          size,
          'local S3 emulator',
          [
            '--system',
            'ours',
            '--location',
            `s3://bench-index/${prefix.replace(/\/$/, '')}`,
            '--endpoint',
            s3.endpoint,
            '--queries',
            queriesFile,
          ],
          options.coldRuns,
          options.memoryQueries,
        ),
        await coldOpen(
          probe,
          'LanceDB',
          size,
          'local S3 emulator',
          [
            '--system',
            'lancedb',
            '--location',
            `s3://bench-index/lance-${size}`,
            '--endpoint',
            s3.endpoint,
            '--queries',
            queriesFile,
            ...lanceProbeArgs(lanceChosen),
          ],
          options.coldRuns,
          options.memoryQueries,
        ),
      );
      if (oramaFile !== null) rmSync(oramaFile, { force: true });
      rmSync(lanceDirectory, { recursive: true, force: true });
    }
  } finally {
    s3.stop();
  }

  const relevance = options.relevance
    ? await benchRelevance({ ...options, work, queries })
    : { chunks: 0, queries: 0, rows: [] };
  // Read from the installed package (LanceDB's exports map does not expose its package.json).
  const version = (name: string) =>
    (JSON.parse(readFileSync(resolve('node_modules', name, 'package.json'), 'utf8')) as { version: string })
      .version;
  return {
    queries: queries.length,
    recallTarget: options.recallTarget,
    versions: {
      '@lancedb/lancedb': version('@lancedb/lancedb'),
      '@orama/orama': version('@orama/orama'),
      usearch: version('usearch'),
    },
    sizes,
    coldOpen: coldOpens,
    relevance,
    ratios: peerRatios({ sizes, coldOpen: coldOpens, relevance, recallTarget: options.recallTarget }),
    skipped,
  };
}

/**
 * ours ÷ theirs for every figure both systems have at a size, and for SciFact nDCG@10. Computed from
 * the rows, so a published result merged from several runs (sizes measured apart) gets its ratios
 * from the merged rows.
 */
export function peerRatios(
  peers: Pick<PeersResults, 'sizes' | 'coldOpen' | 'relevance' | 'recallTarget'>,
): PeersResults['ratios'] {
  const { sizes, coldOpen: coldOpens, relevance, recallTarget } = peers;
  const ratios: PeersResults['ratios'] = [];
  const ratio = (a: number | null | undefined, b: number | null | undefined) =>
    a !== null && a !== undefined && b !== null && b !== undefined && b > 0 ? a / b : null;
  for (const size of [...new Set(sizes.map((row) => row.chunks))].sort((a, b) => a - b)) {
    const of = (system: PeerSystem) => sizes.find((row) => row.system === system && row.chunks === size);
    const ours = of('bisearch');
    for (const peer of ['LanceDB', 'Orama'] as const) {
      const theirs = of(peer);
      if (!ours || !theirs) continue;
      const add = (figure: string, a: number | null | undefined, b: number | null | undefined) =>
        ratios.push({ figure, chunks: size, peer, ratio: ratio(a, b) });
      add('build time', ours.build.seconds, theirs.build.seconds);
      add('size on disk', ours.build.bytes, theirs.build.bytes);
      add(`dense p50 at recall@10 ${recallTarget}`, ours.denseAtRecall.p50, theirs.denseAtRecall.p50);
      add(`dense p99 at recall@10 ${recallTarget}`, ours.denseAtRecall.p99, theirs.denseAtRecall.p99);
      add('full-text p50', ours.text.p50, theirs.text.p50);
      add('full-text p99', ours.text.p99, theirs.text.p99);
      add('hybrid p50', ours.hybrid.p50, theirs.hybrid.p50);
      add('hybrid p99', ours.hybrid.p99, theirs.hybrid.p99);
      for (const filter of ours.filtered) {
        const other = theirs.filtered.find((row) => row.selectivity === filter.selectivity);
        add(`filtered ${filter.selectivity * 100}% p99`, filter.p99, other?.p99);
      }
      for (const from of ['local disk', 'local S3 emulator'] as const) {
        const cold = (system: PeerSystem) =>
          coldOpens.find((row) => row.system === system && row.chunks === size && row.from === from);
        add(`first answer from ${from}`, cold('bisearch')?.firstAnswerMs, cold(peer)?.firstAnswerMs);
        if (from === 'local disk')
          add('RSS after queries', cold('bisearch')?.rssAfterQueriesMiB, cold(peer)?.rssAfterQueriesMiB);
      }
    }
  }
  for (const peer of ['LanceDB', 'Orama'] as const)
    for (const mode of ['full-text', 'hybrid'] as const) {
      const ndcg = (system: PeerSystem) =>
        relevance.rows.find((row) => row.system === system && row.mode === mode)?.ndcgAt10;
      if (ndcg(peer) !== undefined)
        ratios.push({
          figure: `nDCG@10 ${mode} (SciFact)`,
          chunks: null,
          peer,
          ratio: ratio(ndcg('bisearch'), ndcg(peer)),
        });
    }
  return ratios;
}

/**
 * Why Orama is not run at `size` chunks, from what this run measured at the largest size below it:
 * resident memory after open and the time of one full-text and one hybrid query, scaled linearly
 * (it keeps every vector and posting in the JavaScript heap and scores every vector and every
 * matching posting per query).
 */
function oramaSkipReason(size: number, sizes: readonly PeerSizeResult[], coldOpens: readonly PeerColdOpen[]) {
  const measured = sizes
    .filter((row) => row.system === 'Orama' && row.chunks < size)
    .sort((a, b) => b.chunks - a.chunks)[0];
  const open = coldOpens.find((row) => row.system === 'Orama' && row.chunks === measured?.chunks);
  if (!measured)
    return 'above the Orama size cap of this run (oramaMaxChunks), and no smaller size to project from';
  const scale = size / measured.chunks;
  const totalGiB = totalmem() / 2 ** 30;
  const passQueries = WARMUP_QUERIES + MIN_QUERIES;
  const hours = ((measured.text.p50 + measured.hybrid.p50) * scale * passQueries) / 3_600_000;
  const rss = open?.rssAfterOpenMiB ?? null;
  return `Orama keeps every vector and posting in the JavaScript heap and scores every vector and every matching posting per query. At ${measured.chunks} chunks this run measured ${rss === null ? 'no RSS' : `${(rss / 1024).toFixed(1)} GiB RSS after open`}, full-text p50 ${(measured.text.p50 / 1000).toFixed(1)} s and hybrid p50 ${(measured.hybrid.p50 / 1000).toFixed(1)} s. Scaled ${scale}× to ${size} chunks: ${rss === null ? '' : `~${((rss * scale) / 1024).toFixed(0)} GiB (this machine has ${totalGiB.toFixed(0)} GiB), `}${hours.toFixed(1)} h for the full-text and hybrid passes alone (${passQueries} queries each).`;
}

/**
 * nDCG@10 on SciFact's test qrels, every system indexing the same real windowed chunks (with real
 * document ids) and the same vectors. bisearch's engine returns documents (best chunk each); the
 * peers return chunks, so each is asked for its top 100 chunks, collapsed in its own order to
 * documents (first occurrence), and the first 10 documents are scored; bisearch is asked for 10
 * documents, the request its fusion was tuned on (a larger k widens its candidate lists).
 */
async function benchRelevance(options: {
  readonly base: BaseCorpus;
  readonly lanceBuildTimeoutMs: number;
  readonly datasetDirectory: string;
  readonly snapshotParent: string;
  readonly work: string;
  readonly queries: readonly PeerQuery[];
}): Promise<PeersResults['relevance']> {
  const { base } = options;
  const dataset = readBeirDataset(options.datasetDirectory);
  const queryIds = [...dataset.queries.keys()].slice(0, options.queries.length);
  const qrels = new Map(queryIds.map((id) => [id, dataset.qrels.get(id) ?? new Map<string, number>()]));
  const flags = () =>
    Object.fromEntries(FILTER_FIELDS.map(({ field }) => [field, false])) as Record<FilterField, boolean>;
  const docOf = (chunkId: string) => chunkId.slice(0, chunkId.lastIndexOf('#'));
  const rows: PeerRelevance[] = [];
  const score = async (system: PeerSystem, searcher: PeerSearcher, depth: number, how: string) => {
    for (const mode of ['full-text', 'hybrid', 'dense'] as const) {
      const run = new Map<string, string[]>();
      for (const [index, query] of options.queries.entries()) {
        const call =
          mode === 'full-text' ? searcher.text : mode === 'hybrid' ? searcher.hybrid : searcher.dense;
        // Only the first 10 documents count (nDCG@10, Recall@10).
        const documents = [...new Set((await call(query, depth)).map(docOf))];
        run.set(queryIds[index] as string, documents.slice(0, K));
      }
      const metrics = evaluateRun(run, qrels);
      rows.push({ system, mode, ndcgAt10: metrics.ndcgAt10, recallAt10: metrics.recallAt10, how });
      progress(`peers: relevance ${system} ${mode}: nDCG@10 ${rows.at(-1)?.ndcgAt10.toFixed(4)}`);
    }
  };
  const modelKey = base.embedder.space.modelId.replace(/[^\w.-]+/g, '_');
  const snapshot = await cachedSnapshot(
    options.snapshotParent,
    `peers-relevance-${modelKey}-${base.chunks.length}-f16`,
    () => ({
      chunks: base.chunks,
      space: base.embedder.space,
      dtype: 'f16',
    }),
  );
  // The engine already answers documents; k = 10 is the request its fusion was tuned for.
  await score(
    'bisearch',
    await openOurs(snapshot.directory, options.queries),
    K,
    'engine: one result per document (its best chunk); HNSW f16 ef 128; hybrid = normalised-score fusion, dense weight 0.2',
  );
  const lanceDirectory = join(options.work, 'lance-relevance');
  await buildLanceApart(
    join(options.work, 'lance-input-relevance'),
    lanceDirectory,
    base.chunks,
    flags,
    options.lanceBuildTimeoutMs,
  );
  await score(
    'LanceDB',
    await openLance(lanceDirectory, { nprobes: 20 }),
    100,
    'top 100 chunks collapsed to documents; FTS index defaults (English stemming, stop words); IVF_PQ nprobes 20, refine 10; hybrid = its default RRF',
  );
  rmSync(lanceDirectory, { recursive: true, force: true });
  const orama = await buildOrama(base.chunks, flags);
  await score(
    'Orama',
    await oramaSearcher(orama, { similarity: 0 }),
    100,
    'top 100 chunks collapsed to documents; default tokenizer (English, no stemming); exact vectors; hybrid weights 0.5 / 0.5',
  );
  return { chunks: base.chunks.length, queries: options.queries.length, rows };
}

/** The corpus size a skip names ("… at 1000000 chunks …"), NaN when it names none. */
function skippedSize(what: string): number {
  return Number(/at (\d+) chunks/.exec(what)?.[1] ?? Number.NaN);
}

/**
 * Published peers figures with a run's merged in: its sizes' rows (sizes, cold opens, skips) replace
 * those of the same sizes, its relevance replaces the published one if it measured any, and the
 * ratios are recomputed from the merged rows.
 */
export function mergePeers(published: PeersResults, run: PeersResults): PeersResults {
  const runSizes = new Set(run.sizes.map((row) => row.chunks));
  for (const skip of run.skipped) {
    const size = skippedSize(skip.what);
    if (!Number.isNaN(size)) runSizes.add(size);
  }
  const keep = <T extends { chunks: number }>(rows: readonly T[]) =>
    rows.filter((row) => !runSizes.has(row.chunks));
  const relevance = run.relevance.rows.length > 0 ? run.relevance : published.relevance;
  const merged = {
    ...run,
    sizes: [...keep(published.sizes), ...run.sizes].sort((a, b) => a.chunks - b.chunks),
    coldOpen: [...keep(published.coldOpen), ...run.coldOpen].sort((a, b) => a.chunks - b.chunks),
    relevance,
    // Skips of a size this run measured go; skips that name no size (e.g. "1M chunks") go too.
    skipped: [
      ...published.skipped.filter(
        (skip) => !runSizes.has(skippedSize(skip.what)) && !Number.isNaN(skippedSize(skip.what)),
      ),
      ...run.skipped,
    ],
    measured: [
      ...publishedRuns(published)
        .map((entry) => ({
          ...entry,
          chunks: entry.chunks.filter((size) => !runSizes.has(size)),
          relevance: entry.relevance && run.relevance.rows.length === 0,
        }))
        .filter((entry) => entry.chunks.length > 0 || entry.relevance),
      ...(run.measured ?? []),
    ],
  };
  return { ...merged, ratios: peerRatios(merged) };
}

/** The runs behind published peers figures (results of before per-run records: one run of every size). */
export function publishedRuns(published: PeersResults): PeersRun[] {
  const measured = published.measured as PeersRun[] | { createdAt: string; commit: string } | undefined;
  if (Array.isArray(measured)) return measured;
  if (!measured) return [];
  return [{ ...measured, chunks: [...new Set(published.sizes.map((row) => row.chunks))], relevance: true }];
}
