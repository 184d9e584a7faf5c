/**
 * `npm run bench [-- --quick] [-- --only sections] [-- --publish]`: query latency per stage, ANN
 * peers, cold start, snapshot download, memory, embedding throughput and freshness, side by side
 * in one run. Writes `test/bench/results/<time>.json` (every figure, the settings, the machine)
 * and `<time>.md` with SVG charts; `--publish` also writes `test/bench/RESULTS.md` and its charts.
 * Never asserts timings: `npm test` only smoke-tests `--quick`.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command, Option } from 'commander';
import { DEFAULT_HNSW } from '../../functions/adapters/index/usearch-index.js';
import { embeddingInput } from '../../functions/core/chunking.js';
import type { VectorDtype } from '../../functions/core/snapshot-manifest.js';
import { type BaseCorpus, deriveCorpus, loadBaseCorpus, queryMatrix } from './lib/derived-corpus.js';
import { type MachineInfo, machineInfo, progress } from './lib/measure.js';
import { checkTargets, writeReport } from './lib/report.js';
import { type AnnResults, benchAnn } from './sections/ann.js';
import {
  benchColdStart,
  benchMemory,
  bundleProbe,
  type ColdStartResult,
  type MemoryResult,
} from './sections/cold-start.js';
import { benchDownload, type DownloadResult } from './sections/download.js';
import { benchEmbedding, type EmbeddingResults } from './sections/embedding.js';
import { benchFilters, type FiltersResults } from './sections/filters.js';
import { benchFreshness, type FreshnessResult } from './sections/freshness.js';
import { benchPeers, mergePeers, type PeersResults } from './sections/peers.js';
import { benchQueryPath, cachedSnapshot, type QueryPathResult } from './sections/query-path.js';
import { benchScale, type ScaleResults } from './sections/scale.js';

/** What one S3 connection delivers, MiB/s (commonly measured 80–100 MB/s; see sections/download.ts). */
const S3_CONNECTION_MIBPS = 80;

const SECTIONS = [
  'embedding',
  'ann',
  'query',
  'cold',
  'memory',
  'download',
  'freshness',
  'scale',
  'peers',
  'filters',
] as const;
/** Sections that need no real corpus (no SciFact embedding at start). */
const WITHOUT_BASE_CORPUS: readonly Section[] = ['freshness', 'scale', 'filters'];
type Section = (typeof SECTIONS)[number];

/** Everything one run measured (the JSON file). */
export interface BenchResults {
  readonly createdAt: string;
  readonly machine: MachineInfo;
  readonly settings: {
    readonly quick: boolean;
    readonly sections: Section[];
    readonly model: string;
    readonly baseChunks: number;
    readonly queries: number;
    readonly sizes: number[];
    readonly hnsw: typeof DEFAULT_HNSW;
  };
  embedding?: EmbeddingResults;
  ann?: AnnResults;
  queryPath?: QueryPathResult[];
  snapshotBuilds?: { chunks: number; dtype: VectorDtype; buildSeconds: number | null; reused: boolean }[];
  coldStart?: ColdStartResult[];
  memory?: MemoryResult[];
  download?: DownloadResult[];
  freshness?: FreshnessResult;
  scale?: ScaleResults;
  peers?: PeersResults;
  filters?: FiltersResults;
}

/**
 * The published results with this run's sections put in place of theirs; the header (time,
 * machine, settings) stays the published run's, and sections that record their own run say so.
 */
function mergeResults(published: BenchResults, run: BenchResults): BenchResults {
  const { createdAt: _createdAt, machine: _machine, settings, ...sections } = run;
  const measured = Object.fromEntries(Object.entries(sections).filter(([, value]) => value !== undefined));
  // A scale run of some parts (--scale-parts) replaces only those parts' figures.
  if (run.scale && published.scale)
    measured.scale = {
      ...published.scale,
      ...Object.fromEntries(
        Object.entries(run.scale).filter(
          ([, value]) => value !== undefined && !(Array.isArray(value) && value.length === 0),
        ),
      ),
    };
  // A peers run of some sizes (--peer-sizes) replaces only those sizes' rows.
  if (run.peers && published.peers) measured.peers = mergePeers(published.peers, run.peers);
  return {
    ...published,
    ...measured,
    settings: {
      ...published.settings,
      sections: [...new Set([...published.settings.sections, ...settings.sections])],
    },
  };
}

/** Parts of the scale section, for `--scale-parts`. */
const SCALE_PARTS = ['delta', 'rebuild', 'writer', 'announce', 'catch-up', 'load'] as const;

