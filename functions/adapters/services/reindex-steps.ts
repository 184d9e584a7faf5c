import { createHash } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type BuildCompute,
  BuildComputeUnavailable,
  chooseBuildCompute,
  estimatedBytesPerChunk,
  measuredBytesPerChunk,
} from '../../core/build-compute.js';
import type { Chunk } from '../../core/chunking.js';
import type { EmbeddedChunk } from '../../core/delta.js';
import { assertSameEmbeddingSpace, type EmbeddingSpace } from '../../core/embedding-space.js';
import { SnapshotIntegrityError } from '../../core/errors.js';
import {
  HNSW_KEYS_FILE,
  MANIFEST_FILE,
  parseSnapshotManifest,
  SNAPSHOT_FILES,
  type SnapshotManifest,
} from '../../core/snapshot-manifest.js';
import { type DocumentChange, mergeDocumentChanges } from '../../core/snapshot-merge.js';
import {
  DEFAULT_RECALL_TARGET,
  type RecallTargetOptions,
  recallVerdict,
} from '../../core/snapshot-validation.js';
import { EXPORTS_PREFIX, IndexBucket } from '../aws/index-bucket.js';
import {
  CHANGE_LOG_RETENTION_SECONDS,
  type DocumentVersion,
  type IndexVersionRecord,
  PointerConflictError,
  type SearchTable,
} from '../aws/search-table.js';
import { measureServingRecall } from '../index/recall-tuning.js';
import {
  FileSnapshot,
  type GraphReuse,
  readAllRows,
  readRowKeys,
  writeSortedSnapshot,
} from '../index/snapshot-files.js';
import type { HnswSettings } from '../index/usearch-index.js';

/** A version failed validation (checksums, embedding space, counts or recall). Not retried. */
export class SnapshotValidationFailed extends Error {
  override readonly name = 'SnapshotValidationFailed';
}
/** Nothing was ever embedded: there is no embedding space to build an index for. Not retried. */
export class NothingToIndex extends Error {
  override readonly name = 'NothingToIndex';
}
/** Another reindex swapped the pointer first. Not retried. */
export class PointerConflict extends Error {
  override readonly name = 'PointerConflict';
}

/**
 * The Fargate build task stopped without writing its result: it crashed, ran out of memory or
 * storage, or was stopped. Its logs (the task's log group) say which. Not retried.
 */
export class ReindexTaskLost extends Error {
  override readonly name = 'ReindexTaskLost';
}

/** Error names the state machine must not retry: retrying cannot change their outcome. */
export const TERMINAL_REINDEX_ERRORS = [
  'SnapshotValidationFailed',
  'NothingToIndex',
  'PointerConflict',
  'BuildComputeUnavailable',
  'ReindexTaskLost',
] as const;

export { BuildComputeUnavailable };

/** Where the Fargate task writes what its steps returned (or the error that stopped them). */
export function taskResultKey(executionName: string): string {
  return `${EXPORTS_PREFIX}${executionName}/task-result.json`;
}

/** The Fargate task's result object: the state after its steps, or the error that stopped them. */
export type ReindexTaskResult =
  | { readonly ok: true; readonly state: ReindexState }
  | { readonly ok: false; readonly error: { readonly name: string; readonly message: string } };

/**
 * Error names the state machine retries: transient by nature (the Lambda service's own errors,
 * throttling, 5xx of AWS services, network timeouts of the SDK). Everything else — a step's
 * own timeout (States.Timeout, Sandbox.Timedout), running out of /tmp (ENOSPC) or memory, a
 * failed validation, a lost swap race, a bug — fails the same way when retried, and is not.
 */
export const TRANSIENT_REINDEX_ERRORS = [
  'Lambda.ServiceException',
  'Lambda.AWSLambdaException',
  'Lambda.SdkClientException',
  'Lambda.TooManyRequestsException',
  'ThrottlingException',
  'Throttling',
  'TooManyRequestsException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'SlowDown',
  'InternalError',
  'InternalServerError',
  'ServiceUnavailable',
  'RequestTimeout',
  'TimeoutError',
] as const;

