import { existsSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { EmbeddingSpace, PairScorer, TextEmbedder } from '../core/embedding-space.js';
import {
  SearchEngine,
  type SearchEngineOptions,
  type SearchRequest,
  type SearchResponse,
} from '../core/search-engine.js';
import type { IndexBucket } from './index-bucket.js';
import type { SearchTable } from './search-table.js';
import { FileSnapshot } from './snapshot-files.js';

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
  };
  /** Readable model name, vector length, and the model files' fingerprint (`sha256:…`) when known. */
  readonly model: { readonly id: string; readonly dimensions: number; readonly fingerprint?: string };
  /** Milliseconds since the change log was last read up to its end. */
  readonly freshness: { readonly lagMs: number; readonly sequence: number };
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
  private lastTailAt = 0;
  private lastPointerCheckAt = 0;
  private refreshing: Promise<void> | undefined;
  private degraded = false;

  private constructor(
    private readonly options: SearchRuntimeOptions,
    engine: SearchEngine,
  ) {
    this.engine = engine;
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
    const runtime = new SearchRuntime(
      options,
      new SearchEngine(snapshot, embedder, reranker, options.engine),
    );
    runtime.lastPointerCheckAt = Date.now();
    await runtime.tail();
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

  /** Search with bounded staleness: catches up with the change log first when it is due. */
  async search(request: SearchRequest): Promise<SearchResponse> {
    await this.refreshIfDue();
    return this.engine.search(request);
  }

  /** Read the change log and the pointer if they are due (one refresh at a time). */
  async refreshIfDue(): Promise<void> {
    const now = Date.now();
    const tailDue = now - this.lastTailAt >= (this.options.maxStalenessMs ?? 2_000);
    const pointerDue = now - this.lastPointerCheckAt >= (this.options.pointerCheckIntervalMs ?? 30_000);
    if (!tailDue && !pointerDue) return;
    this.refreshing ??= (async () => {
      try {
        if (pointerDue) await this.checkPointer();
        await this.tail();
      } finally {
        this.refreshing = undefined;
      }
    })();
    await this.refreshing;
  }

  /** Apply every change-log entry after the delta's sequence. */
  async tail(): Promise<number> {
    const { table } = this.options;
    const observer = this.options.observer ?? silent;
    const started = Date.now();
    let applied = 0;
    for (;;) {
      const delta = this.engine.delta;
      const entries = await table.changesAfter(delta.sequence);
      if (entries.length === 0) break;
      // Several entries for one document: its latest state is applied once, at its last sequence.
      const lastSequenceByDocument = new Map<string, number>();
      for (const entry of entries) lastSequenceByDocument.set(entry.docId, entry.sequence);
      for (const [docId, sequence] of lastSequenceByDocument) {
        // Status and chunks read consistently: a version replaced meanwhile is read again.
        const version = await table.readDocument(docId);
        if (!version || version.chunks.length === 0) delta.deleteDocument(docId, sequence);
        else delta.applyDocument(docId, version.chunks, sequence);
        applied += 1;
      }
      // Entries up to the last one read are now reflected, including documents not re-applied.
      delta.advanceTo((entries.at(-1) as { sequence: number }).sequence);
      if (entries.length < 1_000) break;
    }
    this.lastTailAt = started;
    observer.metric('DeltaSize', this.engine.delta.size, 'Count');
    return applied;
  }

  /** Swap to a newer pointer version; on failure keep serving the current one and say so. */
  private async checkPointer(): Promise<void> {
    const observer = this.options.observer ?? silent;
    this.lastPointerCheckAt = Date.now();
    const pointer = await this.options.table.readPointer();
    const current = this.engine.snapshot?.manifest.version;
    if (!pointer.current || pointer.current.version === current) return;
    try {
      const snapshot = await SearchRuntime.fetchSnapshot(
        this.options,
        pointer.current.version,
        pointer.current.prefix,
        this.options.embedder.space,
      );
      this.engine.swapSnapshot(snapshot);
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

  /** Free /tmp: keep only the version being served (and the one just replaced, still mapped by in-flight searches). */
  private async removeOtherVersions(keep: string, previous: string | undefined): Promise<void> {
    if (!existsSync(this.options.workDirectory)) return;
    for (const name of await readdir(this.options.workDirectory)) {
      if (name !== keep && name !== previous)
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
      },
      model: {
        id: this.options.embedder.space.modelId,
        dimensions: this.options.embedder.space.dimensions,
        ...(this.options.embedder.space.fingerprint
          ? { fingerprint: this.options.embedder.space.fingerprint }
          : {}),
      },
      freshness: {
        lagMs: this.lastTailAt === 0 ? -1 : Date.now() - this.lastTailAt,
        sequence: this.engine.delta.sequence,
      },
    };
  }
}
