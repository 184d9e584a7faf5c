import { randomUUID } from 'node:crypto';
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Chunk, type ChunkingOptions, chunkDocument, documentContentHash } from '../../core/chunking.js';
import type { EmbeddedChunk } from '../../core/delta.js';
import { decodeNotificationKey } from '../../core/document-ids.js';
import { decideClaim, decideRelease } from '../../core/document-ownership.js';
import {
  CSV_COLUMNS_METADATA_KEY,
  documentIdFromFileName,
  parseDocumentFile,
  type SourceDocument,
} from '../../core/documents.js';
import type { TextEmbedder } from '../../core/embedding-space.js';
import { BisearchError, type DocumentParseError } from '../../core/errors.js';
import { EmbeddingInterruptedError, embedChunks } from '../../core/indexing.js';
import { type DocumentBucket, DocumentTooLargeError } from '../aws/document-bucket.js';
import {
  type DocumentStatus,
  normalizeSequencer,
  type SearchTable,
  type SourceFailure,
} from '../aws/search-table.js';

/** One S3 object event, as the ingest queue delivers it. */
export interface S3ObjectEvent {
  readonly kind: 'created' | 'removed';
  readonly bucket: string;
  /** Object key, URL-decoded. */
  readonly key: string;
  /** S3 `sequencer`: orders events of the same key (and only of the same key). */
  readonly sequencer: string;
  /** Version the event is about (versioned buckets), for logs: processing reads the key's current state. */
  readonly versionId?: string;
}

/** What happened to one document of an event. */
export interface DocumentOutcome {
  readonly docId: string;
  readonly outcome: 'indexed' | 'unchanged' | 'deleted' | 'stale' | 'failed' | 'conflict';
  readonly chunks?: number;
  readonly embedded?: number;
  readonly line?: number;
  readonly error?: { code: string; message: string };
}

/** Another encoder holds the object's lease for longer than we wait: transient, the queue retries. */
export class SourceBusyError extends Error {
  override readonly name = 'SourceBusyError';
}

/**
 * The invocation ran out of time for this object after making progress: what is done is kept
 * (finished documents are written, embedded vectors of an unfinished one are saved), and the event
 * must be processed again, in a fresh invocation, to continue (the encode handler re-enqueues it).
 * Nothing of the object is searchable in a half state: a document becomes visible only whole.
 */
export class ContinuationNeededError extends Error {
  override readonly name = 'ContinuationNeededError';
  constructor(
    readonly key: string,
    /** Documents of the object written by this invocation. */
    readonly documentsWritten: number,
    /** Chunks embedded by this invocation and saved for the next one. */
    readonly chunksSaved: number,
  ) {
    super(
      `${key}: out of time after writing ${documentsWritten} documents and saving ${chunksSaved} embedded chunks; continues in a new invocation`,
    );
  }
}

/** Options of one {@link IngestService.process} call. */
export interface ProcessOptions {
  /**
   * Milliseconds since the epoch by which the call must have returned (the invocation's end minus
   * a reserve). Past it, after progress, the call stops with {@link ContinuationNeededError}.
   * Default: no deadline.
   */
  readonly deadline?: number;
}

/** Work of one process() call against its deadline. */
interface RunBudget {
  readonly key: string;
  readonly deadline: number | undefined;
  documentsWritten: number;
  chunksSaved: number;
}

/** Time kept for one more (small) document before the deadline, ms. */
const DOCUMENT_RESERVE_MS = 5_000;
/** Writing a document's chunk items after embedding: 25 per BatchWriteItem, a few ms each; generous. */
const WRITE_RESERVE_MS_PER_CHUNK = 1;
/** Documents with more chunks than this may be embedded across invocations (progress is saved). */
const RESUMABLE_CHUNKS = 256;

/** A notification record that cannot be processed at all (its key is not valid URL encoding). */
export class UnreadableEventError extends BisearchError {
  constructor(reason: string) {
    super('EVENT_UNREADABLE', 400, reason);
  }
}

/**
 * Parse the body of an ingest-queue message: an S3 event notification (`Records`), possibly
 * wrapped by EventBridge or SNS. S3's `s3:TestEvent` yields no events.
 */