/** The JSON passed from state to state (plain JSON: Step Functions payloads). */
export interface ReindexState {
  readonly executionName: string;
  readonly watermark?: number;
  readonly exportKey?: string;
  readonly chunks?: number;
  readonly documents?: number;
  readonly space?: EmbeddingSpace;
  /** The pointer's version when the snapshot was frozen; the swap only happens if it is unchanged. */
  readonly expectedCurrent?: IndexVersionRecord | null;
  readonly version?: string;
  readonly prefix?: string;
  readonly builtAt?: string;
  /** ANN recall@10 Validate measured on its own held-out queries at the version's ef. */
  readonly recall?: number;
  /** The version's search ef (chosen by Build for `recallTarget`, see snapshot manifest `recall`). */
  readonly expansionSearch?: number;
  /** The recall@10 target Build tuned for; absent when tuning was off. */
  readonly recallTarget?: number;
  readonly pruned?: string[];
  /**
   * `incremental`: the export holds only the documents changed since `base`'s watermark, and
   * Build merges them into `base`'s rows; `full`: the export holds every live document.
   */
  readonly mode?: 'full' | 'incremental';
  /** Why this run is a full rebuild (forced, no previous version, too many changes, …). */
  readonly fullReason?: string;
  /** The version an incremental run starts from. */
  readonly base?: { readonly version: string; readonly prefix: string; readonly watermark: number };
  /** Documents in an incremental export (changed, added or removed since the base). */
  readonly changedDocuments?: number;
  /**
   * How Build made the HNSW graph: `updated` from the base version's (incremental, see
   * GraphReuse), or `built` afresh (every full rebuild, and incremental ones past the removed
   * share or whose updated graph missed the recall target).
   */
  readonly graph?: 'updated' | 'built';
  /**
   * Where Build and Validate run (Snapshot decides, see chooseBuildCompute): `lambda`, or
   * `fargate` (one ECS task runs both) when the version would not fit a Lambda with 2× margin.
   */
  readonly buildCompute?: BuildCompute;
  /** Why that compute, in words. */
  readonly buildComputeReason?: string;
}

/** What starts a reindex: the state machine passes its execution input as `request`. */
export interface ReindexRequest {
  readonly executionName: string;
  /**
   * The execution input: `{"full": true}` forces a full rebuild; `{"buildOn": "fargate"}` (or
   * `"lambda"`) overrides where Build and Validate run.
   */
  readonly request?: { readonly full?: boolean; readonly buildOn?: BuildCompute } | null;
}

/**
 * Largest share of the base version's documents an incremental run may re-export (default 0.2):
 * past it a full export costs about the same, and a full rebuild starts from the table alone.
 */
export const DEFAULT_INCREMENTAL_MAX_CHANGED_FRACTION = 0.2;

export interface ReindexStepOptions {
  readonly table: SearchTable;
  readonly indexBucket: IndexBucket;
  /** Local scratch directory (Lambda: under /tmp, sized by ephemeral storage). */
  readonly workDirectory: string;
  readonly hnsw?: Partial<HnswSettings>;
  /** Versions kept by prune, besides current and previous. Default 3. */
  readonly keepVersions?: number;
  /**
   * Floor of HNSW recall@10 against exact search, also for builds without a target (a corrupt
   * graph shows up here even when checksums match). Default 0.95.
   */
  readonly minRecall?: number;
  /**
   * Recall target Build tunes the search ef for (see writeTunedHnswIndex; defaults
   * DEFAULT_RECALL_TARGET: 0.98 at k 10, ef 64–1024, connectivity up to 32); `false` keeps the
   * configured ef. Validate refuses a version that missed it.
   */
  readonly recallTarget?: Partial<RecallTargetOptions> | false;
  /** Held-out queries Validate measures recall on. Default the target's `queries` (500). */
  readonly recallSamples?: number;
  /** Parallel scan segments of the export's id listing. Default 8. */
  readonly scanSegments?: number;
  /**
   * Incremental reindex: when a current version exists, export only the documents changed since
   * its watermark and merge them into its rows (`false`: every run is a full rebuild).
   * `maxChangedFraction` default {@link DEFAULT_INCREMENTAL_MAX_CHANGED_FRACTION}.
   */
  readonly incremental?: { readonly maxChangedFraction?: number } | false;
  /**
   * How long an incremental Snapshot waits for change-log entries whose sequence was taken but
   * not yet written, before it rebuilds in full. Default 5,000 ms.
   */
  readonly changeLogHoleGraceMs?: number;
  /**
   * Share of removed graph keys (since the last fresh graph) past which an incremental Build
   * builds a fresh HNSW graph instead of updating the previous one. Default 0.2.
   */
  readonly maxRemovedFraction?: number;
  /**
   * Where Build and Validate may run: the Build Lambda's `/tmp` (MB) and chunk bound, and whether
   * the deployment has the Fargate task (see chooseBuildCompute). Default: always the Lambdas.
   */
  readonly buildCompute?: {
    readonly lambdaTmpMb: number;
    readonly lambdaMaxChunks?: number;
    readonly fargateAvailable: boolean;
  };
  /** Milliseconds since the epoch (tests advance it); default `Date.now`. */
  readonly clock?: () => number;
  /** Progress lines of long steps (the handler passes its logger). */
  readonly log?: (message: string, fields: Record<string, unknown>) => void;
}

