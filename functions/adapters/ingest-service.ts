import type { Logger } from '@aws-lambda-powertools/logger';
import { type Chunk, type ChunkingOptions, chunkDocument, documentContentHash } from '../core/chunking.js';
import type { EmbeddedChunk } from '../core/delta.js';
import { documentIdFromFileName, parseDocumentFile, type SourceDocument } from '../core/documents.js';
import type { TextEmbedder } from '../core/embedding-space.js';
import { BisearchError } from '../core/errors.js';
import { embedChunks } from '../core/indexing.js';
import { type DocumentBucket, DocumentTooLargeError } from './document-bucket.js';
import { type DocumentStatus, normalizeSequencer, type SearchTable } from './search-table.js';

/** One S3 object event, as the ingest queue delivers it. */
export interface S3ObjectEvent {
  readonly kind: 'created' | 'removed';
  readonly bucket: string;
  /** Object key, URL-decoded. */
  readonly key: string;
  /** S3 `sequencer`: orders events of the same key. */
  readonly sequencer: string;
}

/** What happened to one document of an event. */
export interface DocumentOutcome {
  readonly docId: string;
  readonly outcome: 'indexed' | 'unchanged' | 'deleted' | 'stale' | 'failed';
  readonly chunks?: number;
  readonly embedded?: number;
  readonly error?: { code: string; message: string };
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
      s3?: { bucket?: { name?: string }; object?: { key?: string; sequencer?: string } };
    };
    const key = record.s3?.object?.key;
    const eventName = record.eventName ?? '';
    if (!key || !record.s3?.bucket?.name || !record.s3.object?.sequencer) return [];
    const kind = eventName.startsWith('ObjectCreated')
      ? 'created'
      : eventName.startsWith('ObjectRemoved')
        ? 'removed'
        : undefined;
    if (!kind) return [];
    // S3 URL-encodes keys in notifications, with '+' for spaces.
    return [
      {
        kind,
        bucket: record.s3.bucket.name,
        key: decodeURIComponent(key.replace(/\+/g, ' ')),
        sequencer: record.s3.object.sequencer,
      },
    ];
  });
}

/**
 * Applies S3 object events to the table: parse → chunk → embed (reusing vectors of unchanged
 * chunks) → write chunks → status → change-log entry. Replays and out-of-order events are
 * ignored by S3 sequencer; a bad document becomes a `failed` status and is not retried; transient
 * failures (AWS, the model) throw so the queue redelivers the message.
 */
export class IngestService {
  constructor(
    private readonly table: SearchTable,
    private readonly documents: DocumentBucket,
    private readonly embedder: TextEmbedder,
    private readonly logger?: Logger,
    private readonly chunking: Omit<ChunkingOptions, 'maxTokens'> = {},
  ) {}

  async process(event: S3ObjectEvent): Promise<DocumentOutcome[]> {
    const sequencer = normalizeSequencer(event.sequencer);
    if (event.kind === 'removed') return this.removeSource(event.key, sequencer);
    let object: { bytes: Uint8Array; etag: string } | undefined;
    try {
      object = await this.documents.read(event.key);
    } catch (error) {
      if (!(error instanceof BisearchError)) throw error;
      const outcome = await this.fail(documentIdFromFileName(event.key), event.key, sequencer, error);
      // Recorded so that a waiter (bisearch ingest --wait) sees the upload as processed.
      await this.table.putSourceDocuments(
        event.key,
        [],
        sequencer,
        error instanceof DocumentTooLargeError ? error.etag : '',
      );
      return [outcome];
    }
    // Gone already: the removal event that follows will delete it.
    if (!object) return [{ docId: documentIdFromFileName(event.key), outcome: 'stale' }];
    const parsed = parseDocumentFile(event.key, object.bytes);
    const outcomes: DocumentOutcome[] = [];
    for (const failure of parsed.failures) {
      // A file that is one document fails that document; a bad JSON Lines line has no id to fail.
      if (failure.line === undefined)
        outcomes.push(await this.fail(documentIdFromFileName(event.key), event.key, sequencer, failure));
      else {
        this.logger?.warn('skipped a bad line', {
          key: event.key,
          line: failure.line,
          reason: failure.message,
        });
        outcomes.push({
          docId: `${event.key}:${failure.line}`,
          outcome: 'failed',
          error: { code: failure.code, message: failure.message },
        });
      }
    }
    for (const document of parsed.documents) outcomes.push(await this.upsert(document, event.key, sequencer));
    // Documents this object held before but no longer does are deleted.
    const previous = await this.table.sourceDocuments(event.key);
    const current = new Set(parsed.documents.map((document) => document.id));
    for (const docId of previous?.docIds ?? []) {
      if (!current.has(docId)) outcomes.push(await this.delete(docId, event.key, sequencer));
    }
    await this.table.putSourceDocuments(event.key, [...current], sequencer, object.etag);
    return outcomes;
  }

  private async removeSource(key: string, sequencer: string): Promise<DocumentOutcome[]> {
    const docIds = (await this.table.sourceDocuments(key))?.docIds ?? [documentIdFromFileName(key)];
    const outcomes: DocumentOutcome[] = [];
    for (const docId of docIds) outcomes.push(await this.delete(docId, key, sequencer));
    await this.table.putSourceDocuments(key, [], sequencer);
    return outcomes;
  }

