/**
 * Scale of the write and catch-up paths, on dynalite with modelled AWS latency per call
 * (`latencyMs`, default 5 ms, added before every DynamoDB call as `BISEARCH_SIMULATED_LATENCY_MS`
 * does): change-log announcements against encoder concurrency, query-runtime catch-up and Init
 * against backlog size, and query latency while a bulk load runs. Documents are synthetic (one
 * chunk, a deterministic unit vector, no embedding): the embedding step is measured elsewhere.
 *
 * Emulator caveat: dynalite is one Node process on LevelDB, so at high concurrency it, not the
 * modelled latency, is the bottleneck; each figure is projected onto AWS from the calls it makes
 * (see the `projected…` fields and the README's capacity section). The announcement measurement
 * runs dynalite in a process of its own (the encoders and DynamoDB do not share a CPU on AWS);
 * the others keep it in the bench's process.
 */

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { dynamoDocumentClient, s3Client } from '../../../functions/adapters/aws/aws-clients.js';
import { IndexBucket } from '../../../functions/adapters/aws/index-bucket.js';
import { SearchTable } from '../../../functions/adapters/aws/search-table.js';
import { writeSortedSnapshot } from '../../../functions/adapters/index/snapshot-files.js';
import { InMemoryHnswIndex } from '../../../functions/adapters/index/usearch-index.js';
import { OnnxEmbedder } from '../../../functions/adapters/model/onnx-embedder.js';
import { ReindexSteps } from '../../../functions/adapters/services/reindex-steps.js';
import { SearchRuntime } from '../../../functions/adapters/services/search-runtime.js';
import { DeltaLayer, type EmbeddedChunk } from '../../../functions/core/delta.js';
import { LexicalIndex } from '../../../functions/core/lexical.js';
import { MANIFEST_FILE, SNAPSHOT_FILES } from '../../../functions/core/snapshot-manifest.js';
import { type LocalAws, startLocalAws } from '../../../infra/local/emulators.js';
import { clusteredVector, seedDocuments } from '../../support/synthetic-documents.js';
import { type Percentiles, percentiles, progress } from '../lib/measure.js';

/** Announcements by `encoders` concurrent writers. */
export interface AnnounceResult {
  readonly encoders: number;
  readonly announcements: number;
  readonly seconds: number;
  readonly perSecond: number;
  /** Announcements that failed (the old read-then-write loop gave up after 50 conflicts). */
  readonly failures: number;
  /** On AWS: two sequential calls per announcement, capped by one item's ~1,000 writes/s. */
  readonly projectedAwsPerSecond: number;
}

/** A query runtime starting with `backlog` documents announced after its (empty) snapshot. */
export interface CatchUpResult {
  readonly backlog: number;
  /** From start to the whole backlog applied. */
  readonly catchUpSeconds: number;
  readonly documentsPerSecond: number;
  /** `SearchRuntime.start` (Init's share: model already loaded), ms. */
  readonly initMs: number;
  /** How much of the backlog Init had applied when it returned. */
  readonly appliedAtInit: number;
  /** Calls a catch-up makes on AWS (pages of 1,000, BatchGets of 100, one chunk Query per document, 16 in flight) × latency. */
  readonly projectedAwsSeconds: number;
}

export interface QueryDuringLoadResult {
  readonly idleMs: Percentiles;
  readonly duringLoadMs: Percentiles;
  readonly loadDocuments: number;
  readonly loadPerSecond: number;
  readonly queries: number;
}

/**
 * The Build step's snapshot writer alone (local files, synthetic clustered 512-d vectors, no
 * emulator): a full build (fresh HNSW graph, tuned for the recall target) against the
 * incremental one after 1% of the rows changed (the previous graph updated, recall re-measured).
 */
export interface WriterResult {
  readonly chunks: number;
  readonly dimensions: number;
  readonly fullSeconds: number;
  /** Of which choosing ef for the recall target. */
  readonly fullTuningSeconds: number;
  readonly fullExpansionSearch: number;
  readonly changedRows: number;
  readonly incrementalSeconds: number;
  /** Of which measuring held-out recall again (and widening ef if needed). */
  readonly incrementalRecallSeconds: number;
  readonly incrementalExpansionSearch: number;
  /** `updated`: the previous graph was reused; `built`: the writer fell back to a fresh one. */
  readonly graph: 'updated' | 'built';
  readonly heldOutRecall: number;
  /** incremental ÷ full. */
  readonly ratioToFull: number;
  /** The full build's snapshot on disk, bytes. */
  readonly snapshotBytes: number;
  /** VmHWM during each build (reset before it), MiB; the corpus arrays included. */
  readonly fullPeakRssMib: number;
  readonly incrementalPeakRssMib: number;
}