/** Documents read per batch by the export (one BatchGetItem per 100, chunk queries in parallel). */
export const EXPORT_BATCH_DOCUMENTS = 500;
/** Chunk queries in flight during the export. */
export const EXPORT_READ_PARALLELISM = 32;

/** One chunk of the export: its record with the float32 vector in base64. */
function exportLine(chunk: EmbeddedChunk): string {
  return `${JSON.stringify(exportedChunk(chunk))}\n`;
}

/** A chunk as the export holds it: its record with the float32 vector in base64. */
function exportedChunk({ vector, ...record }: EmbeddedChunk): ExportedChunk {
  return {
    ...record,
    vector: Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).toString('base64'),
  };
}

function parseExportLine(line: string): EmbeddedChunk {
  return parseExportedChunk(JSON.parse(line) as ExportedChunk);
}

type ExportedChunk = Omit<EmbeddedChunk, 'vector'> & { vector: string };

function parseExportedChunk({ vector, ...record }: ExportedChunk): EmbeddedChunk {
  const bytes = Buffer.from(vector, 'base64');
  const floats = new Float32Array(bytes.byteLength / 4);
  new Uint8Array(floats.buffer).set(bytes);
  return { ...record, vector: floats };
}

/** One document of an incremental export: `{"docId", "chunks": [exported chunk…]}` (no chunks: removed). */
function changeLine(docId: string, chunks: readonly EmbeddedChunk[]): string {
  return `${JSON.stringify({ docId, chunks: chunks.map(exportedChunk) })}\n`;
}

function parseChangeLine(line: string): DocumentChange {
  const { docId, chunks } = JSON.parse(line) as { docId: string; chunks: ExportedChunk[] };
  return { docId, chunks: chunks.map(parseExportedChunk) };
}

/**
 * The chunks of a published version in row order, streamed from S3: `chunks.jsonl` and
 * `vectors.f32` read side by side (nothing on `/tmp`), both hashed on the way and checked against
 * the manifest at the end, so a damaged base fails the build instead of reaching a new version.
 */
async function* versionChunks(
  indexBucket: IndexBucket,
  prefix: string,
  manifest: SnapshotManifest,
  rowOf?: WeakMap<EmbeddedChunk, number>,
): AsyncGenerator<EmbeddedChunk> {
  const rowBytes = manifest.embedding.dimensions * 4;
  const recordsHash = createHash('sha256');
  const vectorsHash = createHash('sha256');
  const vectors = indexBucket.readBytes(`${prefix}${SNAPSHOT_FILES.vectors}`);
  let pending: Buffer = Buffer.alloc(0);
  const nextVector = async (): Promise<Float32Array> => {
    while (pending.length < rowBytes) {
      const piece = await vectors.next();
      if (piece.done) throw new SnapshotIntegrityError(`${prefix}: ${SNAPSHOT_FILES.vectors} ends early`);
      vectorsHash.update(piece.value);
      pending = pending.length === 0 ? piece.value : Buffer.concat([pending, piece.value]);
    }
    const vector = new Float32Array(manifest.embedding.dimensions);
    new Uint8Array(vector.buffer).set(pending.subarray(0, rowBytes));
    pending = pending.subarray(rowBytes);
    return vector;
  };
  let rows = 0;
  for await (const line of indexBucket.readLines(`${prefix}${SNAPSHOT_FILES.chunks}`)) {
    recordsHash.update(`${line}\n`);
    const chunk: EmbeddedChunk = { ...(JSON.parse(line) as Chunk), vector: await nextVector() };
    // The merge passes an unchanged chunk on as this very object: its row is found again by it.
    rowOf?.set(chunk, rows);
    yield chunk;
    rows += 1;
  }
  for (let piece = await vectors.next(); !piece.done; piece = await vectors.next()) {
    vectorsHash.update(piece.value);
    pending = Buffer.concat([pending, piece.value]);
  }
  const expected = manifest.files;
  if (
    rows !== manifest.counts.chunks ||
    pending.length !== 0 ||
    recordsHash.digest('hex') !== expected[SNAPSHOT_FILES.chunks]?.sha256 ||
    vectorsHash.digest('hex') !== expected[SNAPSHOT_FILES.vectors]?.sha256
  )
    throw new SnapshotIntegrityError(
      `${prefix}: the base version's records or vectors differ from its manifest (${rows} rows read)`,
    );
}