  private async upsert(
    document: SourceDocument,
    sourceKey: string,
    sequencer: string,
  ): Promise<DocumentOutcome> {
    const previous = await this.table.documentStatus(document.id);
    const stale = await this.handleStale(previous, sequencer);
    if (stale) return stale;
    const contentHash = documentContentHash(document);
    const now = new Date().toISOString();
    if (previous?.status === 'indexed' && previous.contentHash === contentHash && previous.writeId) {
      // Same content re-uploaded: record the newer sequencer, nothing to re-embed or announce.
      const applied = await this.table.putStatusIfNewer({
        ...previous,
        sourceKey,
        sourceSequencer: sequencer,
        updatedAt: now,
      });
      return { docId: document.id, outcome: applied ? 'unchanged' : 'stale' };
    }
    const chunks = chunkDocument(document, this.embedder, {
      ...this.chunking,
      maxTokens: this.embedder.maxContentTokens,
    });
    const embedded = await this.embedReusing(chunks, previous);
    const writeId = this.table.newWriteId();
    await this.table.writeChunks(document.id, writeId, embedded.chunks);
    const applied = await this.table.putStatusIfNewer({
      docId: document.id,
      status: 'indexed',
      chunks: chunks.length,
      updatedAt: now,
      sourceKey,
      sourceSequencer: sequencer,
      writeId,
      contentHash,
    });
    if (!applied) {
      // A newer event won the race while this one embedded: drop what this one wrote.
      await this.table.deleteChunksExcept(
        document.id,
        (await this.table.documentStatus(document.id))?.writeId,
      );
      return { docId: document.id, outcome: 'stale' };
    }
    await this.table.announce(document.id, sequencer);
    await this.table.deleteChunksExcept(document.id, writeId);
    return { docId: document.id, outcome: 'indexed', chunks: chunks.length, embedded: embedded.embedded };
  }

  private async delete(docId: string, sourceKey: string, sequencer: string): Promise<DocumentOutcome> {
    const previous = await this.table.documentStatus(docId);
    const stale = await this.handleStale(previous, sequencer);
    if (stale) return stale;
    const applied = await this.table.putStatusIfNewer({
      docId,
      status: 'deleted',
      chunks: 0,
      updatedAt: new Date().toISOString(),
      sourceKey,
      sourceSequencer: sequencer,
    });
    if (!applied) return { docId, outcome: 'stale' };
    await this.table.announce(docId, sequencer);
    await this.table.deleteChunksExcept(docId, undefined);
    return { docId, outcome: 'deleted' };
  }

  /**
   * A failed document keeps its previous indexed version searchable (nothing is announced); its
   * status says `failed` with the reason.
   */
  private async fail(
    docId: string,
    sourceKey: string,
    sequencer: string,
    error: BisearchError,
  ): Promise<DocumentOutcome> {
    const previous = await this.table.documentStatus(docId);
    const stale = await this.handleStale(previous, sequencer);
    if (stale) return stale;
    const reason = { code: error.code, message: error.message };
    await this.table.putStatusIfNewer({
      docId,
      status: 'failed',
      chunks: previous?.chunks ?? 0,
      updatedAt: new Date().toISOString(),
      sourceKey,
      sourceSequencer: sequencer,
      ...(previous?.writeId ? { writeId: previous.writeId } : {}),
      ...(previous?.contentHash ? { contentHash: previous.contentHash } : {}),
      ...(previous?.announcedSequence !== undefined ? { announcedSequence: previous.announcedSequence } : {}),
      error: reason,
    });
    this.logger?.warn('document failed', { docId, sourceKey, code: error.code });
    return { docId, outcome: 'failed', error: reason };
  }

  /**
   * An event no newer than the stored state is a replay or arrived out of order. A replay of the
   * version already stored whose announcement was lost (crash between status and log) is
   * announced now, so the change still reaches the query Lambdas.
   */
  private async handleStale(
    previous: DocumentStatus | undefined,
    sequencer: string,
  ): Promise<DocumentOutcome | undefined> {
    if (!previous || previous.sourceSequencer < sequencer) return undefined;
    if (
      previous.sourceSequencer === sequencer &&
      previous.announcedSequence === undefined &&
      previous.status !== 'failed'
    ) {
      await this.table.announce(previous.docId, sequencer);
    }
    return { docId: previous.docId, outcome: 'stale' };
  }

  /** Embed chunks, reusing the previous version's vectors for chunks whose content is unchanged. */
  private async embedReusing(
    chunks: Chunk[],
    previous: DocumentStatus | undefined,
  ): Promise<{ chunks: EmbeddedChunk[]; embedded: number }> {
    const known = new Map<string, Float32Array>();
    if (previous?.writeId)
      for (const chunk of await this.table.chunksOf(previous)) known.set(chunk.contentHash, chunk.vector);
    let embedded = 0;
    const cache = {
      get: (hash: string) => known.get(hash),
      set: (hash: string, vector: Float32Array) => {
        known.set(hash, vector);
        embedded += 1;
      },
    };
    const result = await embedChunks(chunks, this.embedder, { cache });
    return { chunks: result, embedded };
  }
}
