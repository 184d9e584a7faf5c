import { randomUUID } from 'node:crypto';
import {
  BatchGetCommand,
  BatchWriteCommand,
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { Chunk } from '../../core/chunking.js';
import type { EmbeddedChunk } from '../../core/delta.js';
import type { DocumentMetadata } from '../../core/documents.js';
import { assertSameEmbeddingSpace, type EmbeddingSpace } from '../../core/embedding-space.js';

/** Lifecycle of a document as `GET /documents/{docId}` reports it. */
export type DocumentState = 'pending' | 'indexed' | 'failed' | 'deleted';

/**
 * The materialised state of one document. Written before the change-log entry that announces it,
 * so any reader that sees the entry sees this state or a newer one.
 */
export interface DocumentStatus {
  readonly docId: string;
  readonly status: DocumentState;
  readonly chunks: number;
  /** ISO-8601 time of the last change. */
  readonly updatedAt: string;
  readonly error?: { readonly code: string; readonly message: string };
  /** The S3 object the document came from. */
  readonly sourceKey: string;
  /** S3 event `sequencer` of the version applied, right-padded for ordering (see {@link normalizeSequencer}). */
  readonly sourceSequencer: string;
  /** Chunk items of this version live under this id. */
  readonly writeId?: string;
  /** Hash of the document content (id, title, text, metadata); unchanged content is not re-indexed. */
  readonly contentHash?: string;
  /** Change-log sequence that announced this version; absent until announced. */
  readonly announcedSequence?: number;
  /**
   * Incremented by every write of the status: writers compare-and-set on the revision they read,
   * so a decision taken on a state that changed meanwhile is never written. 0 for items written
   * before revisions existed.
   */
  readonly revision: number;
}

/** A document's status and the chunks of the version it points to, read consistently. */
export interface DocumentVersion {
  readonly status: DocumentStatus;
  readonly chunks: EmbeddedChunk[];
}

/** One entry of the change log the query Lambdas tail: "document X changed". */
export interface ChangeLogEntry {
  readonly sequence: number;
  readonly docId: string;
  readonly at: string;
}

/** A snapshot version as the pointer records it. */
export interface IndexVersionRecord {
  readonly version: string;
  /** Highest change-log sequence included. */
  readonly watermark: number;
  readonly builtAt: string;
  readonly vectors: number;
  /** S3 key prefix of the version's files (ends with `/`). */
  readonly prefix: string;
}

/** The index pointer: the version queries serve, and the one before it for rollback. */
export interface IndexPointer {
  readonly current?: IndexVersionRecord;
  readonly previous?: IndexVersionRecord;
  readonly updatedAt?: string;
  /** Outcome of the last reindex attempt, for status reporting. */
  readonly lastReindex?: {
    readonly at: string;
    readonly outcome: 'succeeded' | 'failed';
    readonly detail?: string;
  };
}

/** Thrown when the pointer changed since the caller read it (another reindex swapped first). */
export class PointerConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PointerConflictError';
  }
}

const SEQUENCE_DIGITS = 16;
/** Change-log entries are kept this long (DynamoDB TTL on AWS), well past the nightly reindex. */
export const CHANGE_LOG_RETENTION_SECONDS = 7 * 24 * 3600;
/** Saved embedding progress of an unfinished document outlives any retry schedule by far (DynamoDB TTL). */
export const EMBEDDING_PROGRESS_RETENTION_SECONDS = 24 * 3600;
/** Vector bytes per progress item, well under DynamoDB's 400 KB item limit. */
const EMBEDDING_PROGRESS_ITEM_BYTES = 300_000;
const padSequence = (sequence: number) => String(sequence).padStart(SEQUENCE_DIGITS, '0');
const padOrdinal = (ordinal: number) => String(ordinal).padStart(6, '0');
/**
 * Chunk items not referenced by their document's status and older than this are garbage from a
 * write that died (a crash between writing chunks and the status). 15 minutes is Lambda's longest
 * timeout: no encode invocation can still be about to reference them.
 */
export const ORPHAN_CHUNK_GRACE_MS = 15 * 60 * 1000;

/**
 * S3 sequencers of one key are ordered by comparing them as hex strings after right-padding the
 * shorter with zeros (AWS S3 event notification documentation). Padding to a fixed width makes
 * plain string comparison, including DynamoDB's `<` in conditions, do that.
 */
export function normalizeSequencer(sequencer: string): string {
  return sequencer.toUpperCase().padEnd(32, '0');
}

/** Options of a {@link SearchTable}. */
export interface SearchTableOptions {
  /** Milliseconds since the epoch; tests pass a clock they can advance. Default `Date.now`. */
  readonly clock?: () => number;
}

type Item = Record<string, unknown>;