function required<T>(value: T | undefined | null, name: string): T {
  if (value === undefined || value === null) throw new Error(`reindex state is missing ${name}`);
  return value;
}

/**
 * The steps of the reindex state machine: snapshot → build → validate → swap → prune, and the
 * failure recorder its Catch clauses lead to. Each takes and returns plain JSON; each can be rerun.
 */
export class ReindexSteps {
  constructor(private readonly options: ReindexStepOptions) {}

  /**
   * Freeze a watermark (the latest change-log sequence) and export what the new version needs:
   * with a current version to start from ({@link ReindexSteps.incrementalBase}), only the
   * documents the change log names since its watermark (`mode: 'incremental'`, cost proportional
   * to the changes); otherwise every live document's chunks (`mode: 'full'`, and `fullReason`
   * says why). Every change up to the watermark is in the export (statuses are written before
   * the entries that announce them); later changes may be too, and the delta re-applies them.
   *
   * Full export cost: a parallel scan of the status items for the ids, then batches of
   * {@link EXPORT_BATCH_DOCUMENTS} documents read with BatchGetItem and
   * {@link EXPORT_READ_PARALLELISM} parallel chunk queries, the next batch read while the current
   * one is written. Either export streams to S3 as a multipart upload: no `/tmp`.
   */
  async snapshot(input: ReindexRequest): Promise<ReindexState> {
    const { table } = this.options;
    // A request the run cannot honour fails before the export, not after it.
    this.checkBuildRequest(input);
    const space = await table.embeddingSpace();
    if (!space) throw new NothingToIndex('no document has been embedded yet; upload documents first');
    const watermark = await table.latestSequence();
    // Covers an entry whose writer died before raising the mark: TTL can never reach below it.
    await table.raiseSequenceHighWater(watermark);
    const pointer = await table.readPointer();
    const frozen = {
      executionName: input.executionName,
      watermark,
      space,
      expectedCurrent: pointer.current ?? null,
    };
    const plan = await this.incrementalBase(input, pointer.current, watermark, space);
    if ('changed' in plan) {
      const exportKey = `${EXPORTS_PREFIX}${input.executionName}/changes.jsonl`;
      const ids = [...plan.changed].sort();
      await this.exportDocuments(exportKey, ids, (docId, version) => {
        // Deleted, failed before any chunks, or never indexed: the base's copy goes.
        const live = version && version.status.status !== 'deleted' ? version.chunks : [];
        return changeLine(docId, live);
      });
      this.options.log?.('reindex snapshot incremental', {
        base: plan.base.version,
        changedDocuments: ids.length,
      });
      const { counts, files } = plan.manifest;
      const compute = this.chooseCompute(input, {
        // The merge's size is known in Build; the base's plus the changed share is close enough.
        chunks: Math.ceil(counts.chunks * (1 + ids.length / Math.max(1, counts.documents))),
        bytesPerChunk:
          measuredBytesPerChunk(files, counts.chunks) ?? estimatedBytesPerChunk(space.dimensions),
        incremental: true,
      });
      return {
        ...frozen,
        mode: 'incremental',
        exportKey,
        base: plan.base,
        changedDocuments: ids.length,
        ...compute,
      };
    }

    const ids = await table.liveDocumentIds(this.options.scanSegments ?? 8);
    const exportKey = `${EXPORTS_PREFIX}${input.executionName}/chunks.jsonl`;
    let chunks = 0;
    let documents = 0;
    await this.exportDocuments(
      exportKey,
      ids,
      (_docId, version) => {
        // Read again with its chunks, consistently: deleted since the scan, or never indexed.
        if (!version || version.status.status === 'deleted' || version.chunks.length === 0) return '';
        documents += 1;
        chunks += version.chunks.length;
        return [...version.chunks]
          .sort((a, b) => a.ordinal - b.ordinal)
          .map(exportLine)
          .join('');
      },
      () => ({ documents, chunks }),
    );
    this.options.log?.('reindex snapshot full', { reason: plan.fullReason, documents, chunks });
    // The current version's manifest, as the plan read it (or read now), gives bytes per chunk.
    const manifest = plan.manifest ?? (await this.currentManifest(pointer.current));
    const compute = this.chooseCompute(input, {
      chunks,
      bytesPerChunk:
        (manifest && measuredBytesPerChunk(manifest.files, manifest.counts.chunks)) ??
        estimatedBytesPerChunk(space.dimensions),
    });
    return { ...frozen, mode: 'full', fullReason: plan.fullReason, exportKey, chunks, documents, ...compute };
  }

