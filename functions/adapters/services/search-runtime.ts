import { existsSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ChangeLogCursor, DEFAULT_GAP_GRACE_MS } from '../../core/change-log-cursor.js';
import type { EmbeddingSpace, PairScorer, TextEmbedder } from '../../core/embedding-space.js';
import {
  SearchEngine,
  type SearchEngineOptions,
  type SearchRequest,
  type SearchResponse,
} from '../../core/search-engine.js';
import type { RecallTuning } from '../../core/snapshot-manifest.js';
import type { IndexBucket } from '../aws/index-bucket.js';
import type { ReindexTrigger, ReindexTriggerOutcome } from '../aws/reindex-trigger.js';
import type { SearchTable } from '../aws/search-table.js';
import { FileSnapshot } from '../index/snapshot-files.js';
import { InMemoryHnswIndex } from '../index/usearch-index.js';

/** Receives the runtime's operational signals (wired to Powertools metrics and logs by handlers). */
export interface RuntimeObserver {
  metric(name: string, value: number, unit: 'Count' | 'Milliseconds' | 'Seconds'): void;
  warn(message: string, attributes?: Record<string, unknown>): void;
  info(message: string, attributes?: Record<string, unknown>): void;
}

export interface SearchRuntimeOptions {
  readonly table: SearchTable;
  readonly indexBucket: IndexBucket;
  readonly embedder: TextEmbedder;
  readonly reranker?: PairScorer;
  /** Local directory for downloaded snapshots (Lambda: under /tmp). */
  readonly workDirectory: string;
  /** A search waits for the change log to be read if it was last read longer ago than this. Default 2,000 ms. */
  readonly maxStalenessMs?: number;
  /** How often the index pointer is checked for a new version. Default 30,000 ms. */
  readonly pointerCheckIntervalMs?: number;
  /**
   * Longest a request waits for a due catch-up with the change log; past it the request answers
   * from what is applied (and reports the lag) while catch-up goes on. Default 2,000 ms.
   */
  readonly maxCatchUpWaitMs?: number;
  /** Longest the start waits for catch-up (Lambda's on-demand Init is limited to 10 s). Default 3,000 ms. */
  readonly initCatchUpWaitMs?: number;
  /** Change-log entries read per page (one Query each). Default 1,000. */
  readonly changeLogPageSize?: number;
  /** Chunk Queries in flight while catching up. Default 16. */
  readonly readParallelism?: number;
  /** How long a hole in the change log is waited for (see `ChangeLogCursor`). Default 60,000 ms. */
  readonly changeLogGapGraceMs?: number;
  /**
   * Bound on the delta: once it holds `deltaChunks` chunks, `trigger` is asked for a reindex
   * (at most once per `retryMs`, default 10 minutes, per snapshot version). Off when absent.
   */
  readonly autoReindex?: {
    readonly trigger: ReindexTrigger;
    readonly deltaChunks: number;
    readonly retryMs?: number;
  };
  readonly engine?: SearchEngineOptions;
  readonly observer?: RuntimeObserver;
}

/** What `GET /health` reports. */
export interface RuntimeHealth {
  readonly status: 'ok' | 'degraded';
  readonly index: {
    readonly version: string | null;
    readonly vectors: number;
    readonly builtAt: string | null;
    readonly deltaSize: number;
    /** The served version's HNSW search ef (chosen at build for its recall target); null without a version. */
    readonly expansionSearch: number | null;
    /**
     * The version's ANN recall@k against exact search as its build measured it on held-out queries
     * (`measured`), for `target`, with its connectivity; null for versions built before tuning.
     */
    readonly recall: {
      readonly target: number;
      readonly k: number;
      readonly measured: number;
      readonly reached: boolean;
      readonly connectivity: number;
    } | null;
  };
  /** Readable model name, vector length, and the model files' fingerprint (`sha256:…`) when known. */
  readonly model: { readonly id: string; readonly dimensions: number; readonly fingerprint?: string };
  /** The delta's bound and the last reindex this instance asked for because of it (absent when off). */
  readonly autoReindex?: {
    readonly deltaChunks: number;
    readonly requestedAt: string | null;
    readonly outcome: ReindexTriggerOutcome | 'failed' | null;
  };
  /**
   * `lagMs`: every change announced more than this long ago is applied (-1 before the first read
   * of the change log); `sequence`: every change-log sequence up to it is applied; `catchingUp`:
   * a catch-up is running now (a backlog is being applied while requests are answered).
   */
  readonly freshness: { readonly lagMs: number; readonly sequence: number; readonly catchingUp: boolean };
}

/**
 * What {@link SearchRuntime.start} takes: the runtime's options, with the models given either
 * loaded or still loading. A promise lets the model load while the index pointer is read and the
 * snapshot is downloaded, verified and mapped (a cold start then costs the longer of the two,
 * not their sum).
 */