const program = new Command('bench')
  .description('Measure bisearch: query path, ANN peers, cold start, download, memory, embedding, freshness.')
  .option('--quick', 'small corpora and few repetitions (seconds, for CI)', false)
  .addOption(new Option('--only <sections>', `comma-separated subset of ${SECTIONS.join(',')}`))
  .option('--dataset <dir>', 'BEIR dataset directory', '../shared/datasets/scifact')
  .option('--work-dir <dir>', 'snapshots (reused across runs) and scratch', '.bisearch/bench')
  .option(
    '--embedding-cache <dir>',
    'vectors by content hash, shared with npm run eval',
    '.bisearch/eval/embeddings',
  )
  .option('--out <file>', 'results JSON (default test/bench/results/<time>.json)')
  .option('--publish', 'also write test/bench/RESULTS.md and test/bench/charts/', false)
  .option(
    '--scale-parts <parts>',
    `parts of the scale section to run (${SCALE_PARTS.join(',')}); default all. Published with --publish, they replace only their own figures`,
  )
  .option(
    '--publish-run <file>',
    'publish an earlier run (its results JSON) without measuring: its sections replace the published ones',
  )
  .option(
    '--peer-sizes <sizes>',
    'corpus sizes of the peers section, comma-separated (default 10000,100000,1000000)',
  )
  .option('--no-peer-relevance', "skip the peers section's SciFact relevance (e.g. a run of 1M only)")
  .option(
    '--filter-sizes <sizes>',
    'corpus sizes of the filters section, comma-separated (default 100000,1000000)',
  )
  .parse();
const options = program.opts<{
  quick: boolean;
  only?: string;
  dataset: string;
  workDir: string;
  embeddingCache: string;
  out?: string;
  publish: boolean;
  scaleParts?: string;
  publishRun?: string;
  filterSizes?: string;
  peerSizes?: string;
  peerRelevance: boolean;
}>();

/**
 * Publish `run`: a run of some sections is merged into the published results
 * (test/bench/results.json), a run of all replaces them; RESULTS.md and its charts are written
 * from the outcome.
 */
async function publish(run: BenchResults): Promise<void> {
  mkdirSync(resolve('test/bench/charts'), { recursive: true });
  // A subset (--only) keeps the published figures of the other sections: this run's sections
  // replace theirs in the published results.json, and RESULTS.md is written from the merge.
  const publishedJson = resolve('test/bench/results.json');
  const partial = SECTIONS.some((section) => !run.settings.sections.includes(section));
  const merged =
    partial && existsSync(publishedJson)
      ? mergeResults(JSON.parse(readFileSync(publishedJson, 'utf8')) as BenchResults, run)
      : run;
  const published = await writeReport(merged, resolve('test/bench/RESULTS.md'), 'charts/');
  writeFileSync(publishedJson, `${JSON.stringify(merged, null, 2)}\n`);
  progress(`published ${published}`);
}

if (options.publishRun) {
  // A run measured earlier (e.g. beside other work, or on another checkout), published now.
  await publish(JSON.parse(readFileSync(resolve(options.publishRun), 'utf8')) as BenchResults);
  process.exit(0);
}
const sections = (options.only ? options.only.split(',') : [...SECTIONS]) as Section[];
const unknown = sections.filter((section) => !SECTIONS.includes(section));
if (unknown.length)
  program.error(`unknown section(s) ${unknown.join(', ')}; choose from ${SECTIONS.join(', ')}`);
const quick = options.quick;
const workDirectory = resolve(options.workDir);
const plan = quick
  ? {
      documents: 50,
      queries: 20,
      sizes: [2_000],
      memorySizes: [2_000],
      annSize: 2_000,
      expansions: [16, 64, 128],
      coldRuns: 1,
      downloadRuns: 1,
      freshnessDocuments: 3,
      passages: 32,
      batchSizes: [1, 8],
      threadCounts: [1],
      repetitions: 1,
      scale: {
        announcements: 200,
        encoderCounts: [1, 8, 32],
        backlogs: [300],
        loadDocuments: 300,
        queries: 50,
        deltaSizes: [2_000],
        rebuildSizes: [1_000],
        writerSizes: [2_000],
      },
      peerSizes: [2_000],
      peerColdRuns: 1,
      peerMemoryQueries: 20,
      filters: { sizes: [2_000], queries: 20, passes: 1 },
    }
  : {
      documents: Number.POSITIVE_INFINITY,
      queries: 300,
      sizes: [10_000, 100_000, 1_000_000],
      memorySizes: [100_000, 1_000_000],
      annSize: 100_000,
      expansions: [16, 32, 64, 128, 256, 512],
      coldRuns: 5,
      downloadRuns: 5,
      freshnessDocuments: 50,
      passages: 256,
      batchSizes: [1, 8, 32, 64],
      threadCounts: [1, 2],
      repetitions: 3,
      scale: {
        announcements: 5_000,
        encoderCounts: [1, 8, 32, 64],
        backlogs: [1_000, 10_000, 100_000],
        loadDocuments: 5_000,
        queries: 300,
        deltaSizes: [1_000, 5_000, 20_000, 50_000],
        rebuildSizes: [10_000, 100_000],
        writerSizes: [100_000, 1_000_000],
      },
      peerSizes: [10_000, 100_000, 1_000_000],
      peerColdRuns: 3,
      peerMemoryQueries: 1_000,
      filters: { sizes: [100_000, 1_000_000], queries: 300, passes: 1 },
    };