export function parseS3EventMessage(body: string): S3ObjectEvent[] {
  const message = JSON.parse(body) as { Records?: unknown[]; Message?: string; Event?: string };
  if (typeof message.Message === 'string') return parseS3EventMessage(message.Message);
  if (message.Event === 's3:TestEvent' || !Array.isArray(message.Records)) return [];
  return message.Records.flatMap((raw) => {
    const record = raw as {
      eventName?: string;
      s3?: {
        bucket?: { name?: string };
        object?: { key?: string; sequencer?: string; versionId?: string };
      };
    };
    const encodedKey = record.s3?.object?.key;
    const eventName = record.eventName ?? '';
    if (!encodedKey || !record.s3?.bucket?.name || !record.s3.object?.sequencer) return [];
    const kind = eventName.startsWith('ObjectCreated')
      ? 'created'
      : eventName.startsWith('ObjectRemoved')
        ? 'removed'
        : undefined;
    if (!kind) return [];
    // S3 URL-encodes keys in notifications, with '+' for spaces.
    const key = decodeNotificationKey(encodedKey);
    if (key === undefined) throw new UnreadableEventError('an event key is not valid URL encoding');
    return [
      {
        kind,
        bucket: record.s3.bucket.name,
        key,
        sequencer: record.s3.object.sequencer,
        ...(record.s3.object.versionId ? { versionId: record.s3.object.versionId } : {}),
      },
    ];
  });
}

/** Options of an {@link IngestService}. */
export interface IngestServiceOptions {
  readonly logger?: Logger;
  readonly chunking?: Omit<ChunkingOptions, 'maxTokens'>;
  /** Milliseconds since the epoch (tests advance it). Default `Date.now`. */
  readonly clock?: () => number;
  /**
   * How long one encoder holds an object's lease, ms. Must exceed the longest processing of one
   * object (the encode timeout), so a live holder never loses it. Default 150,000.
   */
  readonly leaseMs?: number;
  /** How long an event waits for another encoder's lease on the same object, ms. Default 20,000. */
  readonly leaseWaitMs?: number;
}

/** Status writes retried this often when another writer changed the document in between. */
const MAX_STATUS_ATTEMPTS = 20;

/**
 * Applies S3 object events to the table. Every event means "bring this key in line with what S3
 * holds for it now": the encoder takes the key's lease (one encoder per key), reads the current
 * object (gone: every document it defined is deleted), parses, chunks, embeds (reusing vectors of
 * unchanged chunks) and, per document: writes chunks under a fresh write id → compare-and-sets
 * the status → announces the change → deletes the chunks of the version it replaced. The source
 * record (ETag processed, failures) is written last.
 *
 * Why this holds under any interleaving: events of one key are processed one at a time and each
 * reads S3 after its own write, so the last one processed sees the last write; an event older
 * than the one recorded is skipped; status writes are compare-and-set, so a decision taken on a
 * state that changed is retried, and chunks are deleted only by the writer that replaced the
 * status pointing at them. Between keys, sequencers are never compared (S3 does not order them):
 * a document belongs to the key that defined it until that key releases it (see
 * `core/document-ownership.ts`), and a second key defining it is a reported conflict.
 *
 * A bad document becomes a `failed` status (or a failure on its source) and is not retried;
 * transient failures (AWS, the model, a busy lease) throw so the queue redelivers the message.
 */
export class IngestService {
  private readonly logger: Logger | undefined;
  private readonly chunking: Omit<ChunkingOptions, 'maxTokens'>;
  private readonly clock: () => number;
  private readonly leaseMs: number;
  private readonly leaseWaitMs: number;

  constructor(
    private readonly table: SearchTable,
    private readonly documents: DocumentBucket,
    private readonly embedder: TextEmbedder,
    options: IngestServiceOptions = {},
  ) {
    this.logger = options.logger;
    this.chunking = options.chunking ?? {};
    this.clock = options.clock ?? Date.now;
    this.leaseMs = options.leaseMs ?? 150_000;
    this.leaseWaitMs = options.leaseWaitMs ?? 20_000;
  }