/** Dense search over a delta of `chunks`: brute force against the in-memory HNSW index. */
export interface DeltaSearchResult {
  readonly chunks: number;
  readonly dimensions: number;
  readonly exactMs: number;
  readonly annMs: number;
  /** Of the exact top-10, how many the ANN path returned. */
  readonly recallAt10: number;
}

/** A full rebuild (Snapshot + Build steps) of a table of one-chunk documents. */
export interface RebuildResult {
  readonly chunks: number;
  readonly snapshotSeconds: number;
  readonly buildSeconds: number;
  /** The process's resident set high-water mark during each step (VmHWM, reset before it), MiB. */
  readonly snapshotPeakRssMib: number;
  readonly buildPeakRssMib: number;
  /** Resident set before the steps (the bench process itself), MiB. */
  readonly baselineRssMib: number;
  /** Local disk the build needs: the snapshot it writes (the export streams from S3), bytes. */
  readonly buildTmpBytes: number;
  /** Snapshot export: BatchGets of 100 + one chunk Query per document at 32 in flight, × latency, on AWS. */
  readonly projectedAwsSnapshotSeconds: number;
  /** The incremental run after 1% of the documents changed (re-written and announced). */
  readonly incremental: {
    readonly changedDocuments: number;
    readonly snapshotSeconds: number;
    readonly buildSeconds: number;
    readonly buildPeakRssMib: number;
    /** (incremental snapshot + build) ÷ (full snapshot + build). */
    readonly ratioToFull: number;
    /** How Build made the graph: `updated` from the full version's, or `built` afresh. */
    readonly graph: string;
    /**
     * Reading the full version's `chunks.jsonl` and `vectors.f32` from the local S3 once, as the
     * incremental Build streams them: the emulator's share of that Build, seconds.
     */
    readonly baseReadSeconds: number;
    readonly projectedAwsSnapshotSeconds: number;
  };
}

export interface ScaleResults {
  readonly latencyMs: number;
  readonly rebuild: RebuildResult[];
  /** The snapshot writer alone, full against incremental (`--scale-parts writer`). */
  readonly writer?: WriterResult[];
  readonly deltaSearch: DeltaSearchResult[];
  readonly announce: AnnounceResult[];
  readonly catchUp: CatchUpResult[];
  /** Absent when the run left the bulk load out (`loadDocuments` 0, `--scale-parts`). */
  readonly queryDuringLoad?: QueryDuringLoadResult;
  /** Parts of the scale issue this section does not measure yet, and why. */
  readonly notMeasured: string[];
}

export interface ScaleOptions {
  readonly modelDirectory: string;
  readonly latencyMs?: number;
  readonly announcements: number;
  readonly encoderCounts: number[];
  readonly backlogs: number[];
  readonly loadDocuments: number;
  readonly queries: number;
  readonly deltaSizes: number[];
  /** Table sizes (one-chunk documents) of the full-rebuild measurement. */
  readonly rebuildSizes: number[];
  /** Row counts of the writer-alone measurement (full against incremental Build). */
  readonly writerSizes: number[];
}