/**
 * The single DynamoDB table of a bisearch stack (partition key `pk`, sort key `sk`, strings):
 *
 * | pk | sk | holds |
 * |---|---|---|
 * | `DOC#<docId>` | `STATUS` | {@link DocumentStatus} |
 * | `DOC#<docId>` | `CHUNK#<writeId>#<ordinal>` | a chunk with its float32 vector (binary) and write time |
 * | `SRC#<key>` | `SOURCE` | sequencer and ETag of the object version last processed, its failures |
 * | `SRC#<key>` | `DOC#<docId>` | one document the object defines (one item each: no item grows with a source) |
 * | `SRC#<key>` | `LOCK` | lease of the encoder processing the object (one at a time per key) |
 * | `PROGRESS#<docId>` | `<contentHash>#<uuid>` | vectors embedded before an encoder ran out of time (TTL 1 day) |
 * | `LOG` | `SEQ#<sequence>` | {@link ChangeLogEntry} |
 * | `META` | `POINTER` | {@link IndexPointer} |
 * | `META` | `SEQUENCE` | the change log's high-water sequence (never expires) |
 * | `META` | `EMBEDDING_SPACE` | the embedding space every stored vector belongs to |
 *
 * Only single-item conditional writes are used (no transactions), so the same code runs on
 * DynamoDB and on the dynalite emulator. Ordering comes from the write order: chunks (under a
 * fresh write id), then the status (compare-and-set on its revision), then a change-log entry
 * whose sequence is taken from an atomic counter, then the removal of the chunks the status no
 * longer points to. An entry with sequence n is therefore written after the status it announces,
 * and every sequence up to the counter was taken after its status was written; entries of two
 * writers may land out of order (readers wait for holes, see `ChangeLogCursor`). Chunk items are
 * only ever deleted by the writer that replaced the status pointing to them (or, as garbage, once
 * no writer can still reference them).
 */
export class SearchTable {
  private readonly clock: () => number;

  constructor(
    private readonly client: DynamoDBDocumentClient,
    /** Table name (≥ 3 characters). */
    readonly tableName: string,
    options: SearchTableOptions = {},
  ) {
    this.clock = options.clock ?? Date.now;
  }

  // --- embedding space ----------------------------------------------------------------------