  /** An execution input's `buildOn` must name a compute this deployment has. */
  private checkBuildRequest(input: ReindexRequest): void {
    const requested = input.request?.buildOn;
    if (requested !== undefined && requested !== 'lambda' && requested !== 'fargate')
      throw new BuildComputeUnavailable(
        `buildOn must be "lambda" or "fargate", got ${JSON.stringify(requested)}`,
      );
    if (requested === 'fargate' && !this.options.buildCompute?.fargateAvailable)
      throw new BuildComputeUnavailable('a Fargate build was requested, and this deployment has none');
  }

  /** Where Build and Validate run (see chooseBuildCompute); always Lambda without settings. */
  private chooseCompute(
    input: ReindexRequest,
    estimate: { chunks: number; bytesPerChunk: number; incremental?: boolean },
  ): Pick<ReindexState, 'buildCompute' | 'buildComputeReason'> {
    const settings = this.options.buildCompute;
    if (!settings) return { buildCompute: 'lambda', buildComputeReason: 'no Fargate build task configured' };
    const requested = input.request?.buildOn;
    const choice = chooseBuildCompute({ ...estimate, ...settings, ...(requested ? { requested } : {}) });
    this.options.log?.('reindex build compute', { ...choice, chunks: estimate.chunks });
    return { buildCompute: choice.compute, buildComputeReason: choice.reason };
  }

  /** The current version's manifest, if there is one and it can be read. */
  private async currentManifest(
    current: IndexVersionRecord | undefined,
  ): Promise<SnapshotManifest | undefined> {
    if (!current) return undefined;
    try {
      return parseSnapshotManifest(
        await this.options.indexBucket.getText(`${current.prefix}${MANIFEST_FILE}`),
        current.prefix,
      );
    } catch {
      return undefined;
    }
  }