/** VmHWM of this process, MiB (Linux); 0 elsewhere. */
function peakRssMib(): number {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    return match ? Number(match[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** Reset VmHWM to the current resident set (Linux: `5` to clear_refs), so the next peak is a step's own. */
function resetPeakRss(): void {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
  } catch {
    // Not Linux, or not allowed: the peak then includes earlier work.
  }
}

/**
 * Full rebuilds through the real Snapshot and Build steps: the table on dynalite with modelled
 * latency, the export and the version on s3rver, one-chunk documents with clustered 512-d vectors.
 */
export async function benchRebuild(
  sizes: readonly number[],
  options: { latencyMs: number; dimensions: number; work: string },
): Promise<RebuildResult[]> {
  const rows: RebuildResult[] = [];
  for (const size of sizes) {
    const aws = await startLocalAws();
    try {
      const fast = new SearchTable(dynamoDocumentClient(aws.connection), aws.names.tableName);
      const slow = new SearchTable(
        dynamoDocumentClient({ ...aws.connection, latencyMs: options.latencyMs }),
        aws.names.tableName,
      );
      progress(`scale: seeding ${size} documents for a full rebuild`);
      await fast.ensureEmbeddingSpace({
        modelId: 'synthetic',
        dimensions: options.dimensions,
        pooling: 'mean',
        normalized: true,
      });
      await seedDocuments(fast, {
        prefix: 'corpus',
        count: size,
        dimensions: options.dimensions,
        concurrency: 32,
      });
      const indexBucket = new IndexBucket(s3Client(aws.connection), aws.names.indexBucket);
      const steps = new ReindexSteps({
        table: slow,
        indexBucket,
        workDirectory: join(options.work, `rebuild-${size}`),
      });
      const baselineRssMib = process.memoryUsage().rss / 2 ** 20;
      resetPeakRss();
      let started = performance.now();
      const snapshot = await steps.snapshot({ executionName: `bench-${size}` });
      const snapshotSeconds = (performance.now() - started) / 1000;
      const snapshotPeakRssMib = peakRssMib();
      resetPeakRss();
      started = performance.now();
      const built = await steps.build(snapshot);
      const buildSeconds = (performance.now() - started) / 1000;
      const buildPeakRssMib = peakRssMib();
      const manifest = JSON.parse(await indexBucket.getText(`${built.prefix}${MANIFEST_FILE}`)) as {
        files: Record<string, { bytes: number }>;
      };
      const buildTmpBytes = Object.values(manifest.files).reduce((sum, file) => sum + file.bytes, 0);
      const calls = Math.ceil(size / 100) + size / 32;
      // Serve the full version, change 1% of the documents, and rebuild incrementally from it.
      await steps.swap(built);
      const changed = Math.max(1, Math.round(size / 100));
      progress(`scale: changing ${changed} documents for an incremental rebuild`);
      await seedDocuments(fast, {
        prefix: 'corpus',
        count: changed,
        dimensions: options.dimensions,
        concurrency: 32,
      });
      started = performance.now();
      const incrementalSnapshot = await steps.snapshot({ executionName: `bench-${size}-incremental` });
      const incrementalSnapshotSeconds = (performance.now() - started) / 1000;
      if (incrementalSnapshot.mode !== 'incremental')
        throw new Error(
          `the rebuild after 1% changes was ${incrementalSnapshot.mode}: ${incrementalSnapshot.fullReason}`,
        );
      resetPeakRss();
      started = performance.now();
      const incrementalBuilt = await steps.build(incrementalSnapshot);
      const incrementalBuildSeconds = (performance.now() - started) / 1000;
      const incrementalBuildPeakRssMib = peakRssMib();
      started = performance.now();
      for await (const _piece of indexBucket.readBytes(`${built.prefix}${SNAPSHOT_FILES.vectors}`));
      for await (const _line of indexBucket.readLines(`${built.prefix}${SNAPSHOT_FILES.chunks}`));
      const baseReadSeconds = (performance.now() - started) / 1000;
      // Change-log pages of 1,000 + BatchGets of 100 + one chunk Query per changed document.
      const incrementalCalls = Math.ceil(changed / 1_000) + Math.ceil(changed / 100) + changed / 32;
      rows.push({
        chunks: snapshot.chunks ?? 0,
        snapshotSeconds,
        buildSeconds,
        snapshotPeakRssMib,
        buildPeakRssMib,
        baselineRssMib,
        buildTmpBytes,
        projectedAwsSnapshotSeconds: (calls * options.latencyMs) / 1000,
        incremental: {
          changedDocuments: incrementalSnapshot.changedDocuments ?? 0,
          snapshotSeconds: incrementalSnapshotSeconds,
          buildSeconds: incrementalBuildSeconds,
          buildPeakRssMib: incrementalBuildPeakRssMib,
          ratioToFull:
            (incrementalSnapshotSeconds + incrementalBuildSeconds) / (snapshotSeconds + buildSeconds),
          graph: incrementalBuilt.graph ?? 'built',
          baseReadSeconds,
          projectedAwsSnapshotSeconds: (incrementalCalls * options.latencyMs) / 1000,
        },
      });
      progress(
        `scale: rebuild of ${size}: snapshot ${snapshotSeconds.toFixed(1)} s, build ${buildSeconds.toFixed(1)} s, build peak RSS ${buildPeakRssMib.toFixed(0)} MiB, /tmp ${(buildTmpBytes / 2 ** 20).toFixed(0)} MiB; incremental after ${changed} changes: snapshot ${incrementalSnapshotSeconds.toFixed(1)} s, build ${incrementalBuildSeconds.toFixed(1)} s (graph ${incrementalBuilt.graph}; reading the base from the local S3 alone ${baseReadSeconds.toFixed(1)} s)`,
      );
    } finally {
      await aws.stop();
    }
  }
  return rows;
}

/**
 * Brute force against ANN over deltas of each size: 512-dimensional unit vectors in 1,000
 * clusters (see `clusteredVector`), queries near the same centres.
 */
export function benchDeltaSearch(sizes: readonly number[]): DeltaSearchResult[] {
  const dimensions = 512;
  const rows: DeltaSearchResult[] = [];
  for (const chunks of sizes) {
    const exact = new DeltaLayer(0, LexicalIndex.create(), () => []);
    const ann = new DeltaLayer(0, LexicalIndex.create(), () => [], {
      create: () => new InMemoryHnswIndex(dimensions),
      minChunks: 0,
    });
    for (let n = 0; n < chunks; n += 1) {
      const chunk = {
        chunkId: `d${n}#0`,
        docId: `d${n}`,
        ordinal: 0,
        text: `d${n}`,
        metadata: {},
        contentHash: `h${n}`,
        vector: clusteredVector(n, dimensions),
      };
      exact.applyDocument(chunk.docId, [chunk], n + 1);
      ann.applyDocument(chunk.docId, [chunk], n + 1);
    }
    const queries = Array.from({ length: 30 }, (_, q) => clusteredVector(1_000_000 + q * 37, dimensions));
    const time = (delta: DeltaLayer) => {
      const started = performance.now();
      for (const query of queries) delta.searchDense(query, 10);
      return (performance.now() - started) / queries.length;
    };
    time(exact);
    time(ann);
    let found = 0;
    for (const query of queries) {
      const truth = new Set(exact.searchDense(query, 10).map((hit) => hit.chunk.chunkId));
      for (const hit of ann.searchDense(query, 10)) if (truth.has(hit.chunk.chunkId)) found += 1;
    }
    rows.push({
      chunks,
      dimensions,
      exactMs: time(exact),
      annMs: time(ann),
      recallAt10: found / (queries.length * 10),
    });
    progress(
      `scale: delta of ${chunks} chunks: exact ${rows.at(-1)?.exactMs.toFixed(2)} ms, ANN ${rows.at(-1)?.annMs.toFixed(2)} ms`,
    );
  }
  return rows;
}

/** Full against incremental Build, the snapshot writer alone, at each of `sizes` rows. */
export async function benchWriter(sizes: number[], work: string): Promise<WriterResult[]> {
  const dimensions = 512;
  const space = { modelId: 'synthetic', dimensions, pooling: 'mean', normalized: true } as const;
  const chunkOf = (n: number, seed: number): EmbeddedChunk => {
    const docId = `corpus-${String(n).padStart(8, '0')}`;
    return {
      chunkId: `${docId}#0`,
      docId,
      ordinal: 0,
      text: `Synthetic document corpusword${n} for the writer benchmark.`,
      metadata: {},
      contentHash: String(seed),
      vector: clusteredVector(seed, dimensions),
    };
  };
  const rows: WriterResult[] = [];
  for (const chunks of sizes) {
    const parent = mkdtempSync(join(work, `writer-${chunks}-`));
    try {
      const base = Array.from({ length: chunks }, (_, n) => chunkOf(n, n));
      resetPeakRss();
      let started = performance.now();
      const full = await writeSortedSnapshot(join(parent, 'full'), { chunks: base, space });
      const fullSeconds = (performance.now() - started) / 1000;
      const fullPeakRssMib = peakRssMib();
      progress(`scale: writer ${chunks}: full build ${fullSeconds.toFixed(1)} s`);
      // 1% of the rows re-embedded (new vectors), as the incremental bench's changed documents.
      const next = base.map((chunk, n) => (n % 100 === 0 ? chunkOf(n, 10_000_000 + n) : chunk));
      const rowOf = new WeakMap(base.map((chunk, row) => [chunk, row] as [EmbeddedChunk, number]));
      resetPeakRss();
      started = performance.now();
      const incremental = await writeSortedSnapshot(join(parent, 'incremental'), {
        chunks: next,
        space,
        reuseGraph: {
          indexPath: join(full.directory, SNAPSHOT_FILES.vectorIndex),
          manifest: full.manifest,
          rowKeys: undefined,
          baseRowOf: (chunk) => rowOf.get(chunk),
        },
      });
      const incrementalSeconds = (performance.now() - started) / 1000;
      rows.push({
        chunks,
        dimensions,
        fullSeconds,
        fullTuningSeconds: full.manifest.recall?.seconds ?? 0,
        fullExpansionSearch: full.manifest.index.expansionSearch,
        changedRows: Math.ceil(chunks / 100),
        incrementalSeconds,
        incrementalRecallSeconds: incremental.manifest.recall?.seconds ?? 0,
        incrementalExpansionSearch: incremental.manifest.index.expansionSearch,
        graph: incremental.manifest.hnswKeys ? 'updated' : 'built',
        heldOutRecall: incremental.manifest.recall?.heldOut.recall ?? Number.NaN,
        ratioToFull: incrementalSeconds / fullSeconds,
        snapshotBytes: Object.values(full.manifest.files).reduce(
          (sum, file) => sum + (file as { bytes: number }).bytes,
          0,
        ),
        fullPeakRssMib,
        incrementalPeakRssMib: peakRssMib(),
      });
      progress(
        `scale: writer ${chunks}: incremental ${incrementalSeconds.toFixed(1)} s (${rows.at(-1)?.graph}, ${rows.at(-1)?.ratioToFull.toFixed(2)} of full)`,
      );
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  }
  return rows;
}

/** dynalite in a process of its own with the stack's table (probes/dynamodb-server.ts). */
async function startDynamoDbProcess(tableName: string): Promise<{ port: number; stop: () => void }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', resolve('test/bench/probes/dynamodb-server.ts'), tableName],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const port = await new Promise<number>((done, fail) => {
    child.stdout.once('data', (data: Buffer) => done(JSON.parse(data.toString()).port));
    child.once('exit', (code) => fail(new Error(`dynalite exited with ${code}`)));
  });
  return { port, stop: () => child.kill('SIGTERM') };
}