  /**
   * Record the embedding space on first use; afterwards refuse any other one, so vectors of two
   * models never end up in one index.
   */
  async ensureEmbeddingSpace(space: EmbeddingSpace): Promise<void> {
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { pk: 'META', sk: 'EMBEDDING_SPACE', ...space },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const stored = await this.embeddingSpace();
      if (stored) assertSameEmbeddingSpace(stored, space, `table ${this.tableName}`);
    }
  }

  async embeddingSpace(): Promise<EmbeddingSpace | undefined> {
    const item = await this.get('META', 'EMBEDDING_SPACE');
    if (!item) return undefined;
    return {
      modelId: String(item.modelId),
      // Spaces recorded before fingerprints existed have none; the comparison then uses modelId.
      ...(typeof item.fingerprint === 'string' ? { fingerprint: item.fingerprint } : {}),
      dimensions: Number(item.dimensions),
      pooling: item.pooling as EmbeddingSpace['pooling'],
      normalized: Boolean(item.normalized),
    };
  }

  // --- documents ----------------------------------------------------------------------------

  async documentStatus(docId: string): Promise<DocumentStatus | undefined> {
    const item = await this.get(`DOC#${docId}`, 'STATUS');
    return item ? toStatus(item) : undefined;
  }

  /**
   * A document's status and the chunks it points to, consistent with each other: the chunks of a
   * replaced version are deleted right after the swap, so a read that finds fewer chunks than the
   * status promises reads the status again. Undefined when the document has no status.
   */
  async readDocument(docId: string, attempts = 5): Promise<DocumentVersion | undefined> {
    for (let attempt = 1; ; attempt += 1) {
      const status = await this.documentStatus(docId);
      if (!status) return undefined;
      if (status.status === 'deleted' || !status.writeId) return { status, chunks: [] };
      const chunks = await this.chunksOf(status);
      if (chunks.length === status.chunks || attempt >= attempts) return { status, chunks };
    }
  }

  /**
   * {@link readDocument} for many documents at once: statuses by BatchGetItem (100 per call,
   * strongly consistent), chunks by at most `parallelism` Queries in flight. A document whose
   * chunks were replaced between the two reads is read again on its own. Absent documents are
   * missing from the map.
   */
  async readDocuments(docIds: readonly string[], parallelism = 16): Promise<Map<string, DocumentVersion>> {
    const statuses = await this.batchGetStatuses(docIds);
    const versions = new Map<string, DocumentVersion>();
    const pending = [...statuses.values()];
    const worker = async () => {
      for (let status = pending.pop(); status; status = pending.pop()) {
        if (status.status === 'deleted' || !status.writeId) {
          versions.set(status.docId, { status, chunks: [] });
          continue;
        }
        const chunks = await this.chunksOf(status);
        if (chunks.length === status.chunks) versions.set(status.docId, { status, chunks });
        else {
          const reread = await this.readDocument(status.docId);
          if (reread) versions.set(status.docId, reread);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, parallelism) }, worker));
    return versions;
  }

  /** Statuses of many documents (BatchGetItem, 100 keys per call, unprocessed keys retried). */
  private async batchGetStatuses(docIds: readonly string[]): Promise<Map<string, DocumentStatus>> {
    const statuses = new Map<string, DocumentStatus>();
    const unique = [...new Set(docIds)];
    for (let start = 0; start < unique.length; start += 100) {
      let keys: Array<Record<string, unknown>> = unique
        .slice(start, start + 100)
        .map((docId) => ({ pk: `DOC#${docId}`, sk: 'STATUS' }));
      for (let attempt = 0; keys.length > 0; attempt += 1) {
        if (attempt > 8)
          throw new Error(`DynamoDB left ${keys.length} reads unprocessed after ${attempt} attempts`);
        if (attempt > 0)
          await new Promise((resolve) => setTimeout(resolve, Math.random() * 50 * 2 ** attempt));
        const result = await this.client.send(
          new BatchGetCommand({
            RequestItems: { [this.tableName]: { Keys: keys, ConsistentRead: true } },
          }),
        );
        for (const item of result.Responses?.[this.tableName] ?? []) {
          const status = toStatus(item);
          statuses.set(status.docId, status);
        }
        keys =
          (result.UnprocessedKeys?.[this.tableName]?.Keys as Array<Record<string, unknown>> | undefined) ??
          [];
      }
    }
    return statuses;
  }

  /** A fresh id under which a new version's chunk items are written. */
  newWriteId(): string {
    return randomUUID();
  }

  /** Write chunk items (with vectors) of one document version, 25 per batch, retrying unprocessed items. */
  async writeChunks(docId: string, writeId: string, chunks: readonly EmbeddedChunk[]): Promise<void> {
    const writtenAt = this.clock();
    const items = chunks.map((chunk) => ({
      pk: `DOC#${docId}`,
      sk: `CHUNK#${writeId}#${padOrdinal(chunk.ordinal)}`,
      chunkId: chunk.chunkId,
      docId,
      ordinal: chunk.ordinal,
      ...(chunk.title ? { title: chunk.title } : {}),
      text: chunk.text,
      metadata: chunk.metadata,
      contentHash: chunk.contentHash,
      vector: new Uint8Array(chunk.vector.buffer, chunk.vector.byteOffset, chunk.vector.byteLength),
      writtenAt,
    }));
    await this.batchWrite(items.map((Item) => ({ PutRequest: { Item } })));
  }

  /** The chunks (with vectors) of the version a status points to, in ordinal order. */
  async chunksOf(status: Pick<DocumentStatus, 'docId' | 'writeId'>): Promise<EmbeddedChunk[]> {
    if (!status.writeId) return [];
    const items = await this.queryAll(`DOC#${status.docId}`, `CHUNK#${status.writeId}#`);
    return items.map(toEmbeddedChunk);
  }

  // --- embedding progress of long documents ------------------------------------------------

  /**
   * Keep vectors an encoder embedded before it ran out of time, so the invocation that continues
   * the document does not embed them again. Items are keyed by the document's content hash (a
   * changed document never reuses them), append-only (no read-modify-write between encoders),
   * hold at most ~300 KB of vectors each (DynamoDB's item limit is 400 KB), and expire by TTL after
   * {@link EMBEDDING_PROGRESS_RETENTION_SECONDS} if the document is never finished.
   */
  async saveEmbeddingProgress(
    docId: string,
    documentHash: string,
    vectors: ReadonlyArray<readonly [contentHash: string, vector: Float32Array]>,
  ): Promise<void> {
    if (vectors.length === 0) return;
    const bytesPerVector = (vectors[0]?.[1].byteLength ?? 0) + 80;
    const perItem = Math.max(1, Math.floor(EMBEDDING_PROGRESS_ITEM_BYTES / bytesPerVector));
    const expiresAt = Math.floor(this.clock() / 1000) + EMBEDDING_PROGRESS_RETENTION_SECONDS;
    const items: Item[] = [];
    for (let start = 0; start < vectors.length; start += perItem) {
      const part = vectors.slice(start, start + perItem);
      const packed = new Float32Array(part.reduce((sum, [, vector]) => sum + vector.length, 0));
      let offset = 0;
      for (const [, vector] of part) {
        packed.set(vector, offset);
        offset += vector.length;
      }
      items.push({
        pk: `PROGRESS#${docId}`,
        sk: `${documentHash}#${randomUUID()}`,
        hashes: part.map(([hash]) => hash),
        dimensions: part[0]?.[1].length ?? 0,
        vectors: new Uint8Array(packed.buffer),
        expiresAt,
      });
    }
    await this.batchWrite(items.map((Item) => ({ PutRequest: { Item } })));
  }

  /** Vectors saved by {@link saveEmbeddingProgress} for this content of the document, by chunk content hash. */
  async embeddingProgress(docId: string, documentHash: string): Promise<Map<string, Float32Array>> {
    const vectors = new Map<string, Float32Array>();
    const now = Math.floor(this.clock() / 1000);
    for (const item of await this.queryAll(`PROGRESS#${docId}`, `${documentHash}#`)) {
      // TTL deletes lazily (up to days late on AWS): an expired item is treated as gone.
      if (Number(item.expiresAt) <= now) continue;
      const bytes = item.vectors as Uint8Array;
      const packed = new Float32Array(bytes.byteLength / 4);
      new Uint8Array(packed.buffer).set(bytes);
      const dimensions = Number(item.dimensions);
      (item.hashes as string[]).forEach((hash, index) => {
        vectors.set(hash, packed.slice(index * dimensions, (index + 1) * dimensions));
      });
    }
    return vectors;
  }

  /** Forget a document's saved progress (every content version), once a version is written. */
  async clearEmbeddingProgress(docId: string): Promise<void> {
    const items = await this.queryAll(`PROGRESS#${docId}`, '', ['pk', 'sk']);
    await this.batchWrite(items.map((item) => ({ DeleteRequest: { Key: { pk: item.pk, sk: item.sk } } })));
  }

  /** Delete the chunk items of one version (one this writer replaced, or its own aborted write). */
  async deleteChunkVersion(docId: string, writeId: string): Promise<void> {
    const items = await this.queryAll(`DOC#${docId}`, `CHUNK#${writeId}#`, ['pk', 'sk']);
    await this.batchWrite(items.map((item) => ({ DeleteRequest: { Key: { pk: item.pk, sk: item.sk } } })));
  }

  /**
   * Delete chunk items of a document that no status references and that are older than
   * {@link ORPHAN_CHUNK_GRACE_MS} (garbage of writes that died). Never touches `keepWriteId`, nor
   * a recent write that a running encoder may still be about to reference. Returns how many.
   */
  async sweepOrphanChunks(docId: string, keepWriteId: string | undefined): Promise<number> {
    const cutoff = this.clock() - ORPHAN_CHUNK_GRACE_MS;
    const items = await this.queryAll(`DOC#${docId}`, 'CHUNK#', ['pk', 'sk', 'writtenAt']);
    const garbage = items.filter(
      (item) =>
        !(keepWriteId && String(item.sk).startsWith(`CHUNK#${keepWriteId}#`)) &&
        Number(item.writtenAt ?? 0) < cutoff,
    );
    await this.batchWrite(garbage.map((item) => ({ DeleteRequest: { Key: { pk: item.pk, sk: item.sk } } })));
    return garbage.length;
  }

  /**
   * Write a document's status if it is still at `expectedRevision` (undefined: no status yet),
   * as revision + 1. Returns whether it was written and, if so, the status it replaced (whose
   * chunks the caller now owns and deletes).
   */
  async writeStatus(
    next: Omit<DocumentStatus, 'revision'>,
    expectedRevision: number | undefined,
  ): Promise<{ applied: boolean; revision: number; replaced?: DocumentStatus }> {
    const revision = (expectedRevision ?? 0) + 1;
    try {
      const result = await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { pk: `DOC#${next.docId}`, sk: 'STATUS', ...next, revision },
          ConditionExpression:
            expectedRevision === undefined
              ? 'attribute_not_exists(pk)'
              : expectedRevision === 0
                ? 'attribute_not_exists(revision) OR revision = :revision'
                : 'revision = :revision',
          ...(expectedRevision === undefined
            ? {}
            : { ExpressionAttributeValues: { ':revision': expectedRevision } }),
          ReturnValues: 'ALL_OLD',
        }),
      );
      return {
        applied: true,
        revision,
        ...(result.Attributes ? { replaced: toStatus(result.Attributes) } : {}),
      };
    } catch (error) {
      if (isConditionFailure(error)) return { applied: false, revision };
      throw error;
    }
  }

  /** Record on the status which change-log entry announced it, if it is still that revision. */
  async markAnnounced(docId: string, revision: number, sequence: number): Promise<void> {
    await this.writeIfConditionHolds(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { pk: `DOC#${docId}`, sk: 'STATUS' },
        UpdateExpression: 'SET announcedSequence = :sequence',
        ConditionExpression: 'revision = :revision',
        ExpressionAttributeValues: { ':sequence': sequence, ':revision': revision },
      }),
    );
  }

  /**
   * Announce a document change: take the next sequence from the atomic counter (`META/SEQUENCE`,
   * one `ADD` that never conflicts, however many encoders announce at once), then write the entry.
   * Two writers' entries can land out of order for the moment between increment and put; readers
   * wait for such holes (`ChangeLogCursor`). The put keeps its must-not-exist condition only to
   * step over an entry of a table written before the counter existed. Throttling and 5xx are
   * retried by the SDK with jittered exponential backoff.
   */
  async announce(docId: string): Promise<number> {
    for (let attempt = 0; ; attempt += 1) {
      const sequence = await this.takeSequence();
      const at = this.clock();
      const written = await this.writeIfConditionHolds(
        new PutCommand({
          TableName: this.tableName,
          Item: {
            pk: 'LOG',
            sk: `SEQ#${padSequence(sequence)}`,
            sequence,
            docId,
            at: new Date(at).toISOString(),
            expiresAt: Math.floor(at / 1000) + CHANGE_LOG_RETENTION_SECONDS,
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      if (written) return sequence;
      if (attempt >= 100) throw new Error(`change-log sequence ${sequence} is taken; the counter is behind`);
    }
  }

  /**
   * One page of document statuses, in the table's stable scan order: at most `limit`, optionally
   * of one state, resuming after `after` (the key the previous page ended on). The scan reads
   * items of every kind and keeps statuses, so a page stops early once `budgetMs` has passed
   * (`next` is then set although fewer than `limit` came back): no request scans the table
   * unbounded. Without `next` the listing is complete.
   */
  async listStatuses(options: {
    readonly limit: number;
    readonly after?: { readonly pk: string; readonly sk: string };
    readonly state?: DocumentState;
    readonly budgetMs?: number;
    /** Items evaluated per Scan call (DynamoDB's `Limit`); default: 1 MB pages. */
    readonly scanPageItems?: number;
  }): Promise<{ statuses: DocumentStatus[]; next?: { pk: string; sk: string } }> {
    const deadline = this.clock() + (options.budgetMs ?? 5_000);
    const statuses: DocumentStatus[] = [];
    let startKey: Item | undefined = options.after;
    for (;;) {
      const page = await this.client.send(
        new ScanCommand({
          TableName: this.tableName,
          FilterExpression: options.state ? 'sk = :sortKey AND #state = :state' : 'sk = :sortKey',
          ExpressionAttributeValues: {
            ':sortKey': 'STATUS',
            ...(options.state ? { ':state': options.state } : {}),
          },
          ...(options.state ? { ExpressionAttributeNames: { '#state': 'status' } } : {}),
          ConsistentRead: true,
          ...(options.scanPageItems ? { Limit: options.scanPageItems } : {}),
          ...(startKey ? { ExclusiveStartKey: startKey } : {}),
        }),
      );
      for (const item of page.Items ?? []) {
        statuses.push(toStatus(item));
        if (statuses.length === options.limit) {
          // Resume right after this item (scan order is stable), whether or not the page went on.
          const last = { pk: String(item.pk), sk: String(item.sk) };
          const more = page.LastEvaluatedKey !== undefined || item !== page.Items?.at(-1);
          return more ? { statuses, next: last } : { statuses };
        }
      }
      startKey = page.LastEvaluatedKey;
      if (!startKey) return { statuses };
      if (this.clock() >= deadline)
        return { statuses, next: { pk: String(startKey.pk), sk: String(startKey.sk) } };
    }
  }

  /** Take the next change-log sequence from the atomic counter (one `ADD`; never conflicts). */
  async takeSequence(): Promise<number> {
    const counter = await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { pk: 'META', sk: 'SEQUENCE' },
        UpdateExpression: 'ADD #last :one',
        ExpressionAttributeNames: { '#last': 'last' },
        ExpressionAttributeValues: { ':one': 1 },
        ReturnValues: 'UPDATED_NEW',
      }),
    );
    return Number(counter.Attributes?.last);
  }

  /**
   * Ids of every document with a searchable version (indexed, or failed over a kept version),
   * sorted: a parallel scan (`segments` segments at once, status items only, three attributes
   * projected), so the export of a large table is not one long sequential scan.
   */
  async liveDocumentIds(segments = 8): Promise<string[]> {
    const ids: string[] = [];
    await Promise.all(
      Array.from({ length: segments }, async (_, segment) => {
        let startKey: Item | undefined;
        do {
          const page = await this.client.send(
            new ScanCommand({
              TableName: this.tableName,
              Segment: segment,
              TotalSegments: segments,
              FilterExpression: 'sk = :status AND #status <> :deleted AND attribute_exists(writeId)',
              ProjectionExpression: 'docId',
              ExpressionAttributeNames: { '#status': 'status' },
              ExpressionAttributeValues: { ':status': 'STATUS', ':deleted': 'deleted' },
              ConsistentRead: true,
              ...(startKey ? { ExclusiveStartKey: startKey } : {}),
            }),
          );
          for (const item of page.Items ?? []) ids.push(String(item.docId));
          startKey = page.LastEvaluatedKey;
        } while (startKey);
      }),
    );
    return ids.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /** Every document status (paginated scan), for exports and status reports. */
  async *statuses(): AsyncGenerator<DocumentStatus> {
    for await (const item of this.scanSortKey('STATUS')) yield toStatus(item);
  }

  // --- sources (uploaded objects) -----------------------------------------------------------

  /** What is known of one uploaded object, with the ids of the documents it defines. */
  async sourceDocuments(sourceKey: string): Promise<SourceRecord | undefined> {
    const [item, items] = await Promise.all([
      this.get(`SRC#${sourceKey}`, 'SOURCE'),
      this.queryAll(`SRC#${sourceKey}`, 'DOC#', ['sk']),
    ]);
    const members = memberIds(items, item);
    if (!item && members.length === 0) return undefined;
    return toSource(item ?? { sourceKey, sequencer: '', etag: '' }, members);
  }

  /** The ETag (empty after a removal) and sequencer last processed for an object, if any. */
  async sourceHead(sourceKey: string): Promise<{ etag: string; sequencer: string } | undefined> {
    const item = await this.get(`SRC#${sourceKey}`, 'SOURCE');
    return item ? { etag: String(item.etag ?? ''), sequencer: String(item.sequencer ?? '') } : undefined;
  }

  /** Ids of the documents an object defines (its membership items, plus a pre-membership list). */
  async sourceMembers(sourceKey: string): Promise<string[]> {
    const [items, head] = await Promise.all([
      this.queryAll(`SRC#${sourceKey}`, 'DOC#', ['sk']),
      this.get(`SRC#${sourceKey}`, 'SOURCE'),
    ]);
    return memberIds(items, head);
  }

  /** Record that an object defines a document (idempotent). */
  async addSourceMember(sourceKey: string, docId: string): Promise<void> {
    await this.client.send(
      new PutCommand({ TableName: this.tableName, Item: { pk: `SRC#${sourceKey}`, sk: `DOC#${docId}` } }),
    );
  }

  /** Record that an object no longer defines a document. */
  async removeSourceMember(sourceKey: string, docId: string): Promise<void> {
    await this.client.send(
      new DeleteCommand({ TableName: this.tableName, Key: { pk: `SRC#${sourceKey}`, sk: `DOC#${docId}` } }),
    );
  }

  /** Every source record (paginated scan): which objects were processed, at which ETag (no member ids). */
  async *sources(): AsyncGenerator<SourceRecord> {
    for await (const item of this.scanSortKey('SOURCE')) yield toSource(item, []);
  }

  /**
   * Record the object version processed (its ETag; empty after a removal) and its failures,
   * unless a newer event of the object was recorded. Written last: a source whose ETag matches
   * the object's is fully processed.
   */
  async putSourceRecord(
    sourceKey: string,
    record: { sequencer: string; etag?: string; failures?: readonly SourceFailure[] },
  ): Promise<void> {
    const failures = record.failures ?? [];
    await this.writeIfConditionHolds(
      new PutCommand({
        TableName: this.tableName,
        Item: {
          pk: `SRC#${sourceKey}`,
          sk: 'SOURCE',
          sourceKey,
          sequencer: record.sequencer,
          etag: record.etag ?? '',
          failureCount: failures.length,
          // Bounded: a file of a million bad lines must not outgrow DynamoDB's 400 KB item.
          failures: failures.slice(0, MAX_RECORDED_FAILURES),
        },
        ConditionExpression: 'attribute_not_exists(sequencer) OR sequencer <= :sequencer',
        ExpressionAttributeValues: { ':sequencer': record.sequencer },
      }),
    );
  }

  /**
   * Take the lease of one object for `leaseMs` (one encoder per key at a time; a lease whose
   * holder died expires). Returns false while another holder's lease runs.
   */
  async acquireSourceLease(sourceKey: string, owner: string, leaseMs: number): Promise<boolean> {
    const now = this.clock();
    return this.writeIfConditionHolds(
      new PutCommand({
        TableName: this.tableName,
        Item: {
          pk: `SRC#${sourceKey}`,
          sk: 'LOCK',
          owner,
          leaseUntil: now + leaseMs,
          expiresAt: Math.ceil((now + leaseMs) / 1000) + 3600,
        },
        ConditionExpression: 'attribute_not_exists(pk) OR leaseUntil < :now OR #owner = :owner',
        ExpressionAttributeNames: { '#owner': 'owner' },
        ExpressionAttributeValues: { ':now': now, ':owner': owner },
      }),
    );
  }

  /**
   * Drop every source lease. Only for a runtime that knows none of its encoders is alive: the
   * local stack at start, after a crash (otherwise a dead process's lease would hold its key
   * until it expires and the queue redelivers, minutes later).
   */
  async clearSourceLeases(): Promise<number> {
    let cleared = 0;
    for await (const item of this.scanSortKey('LOCK')) {
      await this.client.send(
        new DeleteCommand({ TableName: this.tableName, Key: { pk: item.pk, sk: item.sk } }),
      );
      cleared += 1;
    }
    return cleared;
  }

  /** Give a lease back (only its holder can). */
  async releaseSourceLease(sourceKey: string, owner: string): Promise<void> {
    try {
      await this.client.send(
        new DeleteCommand({
          TableName: this.tableName,
          Key: { pk: `SRC#${sourceKey}`, sk: 'LOCK' },
          ConditionExpression: '#owner = :owner',
          ExpressionAttributeNames: { '#owner': 'owner' },
          ExpressionAttributeValues: { ':owner': owner },
        }),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
  }

  // --- change log ---------------------------------------------------------------------------

  /**
   * Highest sequence taken (0 when nothing was ever written): the counter, which never expires
   * (entries do, by TTL after 7 days), so numbering can never restart below a watermark that a
   * snapshot or a query instance holds. Strongly consistent. Every sequence up to it was taken
   * after the status it announces was written, which is what a snapshot watermark relies on.
   * The newest entry is read too, for a table written before the counter existed.
   */
  async latestSequence(): Promise<number> {
    const [page, highWater] = await Promise.all([
      this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: 'pk = :log',
          ExpressionAttributeValues: { ':log': 'LOG' },
          ScanIndexForward: false,
          Limit: 1,
          ConsistentRead: true,
        }),
      ),
      this.get('META', 'SEQUENCE'),
    ]);
    return Math.max(Number(page.Items?.[0]?.sequence ?? 0), Number(highWater?.last ?? 0));
  }

  /**
   * Raise the never-expiring high-water mark of the change log to `sequence` (never lowers it).
   * Written after each entry, and by the reindex with its watermark, so that even an entry whose
   * writer died before raising it is covered once the nightly run has passed, long before TTL.
   */
  async raiseSequenceHighWater(sequence: number): Promise<void> {
    await this.writeIfConditionHolds(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { pk: 'META', sk: 'SEQUENCE' },
        UpdateExpression: 'SET #last = :sequence',
        ConditionExpression: 'attribute_not_exists(#last) OR #last < :sequence',
        ExpressionAttributeNames: { '#last': 'last' },
        ExpressionAttributeValues: { ':sequence': sequence },
      }),
    );
  }

  /** Entries with a sequence above `after`, oldest first, at most `limit`. */
  async changesAfter(after: number, limit = 1_000): Promise<ChangeLogEntry[]> {
    const page = await this.client.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: 'pk = :log AND sk > :after',
        ExpressionAttributeValues: { ':log': 'LOG', ':after': `SEQ#${padSequence(after)}` },
        ConsistentRead: true,
        Limit: limit,
      }),
    );
    return (page.Items ?? []).map((item) => ({
      sequence: Number(item.sequence),
      docId: String(item.docId),
      at: String(item.at),
    }));
  }

  // --- index pointer ------------------------------------------------------------------------

  async readPointer(): Promise<IndexPointer> {
    const item = await this.get('META', 'POINTER');
    if (!item) return {};
    return {
      ...(item.current ? { current: item.current as IndexVersionRecord } : {}),
      ...(item.previous ? { previous: item.previous as IndexVersionRecord } : {}),
      ...(item.updatedAt ? { updatedAt: String(item.updatedAt) } : {}),
      ...(item.lastReindex ? { lastReindex: item.lastReindex as IndexPointer['lastReindex'] } : {}),
    } as IndexPointer;
  }

  /**
   * Point queries at `next`, keeping the current version as `previous`, only if the pointer still
   * names `expectedCurrent` (undefined: no version yet) and `next` is not older than it. Of two
   * concurrent reindexes that both read the same pointer, only one can swap.
   */
  async swapPointer(
    next: IndexVersionRecord,
    expectedCurrent: IndexVersionRecord | undefined,
  ): Promise<void> {
    const now = new Date().toISOString();
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: {
            pk: 'META',
            sk: 'POINTER',
            current: next,
            ...(expectedCurrent ? { previous: expectedCurrent } : {}),
            updatedAt: now,
            lastReindex: { at: now, outcome: 'succeeded', detail: next.version },
          },
          ConditionExpression: expectedCurrent
            ? '#current.#version = :expected AND #current.watermark <= :watermark'
            : 'attribute_not_exists(#current)',
          ExpressionAttributeNames: expectedCurrent
            ? { '#current': 'current', '#version': 'version' }
            : { '#current': 'current' },
          ...(expectedCurrent
            ? {
                ExpressionAttributeValues: {
                  ':expected': expectedCurrent.version,
                  ':watermark': next.watermark,
                },
              }
            : {}),
        }),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      throw new PointerConflictError(
        `index pointer changed since this reindex started (expected ${expectedCurrent?.version ?? 'no version'}); not swapping to ${next.version}`,
      );
    }
  }

  /** Record a failed reindex on the pointer item without touching the versions. */
  async recordReindexFailure(detail: string): Promise<void> {
    await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { pk: 'META', sk: 'POINTER' },
        UpdateExpression: 'SET lastReindex = :outcome',
        ExpressionAttributeValues: {
          ':outcome': { at: new Date().toISOString(), outcome: 'failed', detail: detail.slice(0, 1_000) },
        },
      }),
    );
  }

  // --- helpers ------------------------------------------------------------------------------

  /** Send a conditional write; false (and nothing written) when its condition did not hold. */
  private async writeIfConditionHolds(command: PutCommand | UpdateCommand): Promise<boolean> {
    try {
      await this.client.send(command as PutCommand);
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  /** Every item with this sort key (a strongly consistent, paginated scan). */
  private async *scanSortKey(sortKey: string): AsyncGenerator<Item> {
    let startKey: Item | undefined;
    do {
      const page = await this.client.send(
        new ScanCommand({
          TableName: this.tableName,
          FilterExpression: 'sk = :sortKey',
          ExpressionAttributeValues: { ':sortKey': sortKey },
          ConsistentRead: true,
          ...(startKey ? { ExclusiveStartKey: startKey } : {}),
        }),
      );
      yield* page.Items ?? [];
      startKey = page.LastEvaluatedKey;
    } while (startKey);
  }

  private async get(pk: string, sk: string): Promise<Item | undefined> {
    const result = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: { pk, sk }, ConsistentRead: true }),
    );
    return result.Item;
  }

  private async queryAll(pk: string, skPrefix: string, projection?: string[]): Promise<Item[]> {
    const items: Item[] = [];
    let startKey: Item | undefined;
    do {
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          // DynamoDB refuses an empty string for a key attribute, so "every item" has no prefix.
          KeyConditionExpression: skPrefix ? 'pk = :pk AND begins_with(sk, :prefix)' : 'pk = :pk',
          ExpressionAttributeValues: skPrefix ? { ':pk': pk, ':prefix': skPrefix } : { ':pk': pk },
          ConsistentRead: true,
          ...(projection ? { ProjectionExpression: projection.map((_, i) => `#p${i}`).join(', ') } : {}),
          ...(projection
            ? { ExpressionAttributeNames: Object.fromEntries(projection.map((name, i) => [`#p${i}`, name])) }
            : {}),
          ...(startKey ? { ExclusiveStartKey: startKey } : {}),
        }),
      );
      items.push(...(page.Items ?? []));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return items;
  }

  private async batchWrite(requests: Array<Record<string, unknown>>): Promise<void> {
    for (let start = 0; start < requests.length; start += 25) {
      let pending: Array<Record<string, unknown>> = requests.slice(start, start + 25);
      for (let attempt = 0; pending.length > 0; attempt += 1) {
        if (attempt > 8)
          throw new Error(`DynamoDB left ${pending.length} writes unprocessed after ${attempt} attempts`);
        if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 50 * 2 ** attempt));
        const result = await this.client.send(
          new BatchWriteCommand({ RequestItems: { [this.tableName]: pending as never } }),
        );
        pending =
          (result.UnprocessedItems?.[this.tableName] as Array<Record<string, unknown>> | undefined) ?? [];
      }
    }
  }
}