export interface SearchRuntimeStartOptions extends Omit<SearchRuntimeOptions, 'embedder' | 'reranker'> {
  readonly embedder: TextEmbedder | Promise<TextEmbedder>;
  readonly reranker?: PairScorer | Promise<PairScorer>;
}

const silent: RuntimeObserver = { metric: () => {}, warn: () => {}, info: () => {} };

/**
 * The query side of bisearch in one process: at start it reads the index pointer, downloads the
 * current snapshot with parallel ranged GETs, verifies every checksum and memory-maps it, then
 * keeps a delta of later changes by tailing the change log. Searches never see more than
 * `maxStalenessMs` of lag; a new pointer is picked up without dropping requests, and a version
 * that fails verification is refused (metric `SnapshotRejected`) while the current one keeps serving.
 */
export class SearchRuntime {
  private engine: SearchEngine;
  private readonly cursor: ChangeLogCursor;
  /** Start time of the last catch-up that read the change log to its end. */
  private lastTailAt = 0;
  private reindexRequest:
    | { at: number; version: string | null; outcome: ReindexTriggerOutcome | 'failed' }
    | undefined;
  private lastPointerCheckAt = 0;
  private refreshing: Promise<void> | undefined;
  private degraded = false;

  private constructor(
    private readonly options: SearchRuntimeOptions,
    engine: SearchEngine,
  ) {
    this.engine = engine;
    this.cursor = new ChangeLogCursor(
      engine.delta.sequence,
      options.changeLogGapGraceMs ?? DEFAULT_GAP_GRACE_MS,
    );
  }

  /**
   * Read the pointer, fetch and open the current snapshot while the models finish loading, then
   * serve. The snapshot's embedding space is checked against the model once both are ready
   * (`SearchEngine` refuses a mismatch), so a wrong model still fails the start.
   */
  static async start(startOptions: SearchRuntimeStartOptions): Promise<SearchRuntime> {
    const observer = startOptions.observer ?? silent;
    const opening = (async () => {
      const pointer = await startOptions.table.readPointer();
      if (!pointer.current) {
        observer.info('no index version yet: serving the change log only');
        return undefined;
      }
      const started = performance.now();
      const snapshot = await SearchRuntime.fetchSnapshot(
        startOptions,
        pointer.current.version,
        pointer.current.prefix,
      );
      observer.metric('SnapshotLoadTime', performance.now() - started, 'Milliseconds');
      return snapshot;
    })();
    // All three at once; the first failure fails the start without waiting for the others.
    const [embedder, reranker, snapshot] = await Promise.all([
      startOptions.embedder,
      startOptions.reranker,
      opening,
    ]);
    const { embedder: _loading, reranker: _rerankerLoading, ...rest } = startOptions;
    const options: SearchRuntimeOptions = { ...rest, embedder, ...(reranker ? { reranker } : {}) };
    // A large delta is searched through an in-memory HNSW index unless the caller chose otherwise.
    const engineOptions = {
      deltaAnn: { create: () => new InMemoryHnswIndex(embedder.space.dimensions) },
      ...options.engine,
    };
    const runtime = new SearchRuntime(options, new SearchEngine(snapshot, embedder, reranker, engineOptions));
    runtime.lastPointerCheckAt = Date.now();
    // Init must not grow with the backlog: catch up for a bounded time, then serve while the
    // rest is applied during later requests (Lambda runs code only while an invocation does).
    await runtime.catchUp(options.initCatchUpWaitMs ?? 3_000);
    return runtime;
  }

  /**
   * Download (unless already present) and open a snapshot version, verifying every file, and its
   * embedding space when the embedder is known (at start it is checked once the model has loaded).
   */
  private static async fetchSnapshot(
    options: Pick<SearchRuntimeOptions, 'indexBucket' | 'workDirectory'>,
    version: string,
    prefix: string,
    expectedSpace?: EmbeddingSpace,
  ): Promise<FileSnapshot> {
    const directory = join(options.workDirectory, version);
    // A download verifies each file's sha256 while it arrives, so only a copy found already on
    // disk (an earlier download by this instance) is hashed again when opened: at 1M chunks that
    // second read of ~4 GB added 4.4 s to a cold start.
    let verifiedByDownload = false;
    try {
      if (!existsSync(join(directory, 'manifest.json'))) {
        await rm(directory, { recursive: true, force: true });
        await options.indexBucket.downloadSnapshot(prefix, directory);
        verifiedByDownload = true;
      }
      return await FileSnapshot.open(directory, {
        ...(expectedSpace ? { expectedSpace } : {}),
        verifyChecksums: !verifiedByDownload,
      });
    } catch (error) {
      // Never keep a copy that failed verification: the next attempt downloads afresh.
      await rm(directory, { recursive: true, force: true });
      throw error;
    }
  }