  /**
   * Stream `ids`' current versions to `exportKey` as the lines `lineOf` makes of each: batches of
   * {@link EXPORT_BATCH_DOCUMENTS} read with {@link EXPORT_READ_PARALLELISM} chunk queries in
   * flight, the next batch read while one is written, a progress line per ~10,000 documents.
   */
  private async exportDocuments(
    exportKey: string,
    ids: readonly string[],
    lineOf: (docId: string, version: DocumentVersion | undefined) => string,
    counts: () => Record<string, number> = () => ({}),
  ): Promise<void> {
    const { table, indexBucket } = this.options;
    const read = (start: number) =>
      start < ids.length
        ? table.readDocuments(ids.slice(start, start + EXPORT_BATCH_DOCUMENTS), EXPORT_READ_PARALLELISM)
        : undefined;
    await indexBucket.putStream(exportKey, async (out) => {
      let next = read(0);
      for (let start = 0; next; start += EXPORT_BATCH_DOCUMENTS) {
        const versions = await next;
        next = read(start + EXPORT_BATCH_DOCUMENTS);
        const text = ids
          .slice(start, start + EXPORT_BATCH_DOCUMENTS)
          .map((docId) => lineOf(docId, versions.get(docId)))
          .join('');
        if (!out.write(text)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
        if ((start / EXPORT_BATCH_DOCUMENTS) % 20 === 19)
          this.options.log?.('reindex snapshot progress', {
            ...counts(),
            read: start + EXPORT_BATCH_DOCUMENTS,
            of: ids.length,
          });
      }
    });
  }

  /**
   * Whether this run can start from the current version, and the documents changed since its
   * watermark when it can. A full rebuild instead when: the request says `full`; incremental
   * runs are off; there is no current version; its embedding space is not the table's; the change
   * log no longer reaches back to its watermark (entries expire after 7 days: a version built
   * more than 6 days ago); or more than `maxChangedFraction` of its documents changed.
   */
  private async incrementalBase(
    input: ReindexRequest,
    current: IndexVersionRecord | undefined,
    watermark: number,
    space: EmbeddingSpace,
  ): Promise<
    | { changed: Set<string>; base: NonNullable<ReindexState['base']>; manifest: SnapshotManifest }
    | { fullReason: string; manifest?: SnapshotManifest }
  > {
    const { table, indexBucket } = this.options;
    const settings = this.options.incremental;
    if (input.request?.full === true) return { fullReason: 'requested' };
    if (settings === false) return { fullReason: 'incremental reindex is off' };
    if (!current) return { fullReason: 'no current version' };
    const now = (this.options.clock ?? Date.now)();
    const reach = (CHANGE_LOG_RETENTION_SECONDS - 24 * 3600) * 1000;
    if (now - Date.parse(current.builtAt) > reach)
      return { fullReason: `version ${current.version} is older than the change log's retention` };
    let manifest: SnapshotManifest;
    try {
      manifest = parseSnapshotManifest(
        await indexBucket.getText(`${current.prefix}${MANIFEST_FILE}`),
        current.prefix,
      );
      assertSameEmbeddingSpace(space, manifest.embedding, `version ${current.version}`);
    } catch (error) {
      return { fullReason: (error as Error).message };
    }
    const limit = Math.floor(
      manifest.counts.documents *
        ((settings ? settings.maxChangedFraction : undefined) ?? DEFAULT_INCREMENTAL_MAX_CHANGED_FRACTION),
    );
    const changed = new Set<string>();
    const seen = new Set<number>();
    const readEntries = async (from: number, to: number) => {
      for (let after = from; after < to; ) {
        const entries = await table.changesAfter(after, 1_000);
        if (entries.length === 0) break;
        for (const entry of entries)
          if (entry.sequence <= to) {
            changed.add(entry.docId);
            seen.add(entry.sequence);
          }
        after = (entries[entries.length - 1] as { sequence: number }).sequence;
        if (changed.size > limit) return false;
      }
      return true;
    };
    const tooMany = {
      manifest,
      fullReason: `more than ${limit} of version ${current.version}'s ${manifest.counts.documents} documents changed`,
    };
    if (!(await readEntries(current.watermark, watermark))) return tooMany;
    // A sequence below the watermark without its entry: a writer between taking it and writing
    // the entry, or one that died there. Its document is unknown, so it cannot be left out: wait
    // for late writers, then rebuild in full if the hole stays (the next run starts above it).
    const missing = () => {
      const holes: number[] = [];
      for (let sequence = current.watermark + 1; sequence <= watermark; sequence += 1)
        if (!seen.has(sequence)) holes.push(sequence);
      return holes;
    };
    let holes = missing();
    if (holes.length > 0) {
      await new Promise((resolve) => setTimeout(resolve, this.options.changeLogHoleGraceMs ?? 5_000));
      for (const hole of holes) if (!(await readEntries(hole - 1, hole))) return tooMany;
      holes = missing();
      if (holes.length > 0)
        return {
          manifest,
          fullReason: `the change log has no entry for ${holes.length} sequence(s) since version ${current.version} (first ${holes[0]}): a writer died between taking a sequence and writing it`,
        };
    }
    return {
      changed,
      base: { version: current.version, prefix: current.prefix, watermark: current.watermark },
      manifest,
    };
  }

  /**
   * Build a snapshot directory from the export, streamed from S3 straight into the snapshot
   * writer (no copy of the export in `/tmp`, no array of chunks), and upload it as a new version.
   */
  async build(input: ReindexState): Promise<ReindexState> {
    const exportKey = required(input.exportKey, 'exportKey');
    const space = required(input.space, 'space');
    const scratch = join(this.options.workDirectory, `build-${input.executionName}`);
    await rm(scratch, { recursive: true, force: true });
    await mkdir(scratch, { recursive: true });
    const { indexBucket } = this.options;
    async function* chunksOfExport(): AsyncGenerator<EmbeddedChunk> {
      for await (const line of indexBucket.readLines(exportKey)) yield parseExportLine(line);
    }
    async function* changesOfExport(): AsyncGenerator<DocumentChange> {
      for await (const line of indexBucket.readLines(exportKey)) yield parseChangeLine(line);
    }
    // Incremental: the base's rows merged with the changes, and its graph (downloaded, verified)
    // updated rather than rebuilt.
    const source = async (): Promise<{ chunks: AsyncIterable<EmbeddedChunk>; reuseGraph?: GraphReuse }> => {
      if (input.mode !== 'incremental') return { chunks: chunksOfExport() };
      const base = required(input.base, 'base');
      const manifest = parseSnapshotManifest(
        await indexBucket.getText(`${base.prefix}${MANIFEST_FILE}`),
        base.prefix,
      );
      const baseDirectory = join(scratch, 'base');
      await mkdir(baseDirectory, { recursive: true });
      const fetchVerified = (name: string) =>
        indexBucket.downloadSnapshotFile(base.prefix, manifest, name, baseDirectory);
      const indexPath = await fetchVerified(SNAPSHOT_FILES.vectorIndex);
      const rowKeys = manifest.hnswKeys
        ? await readRowKeys(await fetchVerified(HNSW_KEYS_FILE), manifest.counts.chunks)
        : undefined;
      const rowOf = new WeakMap<EmbeddedChunk, number>();
      return {
        chunks: mergeDocumentChanges(
          versionChunks(indexBucket, base.prefix, manifest, rowOf),
          changesOfExport(),
        ),
        reuseGraph: {
          indexPath,
          manifest,
          rowKeys,
          baseRowOf: (chunk) => rowOf.get(chunk),
          ...(this.options.maxRemovedFraction !== undefined
            ? { maxRemovedFraction: this.options.maxRemovedFraction }
            : {}),
        },
      };
    };
    try {
      const { chunks, reuseGraph } = await source();
      const { directory, manifest } = await writeSortedSnapshot(join(scratch, 'snapshots'), {
        chunks,
        ...(reuseGraph ? { reuseGraph } : {}),
        space,
        watermark: required(input.watermark, 'watermark'),
        ...(this.options.hnsw ? { hnsw: this.options.hnsw } : {}),
        recall: this.options.recallTarget ?? {},
        onProgress: (chunks) => this.options.log?.('reindex build progress', { chunks, of: input.chunks }),
      });
      const prefix = await indexBucket.uploadSnapshot(directory, manifest.version);
      return {
        ...input,
        version: manifest.version,
        prefix,
        builtAt: manifest.builtAt,
        graph:
          manifest.hnswKeys && manifest.hnswKeys.baseVersion === input.base?.version ? 'updated' : 'built',
        // An incremental export counts changes; the version's counts are the merge's (a full
        // export's count stays, for Validate to check the version against).
        ...(input.mode === 'incremental'
          ? { chunks: manifest.counts.chunks, documents: manifest.counts.documents }
          : {}),
        expansionSearch: manifest.index.expansionSearch,
        ...(manifest.recall ? { recallTarget: manifest.recall.target } : {}),
      };
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }

  /**
   * Download the uploaded version as a query Lambda would and check it: every checksum, the
   * embedding space, the chunk count of the export, and HNSW recall@10 against exact search at the
   * manifest's ef, on held-out queries of its own (other noise than Build's; see recallVerdict for
   * when it refuses).
   */
  async validate(input: ReindexState): Promise<ReindexState> {
    const version = required(input.version, 'version');
    const scratch = join(this.options.workDirectory, `validate-${input.executionName}`);
    await rm(scratch, { recursive: true, force: true });
    try {
      let snapshot: FileSnapshot;
      try {
        // The download verifies every checksum as it arrives; opening checks the rest.
        await this.options.indexBucket.downloadSnapshot(required(input.prefix, 'prefix'), scratch);
        snapshot = await FileSnapshot.open(scratch, {
          expectedSpace: required(input.space, 'space'),
          verifyChecksums: false,
        });
      } catch (error) {
        throw new SnapshotValidationFailed(`version ${version}: ${(error as Error).message}`);
      }
      if (snapshot.manifest.version !== version) {
        throw new SnapshotValidationFailed(
          `s3 prefix holds version ${snapshot.manifest.version}, expected ${version}`,
        );
      }
      if (snapshot.chunkCount !== input.chunks) {
        throw new SnapshotValidationFailed(
          `version ${version} holds ${snapshot.chunkCount} chunks, the export had ${input.chunks}`,
        );
      }
      const { manifest } = snapshot;
      const tuning = manifest.recall;
      const measured = measureServingRecall(
        (query, k) => snapshot.searchApproximate(query, k),
        readAllRows(
          join(scratch, SNAPSHOT_FILES.vectors),
          manifest.embedding.dimensions,
          snapshot.chunkCount,
        ),
        manifest.embedding.dimensions,
        manifest.index.metric,
        {
          k: tuning?.k ?? DEFAULT_RECALL_TARGET.k,
          queries: this.options.recallSamples ?? DEFAULT_RECALL_TARGET.queries,
          noise: tuning?.noise ?? DEFAULT_RECALL_TARGET.noise,
          // Not Build's seed: other rows and other noise, so these queries are held out from tuning.
          seed: (tuning?.seed ?? DEFAULT_RECALL_TARGET.seed) + 1,
        },
      );
      const verdict = recallVerdict({
        measured,
        minimum: this.options.minRecall ?? 0.95,
        ...(tuning ? { tuning, k: tuning.k } : {}),
      });
      if (!verdict.ok) throw new SnapshotValidationFailed(`version ${version}: ${verdict.reason}`);
      return {
        ...input,
        recall: measured.recall,
        expansionSearch: manifest.index.expansionSearch,
        ...(tuning ? { recallTarget: tuning.target } : {}),
      };
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }

  /** Point queries at the new version, only if no other reindex swapped since the snapshot. */
  async swap(input: ReindexState): Promise<ReindexState> {
    const record: IndexVersionRecord = {
      version: required(input.version, 'version'),
      watermark: required(input.watermark, 'watermark'),
      builtAt: required(input.builtAt, 'builtAt'),
      vectors: required(input.chunks, 'chunks'),
      prefix: required(input.prefix, 'prefix'),
    };
    try {
      await this.options.table.swapPointer(record, input.expectedCurrent ?? undefined);
    } catch (error) {
      if (error instanceof PointerConflictError) throw new PointerConflict(error.message);
      throw error;
    }
    return input;
  }

  /**
   * Delete old versions (keeping the current, the previous and the newest `keepVersions`) and this
   * run's export.
   */
  async prune(input: ReindexState): Promise<ReindexState> {
    const { table, indexBucket } = this.options;
    const pointer = await table.readPointer();
    const protectedVersions = new Set([pointer.current?.version, pointer.previous?.version].filter(Boolean));
    const versions = await indexBucket.listVersions();
    const keepNewest = new Set(versions.slice(-(this.options.keepVersions ?? 3)));
    const pruned: string[] = [];
    for (const version of versions) {
      if (protectedVersions.has(version) || keepNewest.has(version)) continue;
      await indexBucket.deletePrefix(IndexBucket.versionPrefix(version));
      pruned.push(version);
    }
    await indexBucket.deletePrefix(`${EXPORTS_PREFIX}${input.executionName}/`);
    return { ...input, pruned };
  }

  /**
   * Where every Catch leads: record the failure on the pointer item (versions untouched) and
   * remove this run's export and any version it uploaded but did not swap in. The state machine
   * then ends in a Fail state, so the execution shows as failed.
   */
  async recordFailure(input: {
    executionName: string;
    version?: string;
    error?: { Error?: string; Cause?: string };
    /**
     * Another run swapped first (PointerConflict): clean up this run's files but leave the
     * recorded outcome alone, which is the winner's success. Default false.
     */
    superseded?: boolean;
  }): Promise<{ recorded: string }> {
    const { table, indexBucket } = this.options;
    // Never delete `exports/undefined/` or every run's exports: the name must be a real one.
    if (!input.executionName || input.executionName.includes('/'))
      throw new Error(`recordFailure needs the execution name, got ${JSON.stringify(input.executionName)}`);
    const detail = `${input.error?.Error ?? 'Error'}: ${input.error?.Cause ?? 'unknown cause'}`;
    if (!input.superseded) await table.recordReindexFailure(detail);
    await indexBucket.deletePrefix(`${EXPORTS_PREFIX}${input.executionName}/`);
    if (input.version) await this.removeUnservedVersion(input.version);
    return { recorded: detail };
  }

  /** Delete a version this run uploaded, unless the pointer serves it (current or previous). */
  private async removeUnservedVersion(version: string): Promise<void> {
    const pointer = await this.options.table.readPointer();
    if (pointer.current?.version !== version && pointer.previous?.version !== version)
      await this.options.indexBucket.deletePrefix(IndexBucket.versionPrefix(version));
  }

  /**
   * The Fargate task's work (ECS task started by the state machine with `ecs:runTask.sync`):
   * Build then Validate, the same code the Lambdas run, and the outcome written to
   * {@link taskResultKey} for CollectTaskResult. A step's error is written too (with its name,
   * for the state machine's Catch), after removing a version Build uploaded; only a failure to
   * write the result itself throws. `.sync` returns ECS's description of the task, not its
   * output, hence the object.
   */
  async runTask(input: ReindexState): Promise<ReindexTaskResult> {
    let built: ReindexState | undefined;
    let result: ReindexTaskResult;
    try {
      built = await this.build(input);
      result = { ok: true, state: await this.validate(built) };
    } catch (error) {
      const { name, message } = error as Error;
      result = { ok: false, error: { name: name || 'Error', message: String(message) } };
      if (built?.version) await this.removeUnservedVersion(built.version);
    }
    await this.options.indexBucket.putText(taskResultKey(input.executionName), JSON.stringify(result));
    return result;
  }

  /**
   * After the Fargate task stopped: its state when Build and Validate succeeded; its error,
   * re-raised under the same name, when one failed; {@link ReindexTaskLost} when it wrote nothing.
   */
  async collectTaskResult(input: ReindexState): Promise<ReindexState> {
    let text: string;
    try {
      text = await this.options.indexBucket.getText(taskResultKey(input.executionName));
    } catch (error) {
      if ((error as Error).name !== 'NoSuchKey') throw error;
      throw new ReindexTaskLost(
        `the build task of ${input.executionName} stopped without a result: it crashed, ran out of memory or storage, or was stopped (see its log group)`,
      );
    }
    const result = JSON.parse(text) as ReindexTaskResult;
    if (result.ok) return result.state;
    const error = new Error(result.error.message);
    error.name = result.error.name;
    throw error;
  }
}