/** At most this many failures of one source are kept (with the total count). */
export const MAX_RECORDED_FAILURES = 100;

/** One document or line of a source that could not be indexed; positions and codes, never content. */
export interface SourceFailure {
  /** 1-based line of a JSON Lines source. */
  readonly line?: number;
  readonly docId?: string;
  readonly code: string;
  readonly message: string;
}

/** What the table knows of one uploaded object. */
export interface SourceRecord {
  readonly sourceKey: string;
  readonly docIds: string[];
  readonly sequencer: string;
  /** ETag of the object version processed; empty once removed. */
  readonly etag: string;
  /** Failures of the version processed (at most {@link MAX_RECORDED_FAILURES}). */
  readonly failures: SourceFailure[];
  /** How many failures there were in all. */
  readonly failureCount: number;
}

/** Member ids from membership items, plus the list that heads recorded before membership items existed. */
function memberIds(items: Item[], head: Item | undefined): string[] {
  const ids = new Set(items.map((item) => String(item.sk).slice('DOC#'.length)));
  for (const docId of (head?.docIds as string[] | undefined) ?? []) ids.add(docId);
  return [...ids];
}

function toSource(item: Item, docIds: string[]): SourceRecord {
  return {
    sourceKey: String(item.sourceKey ?? String(item.pk).slice('SRC#'.length)),
    docIds,
    sequencer: String(item.sequencer ?? ''),
    etag: String(item.etag ?? ''),
    failures: (item.failures as SourceFailure[] | undefined) ?? [],
    failureCount: Number(item.failureCount ?? 0),
  };
}

/** DynamoDB's answer to a write whose condition did not hold. */
function isConditionFailure(error: unknown): boolean {
  return (error as Error | undefined)?.name === 'ConditionalCheckFailedException';
}

function toStatus(item: Item): DocumentStatus {
  const { pk: _pk, sk: _sk, ...status } = item;
  return { ...status, revision: Number(status.revision ?? 0) } as unknown as DocumentStatus;
}

function toEmbeddedChunk(item: Item): EmbeddedChunk {
  const bytes = item.vector as Uint8Array;
  // Copy into an aligned buffer: the SDK's Uint8Array may sit at any offset of a shared buffer.
  const vector = new Float32Array(bytes.byteLength / 4);
  new Uint8Array(vector.buffer).set(bytes);
  const chunk: Chunk = {
    chunkId: String(item.chunkId),
    docId: String(item.docId),
    ordinal: Number(item.ordinal),
    ...(item.title ? { title: String(item.title) } : {}),
    text: String(item.text ?? ''),
    metadata: (item.metadata ?? {}) as DocumentMetadata,
    contentHash: String(item.contentHash),
  };
  return { ...chunk, vector };
}