const peerSizes = options.peerSizes ? options.peerSizes.split(',').map(Number) : plan.peerSizes;
if (peerSizes.some((size) => !Number.isInteger(size) || size < 100))
  program.error(`--peer-sizes takes chunk counts of at least 100, comma-separated: got ${options.peerSizes}`);
const started = performance.now();
const createdAt = new Date().toISOString();

// The base corpus is real (see lib/derived-corpus.ts); everything larger is derived from it.
const base: BaseCorpus = sections.every((section) => WITHOUT_BASE_CORPUS.includes(section))
  ? await loadBaseCorpus({
      dataset: resolve(options.dataset),
      cacheDirectory: resolve(options.embeddingCache),
      documents: 1,
      queries: 1,
    })
  : await loadBaseCorpus({
      dataset: resolve(options.dataset),
      cacheDirectory: resolve(options.embeddingCache),
      documents: plan.documents,
      queries: plan.queries,
    });
progress(
  `base corpus: ${base.chunks.length} chunks, ${base.queries.length} queries, model ${base.embedder.space.modelId}`,
);
const results: BenchResults = {
  createdAt,
  machine: machineInfo(),
  settings: {
    quick,
    sections,
    model: base.embedder.space.modelId,
    baseChunks: base.chunks.length,
    queries: base.queries.length,
    sizes: plan.sizes,
    hnsw: DEFAULT_HNSW,
  },
};
const queryTexts = base.queries.map((query) => query.text);
const snapshotParent = join(workDirectory, 'snapshots');
const snapshotBuilds: NonNullable<BenchResults['snapshotBuilds']> = [];
/** A (cached) snapshot of `size` derived chunks in `dtype`. */
const snapshotOf = async (size: number, dtype: VectorDtype) => {
  const key = `${base.embedder.space.modelId.replace(/[^\w.-]+/g, '_')}-${base.chunks.length}-${size}-${dtype}`;
  const built = await cachedSnapshot(snapshotParent, key, () => ({
    chunks: deriveCorpus(base.chunks, size).chunks,
    space: base.embedder.space,
    dtype,
  }));
  if (!snapshotBuilds.some((build) => build.chunks === size && build.dtype === dtype))
    snapshotBuilds.push({ chunks: size, dtype, buildSeconds: built.buildSeconds, reused: built.reused });
  return built.directory;
};