  /** The engine serving now (swapped atomically on a new version). */
  get searchEngine(): SearchEngine {
    return this.engine;
  }

  /**
   * Search with bounded staleness: when the change log is due, wait for catch-up at most
   * `maxCatchUpWaitMs`, then answer from what is applied; `index.lagMs` says how fresh that is.
   */
  async search(request: SearchRequest): Promise<SearchResponse & { index: { lagMs: number } }> {
    await this.refreshIfDue();
    const response = this.engine.search(request);
    const answered = await response;
    return { ...answered, index: { ...answered.index, lagMs: this.lagMs() } };
  }

  /**
   * Read the change log and the pointer when they are due, one refresh at a time. A refresh
   * starts in the background once the log was last read half the staleness bound ago, so under
   * steady traffic requests never wait; a request waits (at most `maxCatchUpWaitMs`) only when
   * the bound would otherwise be broken.
   */
  async refreshIfDue(): Promise<void> {
    const now = Date.now();
    const staleness = this.options.maxStalenessMs ?? 2_000;
    const lag = now - this.lastTailAt;
    const pointerDue = now - this.lastPointerCheckAt >= (this.options.pointerCheckIntervalMs ?? 30_000);
    if ((lag >= staleness / 2 || pointerDue) && !this.refreshing) {
      this.refreshing = this.background(async () => {
        if (pointerDue) await this.checkPointer();
        await this.tail();
      });
    }
    if (this.refreshing && lag >= staleness)
      await within(this.refreshing, this.options.maxCatchUpWaitMs ?? 2_000);
  }

  /** Run one refresh; its failure is logged here and reaches only requests that wait for it. */
  private background(work: () => Promise<void>): Promise<void> {
    const observer = this.options.observer ?? silent;
    const refresh = work().finally(() => {
      this.refreshing = undefined;
    });
    refresh.catch((error: Error) =>
      observer.warn('catch-up with the change log failed', { error: error.message }),
    );
    return refresh;
  }

  /** Start (or join) a catch-up and wait for it at most `waitMs`; it goes on in the background. */
  private async catchUp(waitMs: number): Promise<void> {
    this.refreshing ??= this.background(async () => {
      await this.tail();
    });
    await within(this.refreshing, waitMs);
  }

  /**
   * Apply every change-log entry after the cursor, page by page (each page's documents read in
   * batches), so that a long backlog becomes visible as it is applied. Returns how many documents
   * were applied.
   */
  async tail(): Promise<number> {
    const { table } = this.options;
    const observer = this.options.observer ?? silent;
    const pageSize = this.options.changeLogPageSize ?? 1_000;
    const started = Date.now();
    let applied = 0;
    let after = this.cursor.position;
    for (;;) {
      const entries = await table.changesAfter(after, pageSize);
      const fresh = this.cursor.unapplied(entries);
      // Several entries for one document: its latest state is applied once, at its last sequence.
      const lastSequenceByDocument = new Map<string, number>();
      for (const entry of fresh) lastSequenceByDocument.set(entry.docId, entry.sequence);
      if (lastSequenceByDocument.size > 0) {
        // Status and chunks read consistently: a version replaced meanwhile is read again.
        const versions = await table.readDocuments(
          [...lastSequenceByDocument.keys()],
          this.options.readParallelism ?? 16,
        );
        const delta = this.engine.delta;
        for (const [docId, sequence] of lastSequenceByDocument) {
          const version = versions.get(docId);
          if (!version || version.chunks.length === 0) delta.deleteDocument(docId, sequence);
          else delta.applyDocument(docId, version.chunks, sequence);
          applied += 1;
        }
      }
      const { skipped } = this.cursor.commit(
        fresh.map((entry) => entry.sequence),
        Date.now(),
      );
      if (skipped > 0) {
        observer.metric('ChangeLogGapsSkipped', skipped, 'Count');
        observer.warn('change-log sequences never written were skipped', {
          skipped,
          position: this.cursor.position,
        });
      }
      this.engine.delta.advanceTo(this.cursor.position);
      if (entries.length < pageSize) break;
      after = (entries.at(-1) as { sequence: number }).sequence;
    }
    // Everything announced before this catch-up started is applied now.
    this.lastTailAt = started;
    observer.metric('DeltaSize', this.engine.delta.size, 'Count');
    observer.metric('CatchUpTime', Date.now() - started, 'Milliseconds');
    await this.boundDelta();
    return applied;
  }