  /**
   * Bring the event's key in line with S3. With a `deadline`, a large object is processed across
   * calls: see {@link ContinuationNeededError}.
   */
  async process(event: S3ObjectEvent, options: ProcessOptions = {}): Promise<DocumentOutcome[]> {
    const budget: RunBudget = {
      key: event.key,
      deadline: options.deadline,
      documentsWritten: 0,
      chunksSaved: 0,
    };
    const sequencer = normalizeSequencer(event.sequencer);
    const owner = randomUUID();
    await this.acquireLease(event.key, owner);
    try {
      const source = await this.table.sourceDocuments(event.key);
      // A newer event of this key was fully processed, after its own write: nothing to add.
      if (source && source.sequencer >= sequencer) return [];
      return await this.synchronize(event.key, sequencer, source?.docIds ?? [], budget);
    } finally {
      await this.table.releaseSourceLease(event.key, owner);
    }
  }

  private async acquireLease(key: string, owner: string): Promise<void> {
    const deadline = this.clock() + this.leaseWaitMs;
    for (let attempt = 0; ; attempt += 1) {
      if (await this.table.acquireSourceLease(key, owner, this.leaseMs)) return;
      if (this.clock() >= deadline)
        throw new SourceBusyError(`another encoder is processing ${key}; the event will be retried`);
      await new Promise((resolve) =>
        setTimeout(resolve, 20 + Math.random() * Math.min(500, 20 * 2 ** attempt)),
      );
    }
  }

  /** Bring the documents of `key` in line with the object S3 holds now. */
  private async synchronize(
    key: string,
    sequencer: string,
    members: string[],
    budget: RunBudget,
  ): Promise<DocumentOutcome[]> {
    let object: Awaited<ReturnType<DocumentBucket['read']>>;
    const outcomes: DocumentOutcome[] = [];
    const failures: SourceFailure[] = [];
    try {
      object = await this.documents.read(key);
    } catch (error) {
      if (!(error instanceof BisearchError)) throw error;
      // Too large to read: the upload still counts as processed, with the reason recorded.
      const outcome = await this.fail(documentIdFromFileName(key), key, sequencer, error);
      outcomes.push(outcome);
      await this.releaseOthers(key, sequencer, members, new Set([outcome.docId]), outcomes);
      await this.table.putSourceRecord(key, {
        sequencer,
        etag: error instanceof DocumentTooLargeError ? error.etag : '',
        failures: [{ docId: outcome.docId, code: error.code, message: error.message }],
      });
      return outcomes;
    }
    if (!object) {
      // The object is gone (deleted, or only a noncurrent version was): release what it defined.
      const defined = members.length > 0 ? members : [documentIdFromFileName(key)];
      await this.releaseOthers(key, sequencer, defined, new Set(), outcomes);
      await this.table.putSourceRecord(key, { sequencer, etag: '' });
      return outcomes;
    }

    // The column roles of a CSV travel with the object as its metadata (see CSV_COLUMNS_METADATA_KEY).
    const csvColumns = object.metadata[CSV_COLUMNS_METADATA_KEY];
    const parsed = await parseDocumentFile(key, object.bytes, csvColumns === undefined ? {} : { csvColumns });
    const defined = new Set<string>();
    for (const failure of parsed.failures) {
      const outcome = await this.recordParseFailure(key, sequencer, failure);
      outcomes.push(outcome);
      failures.push(toSourceFailure(outcome));
      // A failed document is still this key's (its previous version stays searchable).
      if (outcome.outcome !== 'conflict' && !outcome.docId.startsWith(`${key}:`)) {
        defined.add(outcome.docId);
        await this.table.addSourceMember(key, outcome.docId);
      }
    }
    for (const document of parsed.documents) {
      // Finished documents stay written; the next invocation passes over them quickly ('unchanged').
      if (budget.documentsWritten > 0 && !this.hasTime(budget, DOCUMENT_RESERVE_MS))
        throw new ContinuationNeededError(key, budget.documentsWritten, budget.chunksSaved);
      await this.table.addSourceMember(key, document.id);
      const outcome = await this.upsert(document, key, sequencer, budget);
      if (outcome.outcome === 'indexed') budget.documentsWritten += 1;
      outcomes.push(outcome);
      if (outcome.outcome === 'conflict') {
        await this.table.removeSourceMember(key, document.id);
        failures.push(toSourceFailure(outcome));
      } else defined.add(document.id);
    }
    await this.releaseOthers(key, sequencer, members, defined, outcomes);
    await this.table.putSourceRecord(key, { sequencer, etag: object.etag, failures });
    return outcomes;
  }