if (sections.includes('embedding')) {
  results.embedding = await benchEmbedding({
    modelDirectory: base.modelDirectory,
    tinyBertDirectory: resolve('../shared/models/tiny-bert-biencoder'),
    passages: base.chunks.slice(0, plan.passages).map((chunk) => embeddingInput(chunk)),
    queries: queryTexts.slice(0, 100),
    batchSizes: plan.batchSizes,
    threadCounts: plan.threadCounts,
    repetitions: plan.repetitions,
    workDirectory,
  });
}
if (sections.includes('ann')) {
  const derived = deriveCorpus(base.chunks, plan.annSize);
  results.ann = await benchAnn({
    matrix: derived.matrix,
    dimensions: derived.dimensions,
    queries: queryMatrix(base.queries),
    expansions: plan.expansions,
    workDirectory,
  });
}
if (sections.includes('query')) {
  results.queryPath = [];
  for (const size of plan.sizes) {
    const directory = await snapshotOf(size, DEFAULT_HNSW.dtype);
    results.queryPath.push(
      ...(await benchQueryPath({
        snapshotDirectory: directory,
        base,
        modes: ['hybrid', 'dense'],
        passes: quick ? 1 : 2,
      })),
    );
  }
}
const needsProbe = sections.includes('cold') || sections.includes('memory');
const probe = needsProbe ? await bundleProbe() : '';
if (sections.includes('cold')) {
  results.coldStart = [];
  for (const size of quick ? plan.sizes : plan.memorySizes) {
    results.coldStart.push(
      ...(await benchColdStart(probe, {
        snapshot: await snapshotOf(size, DEFAULT_HNSW.dtype),
        chunks: size,
        modelDirectory: base.modelDirectory,
        query: queryTexts[0] as string,
        runs: plan.coldRuns,
      })),
    );
  }
}
if (sections.includes('memory')) {
  results.memory = [];
  for (const size of plan.memorySizes) {
    for (const dtype of ['f32', 'f16', 'i8'] as VectorDtype[]) {
      results.memory.push(
        ...(await benchMemory(probe, {
          snapshot: await snapshotOf(size, dtype),
          chunks: size,
          dtype,
          modelDirectory: base.modelDirectory,
          queries: queryTexts.slice(0, 100),
        })),
      );
    }
  }
}
if (sections.includes('download')) {
  const snapshotDirectory = await snapshotOf(quick ? (plan.sizes[0] as number) : 100_000, DEFAULT_HNSW.dtype);
  results.download = [];
  // Loopback as it is (one and two server processes), then with S3's per-connection bandwidth.
  for (const scenario of [
    { serverProcesses: 1 },
    { serverProcesses: 2 },
    { serverProcesses: 1, perConnectionMiBps: S3_CONNECTION_MIBPS },
  ])
    results.download.push(
      await benchDownload({ snapshotDirectory, workDirectory, runs: plan.downloadRuns, ...scenario }),
    );
}
if (sections.includes('peers')) {
  const publishedJson = resolve('test/bench/results.json');
  const published = existsSync(publishedJson)
    ? (JSON.parse(readFileSync(publishedJson, 'utf8')) as BenchResults).peers
    : undefined;
  results.peers = await benchPeers({
    base,
    sizes: peerSizes,
    datasetDirectory: resolve(options.dataset),
    workDirectory,
    snapshotParent,
    coldRuns: plan.peerColdRuns,
    memoryQueries: plan.peerMemoryQueries,
    recallTarget: 0.95,
    lanceBuildTimeoutMs: quick ? 120_000 : 1_200_000,
    // Orama holds everything in the JavaScript heap and scores in JavaScript: at 100k it already
    // takes seconds per full-text query (RESULTS.md "Peers"), so larger sizes are projected, not run.
    oramaMaxChunks: 100_000,
    relevance: options.peerRelevance,
    ...(published ? { projectFrom: published } : {}),
    skipped: [],
  });
  results.peers = {
    ...results.peers,
    measured: [
      { createdAt, commit: results.machine.commit, chunks: peerSizes, relevance: options.peerRelevance },
    ],
  };
}
await base.embedder.dispose();
if (sections.includes('freshness'))
  results.freshness = await benchFreshness({ documents: plan.freshnessDocuments });
if (sections.includes('scale')) {
  const parts = options.scaleParts ? options.scaleParts.split(',') : [...SCALE_PARTS];
  const unknownParts = parts.filter((part) => !(SCALE_PARTS as readonly string[]).includes(part));
  if (unknownParts.length)
    throw new Error(`unknown --scale-parts ${unknownParts.join(',')}: use ${SCALE_PARTS.join(',')}`);
  const keep = <T>(part: (typeof SCALE_PARTS)[number], value: T, none: T): T =>
    parts.includes(part) ? value : none;
  results.scale = await benchScale({
    modelDirectory: resolve('../shared/models/tiny-bert-biencoder'),
    ...plan.scale,
    encoderCounts: keep('announce', plan.scale.encoderCounts, []),
    backlogs: keep('catch-up', plan.scale.backlogs, []),
    loadDocuments: keep('load', plan.scale.loadDocuments, 0),
    deltaSizes: keep('delta', plan.scale.deltaSizes, []),
    rebuildSizes: keep('rebuild', plan.scale.rebuildSizes, []),
    writerSizes: keep('writer', plan.scale.writerSizes, []),
  });
}
if (sections.includes('filters')) {
  results.filters = await benchFilters({
    ...plan.filters,
    ...(options.filterSizes ? { sizes: options.filterSizes.split(',').map(Number) } : {}),
    dimensions: 384,
    workDirectory: snapshotParent,
  });
  results.filters.measured = { createdAt, commit: results.machine.commit };
}
if (snapshotBuilds.length) results.snapshotBuilds = snapshotBuilds;

const stamp = `${createdAt.replace(/[:.]/g, '-')}${quick ? '-quick' : ''}`;
const out = resolve(options.out ?? join('test', 'bench', 'results', `${stamp}.json`));
mkdirSync(join(out, '..'), { recursive: true });
writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
const markdown = await writeReport(results, out.replace(/\.json$/, '.md'), `${stamp}-`);
if (options.publish) await publish(results);
const checks = checkTargets(results);
process.stdout.write(
  [
    `bisearch bench${quick ? ' --quick' : ''}: ${results.machine.cores} cores, ${results.machine.cpu}, ${((performance.now() - started) / 1000).toFixed(0)} s`,
    ...checks.map(
      (check) => `${check.met === null ? '·' : check.met ? '✓' : '✗'} ${check.target}: ${check.measured}`,
    ),
    `results: ${out}`,
    `summary: ${markdown}`,
    '',
  ].join('\n'),
);
