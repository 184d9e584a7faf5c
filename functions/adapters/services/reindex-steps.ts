import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { EmbeddedChunk } from '../../core/delta.js';
import type { EmbeddingSpace } from '../../core/embedding-space.js';
import { SNAPSHOT_FILES } from '../../core/snapshot-manifest.js';
import {
  DEFAULT_RECALL_TARGET,
  type RecallTargetOptions,
  recallVerdict,
} from '../../core/snapshot-validation.js';
import { EXPORTS_PREFIX, IndexBucket } from '../aws/index-bucket.js';
import { type IndexVersionRecord, PointerConflictError, type SearchTable } from '../aws/search-table.js';
import { measureServingRecall } from '../index/recall-tuning.js';
import { FileSnapshot, readAllRows, writeSortedSnapshot } from '../index/snapshot-files.js';
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

/** Error names the state machine must not retry: retrying cannot change their outcome. */
export const TERMINAL_REINDEX_ERRORS = [
  'SnapshotValidationFailed',
  'NothingToIndex',
  'PointerConflict',
] as const;

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
}

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
  /** Progress lines of long steps (the handler passes its logger). */
  readonly log?: (message: string, fields: Record<string, unknown>) => void;
}

/** Documents read per batch by the export (one BatchGetItem per 100, chunk queries in parallel). */
export const EXPORT_BATCH_DOCUMENTS = 500;
/** Chunk queries in flight during the export. */
export const EXPORT_READ_PARALLELISM = 32;

/** One chunk of the export: its record with the float32 vector in base64. */
function exportLine(chunk: EmbeddedChunk): string {
  const { vector, ...record } = chunk;
  return `${JSON.stringify({ ...record, vector: Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).toString('base64') })}\n`;
}

function parseExportLine(line: string): EmbeddedChunk {
  const { vector, ...record } = JSON.parse(line) as Omit<EmbeddedChunk, 'vector'> & { vector: string };
  const bytes = Buffer.from(vector, 'base64');
  const floats = new Float32Array(bytes.byteLength / 4);
  new Uint8Array(floats.buffer).set(bytes);
  return { ...record, vector: floats };
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
   * Freeze a watermark (the latest change-log sequence) and export every live document's chunks to
   * S3, sorted by document id then ordinal (the snapshot's row order, so Build streams). Every
   * change up to the watermark is in the export (statuses are written before the entries that
   * announce them); later changes may be too, and the delta re-applies them.
   *
   * Cost: a parallel scan of the status items for the ids, then batches of
   * {@link EXPORT_BATCH_DOCUMENTS} documents read with BatchGetItem and
   * {@link EXPORT_READ_PARALLELISM} parallel chunk queries, the next batch read while the current
   * one is written. The export streams to S3 as a multipart upload: no `/tmp`.
   */
  async snapshot(input: Pick<ReindexState, 'executionName'>): Promise<ReindexState> {
    const { table, indexBucket } = this.options;
    const space = await table.embeddingSpace();
    if (!space) throw new NothingToIndex('no document has been embedded yet; upload documents first');
    const watermark = await table.latestSequence();
    // Covers an entry whose writer died before raising the mark: TTL can never reach below it.
    await table.raiseSequenceHighWater(watermark);
    const pointer = await table.readPointer();
    const ids = await table.liveDocumentIds(this.options.scanSegments ?? 8);
    const exportKey = `${EXPORTS_PREFIX}${input.executionName}/chunks.jsonl`;
    let chunks = 0;
    let documents = 0;
    const read = (start: number) =>
      start < ids.length
        ? table.readDocuments(ids.slice(start, start + EXPORT_BATCH_DOCUMENTS), EXPORT_READ_PARALLELISM)
        : undefined;
    await indexBucket.putStream(exportKey, async (out) => {
      let next = read(0);
      for (let start = 0; next; start += EXPORT_BATCH_DOCUMENTS) {
        const versions = await next;
        next = read(start + EXPORT_BATCH_DOCUMENTS);
        const lines: string[] = [];
        for (const docId of ids.slice(start, start + EXPORT_BATCH_DOCUMENTS)) {
          // Read again with its chunks, consistently: deleted since the scan, or never indexed.
          const version = versions.get(docId);
          if (!version || version.status.status === 'deleted' || version.chunks.length === 0) continue;
          documents += 1;
          for (const chunk of [...version.chunks].sort((a, b) => a.ordinal - b.ordinal)) {
            lines.push(exportLine(chunk));
            chunks += 1;
          }
        }
        if (!out.write(lines.join('')))
          await new Promise<void>((resolve) => out.once('drain', () => resolve()));
        // A line per ~10,000 documents: long exports show progress without flooding the log.
        if ((start / EXPORT_BATCH_DOCUMENTS) % 20 === 19)
          this.options.log?.('reindex snapshot progress', { documents, chunks, of: ids.length });
      }
    });
    return {
      executionName: input.executionName,
      watermark,
      exportKey,
      chunks,
      documents,
      space,
      expectedCurrent: pointer.current ?? null,
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
    try {
      const { directory, manifest } = await writeSortedSnapshot(join(scratch, 'snapshots'), {
        chunks: chunksOfExport(),
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
    const pointer = await table.readPointer();
    if (
      input.version &&
      pointer.current?.version !== input.version &&
      pointer.previous?.version !== input.version
    ) {
      await indexBucket.deletePrefix(IndexBucket.versionPrefix(input.version));
    }
    return { recorded: detail };
  }
}