  /** Delete every document `key` defined before but no longer does, and forget its membership. */
  private async releaseOthers(
    key: string,
    sequencer: string,
    previous: readonly string[],
    current: ReadonlySet<string>,
    outcomes: DocumentOutcome[],
  ): Promise<void> {
    for (const docId of previous) {
      if (current.has(docId)) continue;
      const outcome = await this.release(docId, key, sequencer);
      if (outcome) outcomes.push(outcome);
      await this.table.removeSourceMember(key, docId);
    }
  }

  /** A failure of one document or line: a `failed` status when it names a document, else only a source failure. */
  private async recordParseFailure(
    key: string,
    sequencer: string,
    failure: DocumentParseError,
  ): Promise<DocumentOutcome> {
    // Positions and codes only: a failure's message never quotes the document.
    this.logger?.warn('document failed', { key, line: failure.line, code: failure.code });
    const docId =
      failure.documentId ?? (failure.line === undefined ? documentIdFromFileName(key) : undefined);
    if (docId === undefined) {
      return {
        docId: `${key}:${failure.line}`,
        outcome: 'failed',
        ...(failure.line !== undefined ? { line: failure.line } : {}),
        error: { code: failure.code, message: failure.message },
      };
    }
    const outcome = await this.fail(docId, key, sequencer, failure);
    return failure.line !== undefined ? { ...outcome, line: failure.line } : outcome;
  }

  /** True when `ms` more fit before the run's deadline (always, without one). */
  private hasTime(budget: RunBudget, ms: number): boolean {
    return budget.deadline === undefined || this.clock() + ms < budget.deadline;
  }

  private async upsert(
    document: SourceDocument,
    key: string,
    sequencer: string,
    budget: RunBudget,
  ): Promise<DocumentOutcome> {
    const contentHash = documentContentHash(document);
    let written: { writeId: string; chunks: EmbeddedChunk[]; embedded: number } | undefined;
    try {
      for (let attempt = 0; attempt < MAX_STATUS_ATTEMPTS; attempt += 1) {
        const current = await this.table.readDocument(document.id);
        const decision = decideClaim(current?.status, key, sequencer);
        if (decision === 'stale') return await this.stale(current?.status, sequencer);
        if (decision === 'conflict') return conflict(document.id, key, current?.status as DocumentStatus);
        const previous = current?.status;
        const now = new Date(this.clock()).toISOString();
        if (
          previous?.sourceKey === key &&
          previous.status === 'indexed' &&
          previous.contentHash === contentHash &&
          previous.writeId
        ) {
          // Written by an earlier invocation of this very event (a continuation): nothing to do.
          if (previous.sourceSequencer === sequencer && previous.announcedSequence !== undefined)
            return { docId: document.id, outcome: 'unchanged', chunks: previous.chunks };
          // Same content again: record the newer sequencer; nothing to re-embed or announce.
          const { revision: _revision, error: _error, ...kept } = previous;
          const result = await this.table.writeStatus(
            { ...kept, sourceSequencer: sequencer, updatedAt: now },
            previous.revision,
          );
          if (!result.applied) continue;
          if (previous.announcedSequence === undefined) await this.announce(document.id, result.revision);
          return { docId: document.id, outcome: 'unchanged', chunks: previous.chunks };
        }
        if (!written) {
          const chunks = chunkDocument(document, this.embedder, {
            ...this.chunking,
            maxTokens: this.embedder.maxContentTokens,
          });
          const embedded = await this.embedReusing(
            document.id,
            contentHash,
            chunks,
            current?.chunks ?? [],
            budget,
          );
          const writeId = this.table.newWriteId();
          await this.table.writeChunks(document.id, writeId, embedded.chunks);
          written = { writeId, ...embedded };
        }
        const result = await this.table.writeStatus(
          {
            docId: document.id,
            status: 'indexed',
            chunks: written.chunks.length,
            updatedAt: now,
            sourceKey: key,
            sourceSequencer: sequencer,
            writeId: written.writeId,
            contentHash,
          },
          previous?.revision,
        );
        if (!result.applied) continue;
        const { writeId, chunks, embedded } = written;
        // The status points at these chunks now: they are no longer this attempt's to delete.
        written = undefined;
        await this.announce(document.id, result.revision);
        await this.removeReplaced(document.id, result.replaced, writeId);
        if (chunks.length > RESUMABLE_CHUNKS) await this.table.clearEmbeddingProgress(document.id);
        return { docId: document.id, outcome: 'indexed', chunks: chunks.length, embedded };
      }
      throw new Error(`document ${document.id} kept changing during ${MAX_STATUS_ATTEMPTS} attempts`);
    } finally {
      // An attempt that did not become the document's version leaves no chunks behind.
      if (written) await this.table.deleteChunkVersion(document.id, written.writeId);
    }
  }