  /** Ask for a reindex when the delta has outgrown its bound (see `autoReindex`). */
  private async boundDelta(): Promise<void> {
    const bound = this.options.autoReindex;
    if (!bound || this.engine.delta.size < bound.deltaChunks) return;
    const observer = this.options.observer ?? silent;
    const version = this.engine.snapshot?.manifest.version ?? null;
    const now = Date.now();
    const last = this.reindexRequest;
    if (last && last.version === version && now - last.at < (bound.retryMs ?? 10 * 60_000)) return;
    this.reindexRequest = { at: now, version, outcome: 'started' };
    try {
      const outcome = await bound.trigger.start({ deltaChunks: this.engine.delta.size, version }, now);
      this.reindexRequest = { at: now, version, outcome };
      observer.metric('AutoReindexRequested', 1, 'Count');
      observer.info('the delta outgrew its bound: reindex requested', {
        deltaChunks: this.engine.delta.size,
        bound: bound.deltaChunks,
        version,
        outcome,
      });
    } catch (error) {
      this.reindexRequest = { at: now, version, outcome: 'failed' };
      observer.warn('the delta outgrew its bound and the reindex request failed', {
        error: (error as Error).message,
      });
    }
  }

  /** Every change announced more than this long ago is applied, ms (-1 before the first catch-up). */
  lagMs(): number {
    return this.lastTailAt === 0 ? -1 : Date.now() - this.lastTailAt;
  }

  /** Swap to a newer pointer version; on failure keep serving the current one and say so. */
  private async checkPointer(): Promise<void> {
    const observer = this.options.observer ?? silent;
    this.lastPointerCheckAt = Date.now();
    const pointer = await this.options.table.readPointer();
    const current = this.engine.snapshot?.manifest.version;
    if (!pointer.current || pointer.current.version === current) return;
    try {
      // At most two versions in /tmp: the one serving and the one arriving. The version replaced
      // at the last swap is no longer read (its in-flight searches ended long ago).
      await this.removeOtherVersions(current, pointer.current.version);
      const snapshot = await SearchRuntime.fetchSnapshot(
        this.options,
        pointer.current.version,
        pointer.current.prefix,
        this.options.embedder.space,
      );
      this.engine.swapSnapshot(snapshot);
      // Every sequence up to the new watermark is in the snapshot.
      this.cursor.rebase(snapshot.manifest.watermark, Date.now());
      this.degraded = false;
      observer.info('serving a new index version', { version: snapshot.manifest.version, previous: current });
      await this.removeOtherVersions(snapshot.manifest.version, current);
    } catch (error) {
      this.degraded = true;
      observer.metric('SnapshotRejected', 1, 'Count');
      observer.warn('new index version refused; still serving the current one', {
        version: pointer.current.version,
        serving: current ?? null,
        error: (error as Error).message,
      });
    }
  }

  /** Free /tmp: remove every version directory but these two (either may be undefined). */
  private async removeOtherVersions(keep: string | undefined, alsoKeep: string | undefined): Promise<void> {
    if (!existsSync(this.options.workDirectory)) return;
    for (const name of await readdir(this.options.workDirectory)) {
      if (name !== keep && name !== alsoKeep)
        await rm(join(this.options.workDirectory, name), { recursive: true, force: true });
    }
  }

  health(): RuntimeHealth {
    const snapshot = this.engine.snapshot;
    return {
      status: this.degraded ? 'degraded' : 'ok',
      index: {
        version: snapshot?.manifest.version ?? null,
        vectors: snapshot?.manifest.counts.chunks ?? 0,
        builtAt: snapshot?.manifest.builtAt ?? null,
        deltaSize: this.engine.delta.size,
        expansionSearch: snapshot?.manifest.index.expansionSearch ?? null,
        recall: recallOf(snapshot?.manifest.recall),
      },
      model: {
        id: this.options.embedder.space.modelId,
        dimensions: this.options.embedder.space.dimensions,
        ...(this.options.embedder.space.fingerprint
          ? { fingerprint: this.options.embedder.space.fingerprint }
          : {}),
      },
      ...(this.options.autoReindex
        ? {
            autoReindex: {
              deltaChunks: this.options.autoReindex.deltaChunks,
              requestedAt: this.reindexRequest ? new Date(this.reindexRequest.at).toISOString() : null,
              outcome: this.reindexRequest?.outcome ?? null,
            },
          }
        : {}),
      freshness: {
        lagMs: this.lagMs(),
        sequence: this.cursor.position,
        catchingUp: this.refreshing !== undefined,
      },
    };
  }
}

/** The health report's view of a manifest's `recall` section. */
function recallOf(tuning: RecallTuning | undefined): RuntimeHealth['index']['recall'] {
  if (!tuning) return null;
  return {
    target: tuning.target,
    k: tuning.k,
    measured: Math.round(tuning.heldOut.recall * 10_000) / 10_000,
    reached: tuning.reached,
    connectivity: tuning.connectivity,
  };
}

/** Wait for `promise` at most `ms` (its failure is the caller's only when it settles in time). */
async function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expiry = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  try {
    await Promise.race([promise, expiry]);
  } finally {
    clearTimeout(timer);
  }
}
