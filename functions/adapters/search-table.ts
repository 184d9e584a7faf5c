import { randomUUID } from 'node:crypto';
import {
  BatchWriteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { Chunk } from '../core/chunking.js';
import type { EmbeddedChunk } from '../core/delta.js';
import type { DocumentMetadata } from '../core/documents.js';
import { assertSameEmbeddingSpace, type EmbeddingSpace } from '../core/embedding-space.js';

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
const CHANGE_LOG_RETENTION_SECONDS = 7 * 24 * 3600;
const padSequence = (sequence: number) => String(sequence).padStart(SEQUENCE_DIGITS, '0');
const padOrdinal = (ordinal: number) => String(ordinal).padStart(6, '0');

/**
 * S3 sequencers of one key are ordered by comparing them as hex strings after right-padding the
 * shorter with zeros (AWS S3 event notification documentation). Padding to a fixed width makes
 * plain string comparison, including DynamoDB's `<` in conditions, do that.
 */
export function normalizeSequencer(sequencer: string): string {
  return sequencer.toUpperCase().padEnd(32, '0');
}

type Item = Record<string, unknown>;

/**
 * The single DynamoDB table of a bisearch stack (partition key `pk`, sort key `sk`, strings):
 *
 * | pk | sk | holds |
 * |---|---|---|
 * | `DOC#<docId>` | `STATUS` | {@link DocumentStatus} |
 * | `DOC#<docId>` | `PENDING` | time of the last change requested through the API |
 * | `DOC#<docId>` | `CHUNK#<writeId>#<ordinal>` | a chunk with its float32 vector (binary) |
 * | `SRC#<key>` | `SOURCE` | document ids and sequencer of one uploaded object |
 * | `LOG` | `SEQ#<sequence>` | {@link ChangeLogEntry} |
 * | `META` | `POINTER` | {@link IndexPointer} |
 * | `META` | `EMBEDDING_SPACE` | the embedding space every stored vector belongs to |
 *
 * Only single-item conditional writes are used (no transactions), so the same code runs on
 * DynamoDB and on the dynalite emulator. Ordering comes from the write order: chunks, then the
 * status (conditional on a newer S3 sequencer), then a change-log entry whose sequence is taken
 * with a conditional put on a key that must not exist yet. An entry with sequence n therefore
 * exists only after every entry below n, and after the status it announces.
 */
export class SearchTable {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    /** Table name (≥ 3 characters). */
    readonly tableName: string,
  ) {}

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

  /** Note that a change was requested through the API and has not been processed yet. */
  async markPending(docId: string): Promise<void> {
    await this.client.send(
      new PutCommand({
        TableName: this.tableName,
        Item: { pk: `DOC#${docId}`, sk: 'PENDING', at: new Date().toISOString() },
      }),
    );
  }

  /** When a change was last requested through the API, if ever. */
  async pendingSince(docId: string): Promise<string | undefined> {
    const item = await this.get(`DOC#${docId}`, 'PENDING');
    return item ? String(item.at) : undefined;
  }

  /** A fresh id under which a new version's chunk items are written. */
  newWriteId(): string {
    return randomUUID();
  }

  /** Write chunk items (with vectors) of one document version, 25 per batch, retrying unprocessed items. */
  async writeChunks(docId: string, writeId: string, chunks: readonly EmbeddedChunk[]): Promise<void> {
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
    }));
    await this.batchWrite(items.map((Item) => ({ PutRequest: { Item } })));
  }

  /** The chunks (with vectors) of the version a status points to, in ordinal order. */
  async chunksOf(status: Pick<DocumentStatus, 'docId' | 'writeId'>): Promise<EmbeddedChunk[]> {
    if (!status.writeId) return [];
    const items = await this.queryAll(`DOC#${status.docId}`, `CHUNK#${status.writeId}#`);
    return items.map(toEmbeddedChunk);
  }

  /** Delete every chunk item of a document except those of `keepWriteId` (old versions, aborted writes). */
  async deleteChunksExcept(docId: string, keepWriteId: string | undefined): Promise<void> {
    const items = await this.queryAll(`DOC#${docId}`, 'CHUNK#', ['pk', 'sk']);
    const stale = items.filter(
      (item) => !keepWriteId || !String(item.sk).startsWith(`CHUNK#${keepWriteId}#`),
    );
    await this.batchWrite(stale.map((item) => ({ DeleteRequest: { Key: { pk: item.pk, sk: item.sk } } })));
  }

  /**
   * Store a document's new state if its S3 sequencer is newer than the stored one. Returns false
   * (and writes nothing) for a stale or replayed event.
   */
  putStatusIfNewer(status: DocumentStatus): Promise<boolean> {
    return this.writeIfConditionHolds(
      new PutCommand({
        TableName: this.tableName,
        Item: { pk: `DOC#${status.docId}`, sk: 'STATUS', ...status },
        ConditionExpression: 'attribute_not_exists(sourceSequencer) OR sourceSequencer < :sequencer',
        ExpressionAttributeValues: { ':sequencer': status.sourceSequencer },
      }),
    );
  }

  /**
   * Announce a document change: append a change-log entry with the next sequence and record it on
   * the status. Retries when another writer took the same sequence first.
   */
  async announce(docId: string, sourceSequencer: string): Promise<number> {
    for (let attempt = 0; ; attempt += 1) {
      const sequence = (await this.latestSequence()) + 1;
      const at = new Date();
      try {
        await this.client.send(
          new PutCommand({
            TableName: this.tableName,
            Item: {
              pk: 'LOG',
              sk: `SEQ#${padSequence(sequence)}`,
              sequence,
              docId,
              at: at.toISOString(),
              expiresAt: Math.floor(at.getTime() / 1000) + CHANGE_LOG_RETENTION_SECONDS,
            },
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        );
      } catch (error) {
        if (isConditionFailure(error) && attempt < 50) continue;
        throw error;
      }
      // Only the writer of this exact version marks it announced.
      await this.writeIfConditionHolds(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: `DOC#${docId}`, sk: 'STATUS' },
          UpdateExpression: 'SET announcedSequence = :sequence',
          ConditionExpression: 'sourceSequencer = :sequencer',
          ExpressionAttributeValues: { ':sequence': sequence, ':sequencer': sourceSequencer },
        }),
      );
      return sequence;
    }
  }

  /** Every document status (paginated scan), for exports and status reports. */
  async *statuses(): AsyncGenerator<DocumentStatus> {
    for await (const item of this.scanSortKey('STATUS')) yield toStatus(item);
  }

  // --- sources (uploaded objects) -----------------------------------------------------------

  async sourceDocuments(sourceKey: string): Promise<SourceRecord | undefined> {
    const item = await this.get(`SRC#${sourceKey}`, 'SOURCE');
    return item ? toSource(item) : undefined;
  }

  /** Every source record (paginated scan): which objects were processed, at which ETag. */
  async *sources(): AsyncGenerator<SourceRecord> {
    for await (const item of this.scanSortKey('SOURCE')) yield toSource(item);
  }

  /**
   * Record which documents an object holds (and the ETag processed; empty after a removal),
   * unless a newer event for the object was recorded.
   */
  async putSourceDocuments(
    sourceKey: string,
    docIds: readonly string[],
    sequencer: string,
    etag = '',
  ): Promise<void> {
    await this.writeIfConditionHolds(
      new PutCommand({
        TableName: this.tableName,
        Item: { pk: `SRC#${sourceKey}`, sk: 'SOURCE', sourceKey, docIds: [...docIds], sequencer, etag },
        ConditionExpression: 'attribute_not_exists(sequencer) OR sequencer <= :sequencer',
        ExpressionAttributeValues: { ':sequencer': sequencer },
      }),
    );
  }

  // --- change log ---------------------------------------------------------------------------

  /** Highest announced sequence (0 when nothing was ever written). Strongly consistent. */
  async latestSequence(): Promise<number> {
    const page = await this.client.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: 'pk = :log',
        ExpressionAttributeValues: { ':log': 'LOG' },
        ScanIndexForward: false,
        Limit: 1,
        ConsistentRead: true,
      }),
    );
    return Number(page.Items?.[0]?.sequence ?? 0);
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
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
          ExpressionAttributeValues: { ':pk': pk, ':prefix': skPrefix },
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

/** What the table knows of one uploaded object. */
export interface SourceRecord {
  readonly sourceKey: string;
  readonly docIds: string[];
  readonly sequencer: string;
  /** ETag of the object version processed; empty once removed. */
  readonly etag: string;
}

function toSource(item: Item): SourceRecord {
  return {
    sourceKey: String(item.sourceKey ?? String(item.pk).slice('SRC#'.length)),
    docIds: (item.docIds as string[]) ?? [],
    sequencer: String(item.sequencer),
    etag: String(item.etag ?? ''),
  };
}

/** DynamoDB's answer to a write whose condition did not hold. */
function isConditionFailure(error: unknown): boolean {
  return (error as Error | undefined)?.name === 'ConditionalCheckFailedException';
}

function toStatus(item: Item): DocumentStatus {
  const { pk: _pk, sk: _sk, ...status } = item;
  return status as unknown as DocumentStatus;
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