  /** Delete a document `key` no longer defines (a tombstone when it has no state yet). */
  private async release(docId: string, key: string, sequencer: string): Promise<DocumentOutcome | undefined> {
    for (let attempt = 0; attempt < MAX_STATUS_ATTEMPTS; attempt += 1) {
      const current = await this.table.documentStatus(docId);
      const decision = decideRelease(current, key, sequencer);
      if (decision === 'not-owned') return undefined;
      if (decision === 'stale') return this.stale(current, sequencer);
      const result = await this.table.writeStatus(
        {
          docId,
          status: 'deleted',
          chunks: 0,
          updatedAt: new Date(this.clock()).toISOString(),
          sourceKey: key,
          sourceSequencer: sequencer,
        },
        current?.revision,
      );
      if (!result.applied) continue;
      // Only a change of what is searchable is announced (a tombstone over nothing is not).
      if (current && current.status !== 'deleted') await this.announce(docId, result.revision);
      await this.removeReplaced(docId, result.replaced, undefined);
      return { docId, outcome: 'deleted' };
    }
    throw new Error(`document ${docId} kept changing during ${MAX_STATUS_ATTEMPTS} attempts`);
  }

  /**
   * A failed document keeps its previous indexed version searchable (nothing is announced); its
   * status says `failed` with the reason. Another key's document is left alone (a conflict).
   */
  private async fail(
    docId: string,
    key: string,
    sequencer: string,
    error: BisearchError,
  ): Promise<DocumentOutcome> {
    const reason = { code: error.code, message: error.message };
    for (let attempt = 0; attempt < MAX_STATUS_ATTEMPTS; attempt += 1) {
      const current = await this.table.documentStatus(docId);
      const decision = decideClaim(current, key, sequencer);
      if (decision === 'stale') return { ...(await this.stale(current, sequencer)), docId };
      if (decision === 'conflict') return conflict(docId, key, current as DocumentStatus);
      const keeps =
        current && current.sourceKey === key && current.status !== 'deleted' ? current : undefined;
      const result = await this.table.writeStatus(
        {
          docId,
          status: 'failed',
          chunks: keeps?.chunks ?? 0,
          updatedAt: new Date(this.clock()).toISOString(),
          sourceKey: key,
          sourceSequencer: sequencer,
          ...(keeps?.writeId ? { writeId: keeps.writeId } : {}),
          ...(keeps?.contentHash ? { contentHash: keeps.contentHash } : {}),
          ...(keeps?.announcedSequence !== undefined ? { announcedSequence: keeps.announcedSequence } : {}),
          error: reason,
        },
        current?.revision,
      );
      if (!result.applied) continue;
      // Taken over from another key's tombstone: that key's chunks (if any) are not kept.
      if (!keeps) await this.removeReplaced(docId, result.replaced, undefined);
      return { docId, outcome: 'failed', error: reason };
    }
    throw new Error(`document ${docId} kept changing during ${MAX_STATUS_ATTEMPTS} attempts`);
  }