/** One item sustains about 1,000 writes/s (DynamoDB's per-partition write limit). */
const COUNTER_ITEM_WRITES_PER_SECOND = 1_000;

export async function benchScale(options: ScaleOptions): Promise<ScaleResults> {
  const latencyMs = options.latencyMs ?? 5;
  const embedder = await OnnxEmbedder.load(options.modelDirectory);
  const dimensions = embedder.space.dimensions;
  const work = mkdtempSync(join(tmpdir(), 'bisearch-bench-scale-'));
  const emulators: LocalAws[] = [];
  const fresh = async () => {
    const aws = await startLocalAws();
    emulators.push(aws);
    const table = (latency: number) =>
      new SearchTable(dynamoDocumentClient({ ...aws.connection, latencyMs: latency }), aws.names.tableName);
    return { aws, fast: table(0), slow: table(latencyMs) };
  };
  const runtimeOn = (aws: LocalAws, table: SearchTable, name: string) =>
    SearchRuntime.start({
      table,
      indexBucket: new IndexBucket(s3Client(aws.connection), aws.names.indexBucket),
      embedder,
      workDirectory: join(work, name),
    });
  /** Query latency while a bulk load is announced, against the same runtime idle. */
  const measureQueryDuringLoad = async ({
    aws,
    fast,
    slow,
  }: Awaited<ReturnType<typeof fresh>>): Promise<QueryDuringLoadResult> => {
    await seedDocuments(fast, { prefix: 'base', count: 200, dimensions, concurrency: 16 });
    const runtime = await runtimeOn(aws, slow, 'during-load');
    const sample = async (count: number) => {
      const latencies: number[] = [];
      for (let n = 0; n < count; n += 1) {
        const started = performance.now();
        await runtime.search({ query: `baseword${n % 200}`, mode: 'lexical', k: 10 });
        latencies.push(performance.now() - started);
        await sleep(5);
      }
      return latencies;
    };
    const idle = await sample(options.queries);
    const loadStarted = performance.now();
    let loading = true;
    const load = seedDocuments(slow, {
      prefix: 'bulk',
      count: options.loadDocuments,
      dimensions,
      concurrency: 32,
    }).finally(() => {
      loading = false;
    });
    const during: number[] = [];
    while (loading) during.push(...(await sample(10)));
    await load;
    const loadSeconds = (performance.now() - loadStarted) / 1000;
    progress(`scale: ${during.length} queries during a load of ${options.loadDocuments} documents`);
    return {
      idleMs: percentiles(idle),
      duringLoadMs: percentiles(during),
      loadDocuments: options.loadDocuments,
      loadPerSecond: options.loadDocuments / loadSeconds,
      queries: during.length,
    };
  };
  try {
    const deltaSearch = benchDeltaSearch(options.deltaSizes);
    const rebuild = await benchRebuild(options.rebuildSizes, { latencyMs, dimensions, work });
    const writer = await benchWriter(options.writerSizes, work);
    const announce: AnnounceResult[] = [];
    for (const encoders of options.encoderCounts) {
      // DynamoDB in a process of its own: on AWS the service does not share the encoders' CPU.
      const dynamodb = await startDynamoDbProcess('bench-announce');
      const slow = new SearchTable(
        dynamoDocumentClient({
          region: 'us-east-1',
          credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
          endpoints: { dynamodb: `http://127.0.0.1:${dynamodb.port}` },
          latencyMs,
        }),
        'bench-announce',
      );
      let failures = 0;
      let next = 0;
      const started = performance.now();
      await Promise.all(
        Array.from({ length: encoders }, async () => {
          for (let n = next++; n < options.announcements; n = next++)
            await slow.announce(`doc-${n}`).catch(() => {
              failures += 1;
            });
        }),
      );
      const seconds = (performance.now() - started) / 1000;
      announce.push({
        encoders,
        announcements: options.announcements,
        seconds,
        perSecond: options.announcements / seconds,
        failures,
        projectedAwsPerSecond: Math.min(COUNTER_ITEM_WRITES_PER_SECOND, (encoders * 1000) / (2 * latencyMs)),
      });
      progress(
        `scale: ${encoders} encoders announced ${options.announcements} in ${seconds.toFixed(1)} s (${failures} failures)`,
      );
      dynamodb.stop();
    }

    const catchUp: CatchUpResult[] = [];
    for (const backlog of options.backlogs) {
      const { aws, fast, slow } = await fresh();
      progress(`scale: seeding a backlog of ${backlog} documents`);
      await seedDocuments(fast, { prefix: 'backlog', count: backlog, dimensions, concurrency: 16 });
      const started = performance.now();
      const runtime = await runtimeOn(aws, slow, `catch-up-${backlog}`);
      const initMs = performance.now() - started;
      const appliedAtInit = runtime.health().freshness.sequence;
      while (runtime.health().freshness.sequence < backlog) {
        // Lambda runs code only during invocations: requests keep the catch-up going.
        await runtime.search({ query: 'backlogword1', mode: 'lexical', k: 1 });
        await sleep(20);
      }
      const catchUpSeconds = (performance.now() - started) / 1000;
      const calls = Math.ceil(backlog / 1_000) + Math.ceil(backlog / 100) + backlog / 16;
      catchUp.push({
        backlog,
        catchUpSeconds,
        documentsPerSecond: backlog / catchUpSeconds,
        initMs,
        appliedAtInit,
        projectedAwsSeconds: (calls * latencyMs) / 1000,
      });
      progress(
        `scale: backlog ${backlog}: Init ${initMs.toFixed(0)} ms (${appliedAtInit} applied), all applied after ${catchUpSeconds.toFixed(1)} s`,
      );
      await aws.stop();
      emulators.pop();
    }

    const queryDuringLoad =
      options.loadDocuments > 0 ? await measureQueryDuringLoad(await fresh()) : undefined;
    return {
      latencyMs,
      rebuild,
      writer,
      deltaSearch,
      announce,
      catchUp,
      ...(queryDuringLoad ? { queryDuringLoad } : {}),
      notMeasured: [
        'a full rebuild at 1M chunks here (2 shared cores): projected from the measured sizes in the README',
      ],
    };
  } finally {
    await embedder.dispose();
    for (const aws of emulators) await aws.stop();
    rmSync(work, { recursive: true, force: true });
  }
}