  /**
   * An event no newer than the stored state is a replay or arrived out of order. A replay of the
   * version already stored whose announcement was lost (crash between status and log) is
   * announced now, so the change still reaches the query Lambdas.
   */
  private async stale(previous: DocumentStatus | undefined, sequencer: string): Promise<DocumentOutcome> {
    if (
      previous &&
      previous.sourceSequencer === sequencer &&
      previous.announcedSequence === undefined &&
      previous.status !== 'failed'
    ) {
      await this.announce(previous.docId, previous.revision);
    }
    return { docId: previous?.docId ?? '', outcome: 'stale' };
  }

  private async announce(docId: string, revision: number): Promise<void> {
    const sequence = await this.table.announce(docId);
    await this.table.markAnnounced(docId, revision, sequence);
  }

  /** Delete the chunks of the version a status write replaced, and old garbage of the document. */
  private async removeReplaced(
    docId: string,
    replaced: DocumentStatus | undefined,
    keepWriteId: string | undefined,
  ): Promise<void> {
    if (replaced?.writeId && replaced.writeId !== keepWriteId)
      await this.table.deleteChunkVersion(docId, replaced.writeId);
    await this.table.sweepOrphanChunks(docId, keepWriteId);
  }

  /**
   * Embed chunks, reusing the previous version's vectors for chunks whose content is unchanged
   * and, for a large document, the vectors an earlier invocation saved before it ran out of time.
   * When this invocation's time runs out first, its new vectors are saved and the run stops with
   * {@link ContinuationNeededError}.
   */
  private async embedReusing(
    docId: string,
    contentHash: string,
    chunks: Chunk[],
    previous: readonly EmbeddedChunk[],
    budget: RunBudget,
  ): Promise<{ chunks: EmbeddedChunk[]; embedded: number }> {
    const resumable = chunks.length > RESUMABLE_CHUNKS;
    const known = resumable
      ? await this.table.embeddingProgress(docId, contentHash)
      : new Map<string, Float32Array>();
    for (const chunk of previous) known.set(chunk.contentHash, chunk.vector);
    const fresh: Array<readonly [string, Float32Array]> = [];
    const cache = {
      get: (hash: string) => known.get(hash),
      set: (hash: string, vector: Float32Array) => {
        known.set(hash, vector);
        fresh.push([hash, vector]);
      },
    };
    const writeReserveMs = DOCUMENT_RESERVE_MS + chunks.length * WRITE_RESERVE_MS_PER_CHUNK;
    let groupStarted = this.clock();
    // Stop while two more groups and the chunk writes still fit: the next invocation goes on.
    const keepGoing = () => {
      const now = this.clock();
      const lastGroupMs = now - groupStarted;
      groupStarted = now;
      return this.hasTime(budget, 2 * lastGroupMs + writeReserveMs);
    };
    try {
      const result = await embedChunks(chunks, this.embedder, { cache, ...(resumable ? { keepGoing } : {}) });
      return { chunks: result, embedded: fresh.length };
    } catch (error) {
      if (!(error instanceof EmbeddingInterruptedError)) throw error;
      await this.table.saveEmbeddingProgress(docId, contentHash, fresh);
      budget.chunksSaved += fresh.length;
      this.logger?.info('document continues in a new invocation', {
        docId,
        chunks: chunks.length,
        done: error.done,
      });
      throw new ContinuationNeededError(budget.key, budget.documentsWritten, budget.chunksSaved);
    }
  }
}

function conflict(docId: string, key: string, owner: DocumentStatus): DocumentOutcome {
  return {
    docId,
    outcome: 'conflict',
    error: {
      code: 'DOCUMENT_ID_CONFLICT',
      message: `${key} and ${owner.sourceKey} both define document ${docId}; it stays as ${owner.sourceKey} defines it. Rename or remove one of them (then upload ${key} again)`,
    },
  };
}

function toSourceFailure(outcome: DocumentOutcome): SourceFailure {
  return {
    ...(outcome.line !== undefined ? { line: outcome.line } : {}),
    ...(outcome.line === undefined || !outcome.docId.includes(':') ? { docId: outcome.docId } : {}),
    code: outcome.error?.code ?? 'DOCUMENT_INVALID',
    message: outcome.error?.message ?? 'failed',
  };
}
