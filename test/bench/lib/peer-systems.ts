/**
 * The systems of the peers benchmark behind one small interface, so the section (in process) and
 * the cold-open probe (a new process) run exactly the same calls: bisearch's real query path
 * (FileSnapshot + SearchEngine), LanceDB (`@lancedb/lancedb`, Rust core, IVF_PQ + FTS + bitmap
 * indexes on disk) and Orama (`@orama/orama`, pure TypeScript, in memory).
 *
 * Every system gets the same rows: a chunk id, the text bisearch's BM25 indexes (title + text, one
 * field), the same vectors, and four boolean filter columns whose selectivities are 0.1%, 1%, 10%
 * and 50%. Queries carry their text and their precomputed vector, so no system pays for embedding.
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { deserialize, serialize } from 'node:v8';
import type { Connection, Table } from '@lancedb/lancedb';
import type { AnyOrama } from '@orama/orama';
import { FileSnapshot } from '../../../functions/adapters/index/snapshot-files.js';
import { embeddingInput } from '../../../functions/core/chunking.js';
import type { EmbeddedChunk } from '../../../functions/core/delta.js';
import type { EmbeddingSpace, TextEmbedder } from '../../../functions/core/embedding-space.js';
import { SearchEngine, type SearchMode } from '../../../functions/core/search-engine.js';

// LanceDB logs a deprecation warning per query whose selected columns leave out a score column
// (hybrid answers carry none). Its native module (0.31) reads LANCEDB_LOG, not RUST_LOG, when it
// loads: with RUST_LOG alone every such query wrote two lines to stderr inside the timed call.
process.env.RUST_LOG ??= 'error';
process.env.LANCEDB_LOG ??= 'error';
// Lance sizes its compute pool at the core count minus LANCE_IO_CORE_RESERVATION (2), and at one
// thread when that leaves none: on this 2-core machine, one thread. Its FTS index build then
// deadlocks once the posting lists fill more than one batch (100k chunks here, not 10k or 30k): the
// producer parks in a blocking channel send on the pool's only thread while the writer waits for
// that pool to encode pages (lancedb/lancedb#3568, lance-format/lance#7350; a gdb backtrace here
// showed the one `lance-cpu` thread parked in EventListenerFuture::wait, every thread idle). The
// workaround those threads give, and what a user on a small host would set: one compute thread per
// core. Set before the native module loads (here, and inherited by the child processes).
process.env.LANCE_CPU_THREADS ??= String(availableParallelism());

/** Filter columns and the share of rows each selects. */
export const FILTER_FIELDS = [
  { field: 'f0_1', selectivity: 0.001 },
  { field: 'f1', selectivity: 0.01 },
  { field: 'f10', selectivity: 0.1 },
  { field: 'f50', selectivity: 0.5 },
] as const;
export type FilterField = (typeof FILTER_FIELDS)[number]['field'];

/** A query as every system receives it: its text and its vector (embedded once, beforehand). */
export interface PeerQuery {
  readonly text: string;
  readonly vector: Float32Array;
}

/** What the benchmark asks of a system; every call answers chunk ids, best first. */
export interface PeerSearcher {
  dense(query: PeerQuery, k: number): Promise<string[]>;
  text(query: PeerQuery, k: number): Promise<string[]>;
  hybrid(query: PeerQuery, k: number): Promise<string[]>;
  /** Dense search among rows whose `field` is true. */
  filtered(query: PeerQuery, k: number, field: FilterField): Promise<string[]>;
  close(): Promise<void>;
}

/** Bytes of every file under `path` (a snapshot or a LanceDB table is a directory tree). */
export function directoryBytes(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.size;
  return readdirSync(path).reduce((sum, name) => sum + directoryBytes(join(path, name)), 0);
}

/** Text indexed for full-text search: what bisearch's BM25 indexes (title and text as one field). */
export function indexedText(chunk: EmbeddedChunk): string {
  return embeddingInput(chunk);
}

/**
 * A {@link TextEmbedder} that answers the vectors computed beforehand, so bisearch's engine, like
 * the peers, is measured without query embedding (`npm run bench -- --only embedding` measures that).
 */
export class PrecomputedEmbedder implements TextEmbedder {
  readonly maxContentTokens = 512;
  private readonly vectors: Map<string, Float32Array>;

  constructor(
    readonly space: EmbeddingSpace,
    queries: readonly PeerQuery[],
  ) {
    this.vectors = new Map(queries.map((query) => [query.text.trim(), query.vector]));
  }

  countTokens(text: string): number {
    return text.split(/\s+/).length;
  }

  async embedQuery(text: string): Promise<Float32Array> {
    const vector = this.vectors.get(text.trim());
    if (!vector) throw new Error(`no precomputed vector for query "${text.slice(0, 40)}"`);
    return vector;
  }

  async embedDocuments(): Promise<Float32Array[]> {
    throw new Error('the peers benchmark embeds documents beforehand');
  }
}

/** bisearch: the real query path over a snapshot on disk (usearch `view()`), HNSW ef `expansionSearch`. */
export async function openOurs(
  snapshotDirectory: string,
  queries: readonly PeerQuery[],
  expansionSearch?: number,
): Promise<PeerSearcher & { engine: SearchEngine }> {
  const snapshot = await FileSnapshot.open(snapshotDirectory, {
    verifyChecksums: false,
    ...(expansionSearch ? { expansionSearch } : {}),
  });
  const engine = new SearchEngine(snapshot, new PrecomputedEmbedder(snapshot.manifest.embedding, queries));
  const ask = async (query: PeerQuery, k: number, mode: SearchMode, field?: FilterField) =>
    (
      await engine.search({ query: query.text, k, mode, ...(field ? { filter: { [field]: true } } : {}) })
    ).results.map((result) => result.chunkId);
  return {
    engine,
    dense: (query, k) => ask(query, k, 'dense'),
    text: (query, k) => ask(query, k, 'lexical'),
    hybrid: (query, k) => ask(query, k, 'hybrid'),
    filtered: (query, k, field) => ask(query, k, 'dense', field),
    close: async () => {},
  };
}

/**
 * LanceDB's IVF_PQ re-ranking: the top k × refine factor PQ candidates are re-scored with the full
 * vectors. 10 by default here; the dense curve also tries larger factors, because at 100k chunks
 * refine 10 stops at recall@10 0.926 however many partitions are probed (the PQ codes' limit).
 */
export const LANCE_REFINE_FACTOR = 10;

/** Build a LanceDB table `chunks` in `directory`: rows, then IVF_PQ, FTS and bitmap indexes. */
export async function buildLance(
  directory: string,
  chunks: readonly EmbeddedChunk[],
  flags: (row: number) => Record<FilterField, boolean>,
  onStep?: (step: string, ms: number) => void,
): Promise<void> {
  const lancedb = await import('@lancedb/lancedb');
  // LanceDB is CommonJS and recognises Arrow tables by class: the table must come from the same
  // (CommonJS) copy of apache-arrow, or it is read as an empty list of rows.
  const arrow = createRequire(import.meta.url)('apache-arrow') as typeof import('apache-arrow');
  const dimensions = chunks[0]?.vector.length ?? 0;
  const matrix = new Float32Array(chunks.length * dimensions);
  chunks.forEach((chunk, row) => {
    matrix.set(chunk.vector, row * dimensions);
  });
  const vectorType = new arrow.FixedSizeList(dimensions, new arrow.Field('item', new arrow.Float32(), true));
  const vectors = arrow.makeVector(
    arrow.makeData({
      type: vectorType,
      length: chunks.length,
      nullCount: 0,
      child: arrow.makeData({ type: new arrow.Float32(), length: matrix.length, data: matrix }),
    }),
  );
  const flagRows = chunks.map((_, row) => flags(row));
  const columns: Record<string, import('apache-arrow').Vector> = {
    id: arrow.vectorFromArray(
      chunks.map((chunk) => chunk.chunkId),
      new arrow.Utf8(),
    ),
    text: arrow.vectorFromArray(chunks.map(indexedText), new arrow.Utf8()),
    vector: vectors,
  };
  for (const { field } of FILTER_FIELDS)
    columns[field] = arrow.vectorFromArray(
      flagRows.map((row) => row[field]),
      new arrow.Bool(),
    );
  const db = await lancedb.connect(directory);
  // Written in batches of 10,000 rows, as an ingest would append them (ten fragments at 100k).
  const batch = 10_000;
  const slice = (start: number) =>
    new arrow.Table(
      Object.fromEntries(
        Object.entries(columns).map(([name, column]) => [name, column.slice(start, start + batch)]),
      ),
    );
  let stepStarted = performance.now();
  const step = (name: string) => {
    const now = performance.now();
    onStep?.(name, now - stepStarted);
    stepStarted = now;
  };
  const table = await db.createTable('chunks', slice(0), { mode: 'overwrite' });
  for (let start = batch; start < chunks.length; start += batch) await table.add(slice(start));
  step('rows');
  await table.createIndex('vector', {
    config: lancedb.Index.ivfPq({ distanceType: 'cosine' }),
  });
  step('IVF_PQ');
  await table.createIndex('text', { config: lancedb.Index.fts() });
  step('FTS');
  for (const { field } of FILTER_FIELDS) await table.createIndex(field, { config: lancedb.Index.bitmap() });
  step('bitmaps');
  table.close();
  db.close();
}

/**
 * LanceDB opened from `uri` (a local directory or `s3://…` with `storageOptions`). Dense search
 * probes `nprobes` IVF partitions and re-ranks `k × refineFactor` (default 10) PQ candidates with the full
 * vectors; `nprobes: 'flat'` scans every vector (exact).
 */
export async function openLance(
  uri: string,
  settings: { nprobes: number | 'flat'; refineFactor?: number; storageOptions?: Record<string, string> },
): Promise<PeerSearcher & { table: Table; setNprobes(nprobes: number | 'flat'): void }> {
  const lancedb = await import('@lancedb/lancedb');
  const db: Connection = await lancedb.connect(
    uri,
    settings.storageOptions ? { storageOptions: settings.storageOptions } : {},
  );
  const table = await db.openTable('chunks');
  let nprobes = settings.nprobes;
  const vectorQuery = (query: PeerQuery, k: number) => {
    const search = table.query().nearestTo(query.vector).distanceType('cosine').limit(k);
    return nprobes === 'flat'
      ? search.bypassVectorIndex()
      : search.nprobes(nprobes).refineFactor(settings.refineFactor ?? LANCE_REFINE_FACTOR);
  };
  const ids = (rows: { id: string }[]) => rows.map((row) => row.id);
  return {
    table,
    setNprobes: (value) => {
      nprobes = value;
    },
    // The score columns are selected too: LanceDB warns (per query) when they are left out.
    dense: async (query, k) => ids(await vectorQuery(query, k).select(['id', '_distance']).toArray()),
    text: async (query, k) =>
      ids(await table.query().fullTextSearch(query.text).limit(k).select(['id', '_score']).toArray()),
    // Full-text + vector in one query is LanceDB's hybrid search (RRF reranker by default).
    hybrid: async (query, k) =>
      ids(await vectorQuery(query, k).fullTextSearch(query.text).select(['id']).toArray()),
    filtered: async (query, k, field) =>
      ids(await vectorQuery(query, k).where(`${field} = true`).select(['id', '_distance']).toArray()),
    close: async () => {
      table.close();
      db.close();
    },
  };
}

/** Orama's schema for these rows (`dimensions`-d vectors). */
function oramaSchema(dimensions: number) {
  return {
    id: 'string',
    text: 'string',
    f0_1: 'boolean',
    f1: 'boolean',
    f10: 'boolean',
    f50: 'boolean',
    embedding: `vector[${dimensions}]`,
  } as const;
}

/** An Orama database of the rows (insertMultiple, its batch insert). */
export async function buildOrama(
  chunks: readonly EmbeddedChunk[],
  flags: (row: number) => Record<FilterField, boolean>,
): Promise<AnyOrama> {
  const orama = await import('@orama/orama');
  const dimensions = chunks[0]?.vector.length ?? 0;
  // `id` is searchable text too in Orama's schema; it is never searched (properties: ['text']).
  const db = orama.create({ schema: oramaSchema(dimensions) }) as AnyOrama;
  const batch = 1_000;
  for (let start = 0; start < chunks.length; start += batch) {
    const documents = chunks.slice(start, start + batch).map((chunk, offset) => ({
      id: chunk.chunkId,
      text: indexedText(chunk),
      ...flags(start + offset),
      // Orama's schema check accepts plain arrays only (it stores a Float32Array copy).
      embedding: Array.from(chunk.vector),
    }));
    await orama.insertMultiple(db, documents as never, batch);
  }
  return db;
}

/**
 * Write an Orama database to `file`. Orama has no on-disk format of its own: `save()` returns plain
 * objects, and its JSON (what the docs show) exceeds V8's maximum string length at 100k 512-d
 * vectors (about 2.3 GB), so it cannot be written or parsed as one string. The file is the `save()`
 * object in V8's structured-clone format (`v8.serialize`), which has no string limit and is what a
 * Node user can reach for without a dependency. Returns the bytes written.
 */
export async function saveOrama(db: AnyOrama, file: string): Promise<number> {
  const orama = await import('@orama/orama');
  const bytes = serialize(orama.save(db));
  writeFileSync(file, bytes);
  return bytes.byteLength;
}

/** An Orama database restored from a file written by {@link saveOrama}. */
export async function loadOrama(file: string, dimensions: number): Promise<AnyOrama> {
  const orama = await import('@orama/orama');
  const db = orama.create({ schema: oramaSchema(dimensions) }) as AnyOrama;
  orama.load(db, deserialize(readFileSync(file)));
  return db;
}

/**
 * Searches an Orama database. Its vector search is brute force (every vector is scored, those at
 * or above `similarity` are sorted): exact whenever the threshold keeps at least k rows, so the
 * threshold is its only speed knob. Full-text search uses `threshold: 1` (any query term may
 * match, as BM25 ranks), Orama's default in hybrid mode.
 */
export async function oramaSearcher(
  db: AnyOrama,
  settings: { similarity: number },
): Promise<PeerSearcher & { setSimilarity(similarity: number): void }> {
  const orama = await import('@orama/orama');
  let similarity = settings.similarity;
  const ids = (result: { hits: { document: { id: string } }[] }) => result.hits.map((hit) => hit.document.id);
  const vector = (query: PeerQuery) => ({ value: query.vector, property: 'embedding' });
  return {
    setSimilarity: (value) => {
      similarity = value;
    },
    dense: async (query, k) =>
      ids((await orama.search(db, { mode: 'vector', vector: vector(query), similarity, limit: k })) as never),
    text: async (query, k) =>
      ids(
        (await orama.search(db, { term: query.text, properties: ['text'], threshold: 1, limit: k })) as never,
      ),
    hybrid: async (query, k) =>
      ids(
        (await orama.search(db, {
          mode: 'hybrid',
          term: query.text,
          properties: ['text'],
          vector: vector(query),
          similarity,
          limit: k,
        })) as never,
      ),
    filtered: async (query, k, field) =>
      ids(
        (await orama.search(db, {
          mode: 'vector',
          vector: vector(query),
          similarity,
          where: { [field]: true },
          limit: k,
        })) as never,
      ),
    close: async () => {},
  };
}

/**
 * Bytes of `JSON.stringify(value)`, counted part by part where the whole string would exceed V8's
 * maximum string length (an Orama `save()` of 100k 512-d vectors is about a gigabyte of JSON).
 */
export function jsonBytes(value: unknown): number {
  let plain = value;
  if (plain && typeof (plain as { toJSON?: unknown }).toJSON === 'function')
    plain = (plain as { toJSON: () => unknown }).toJSON();
  try {
    return Buffer.byteLength(JSON.stringify(plain) ?? '');
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
  }
  if (Array.isArray(plain))
    return 2 + Math.max(0, plain.length - 1) + plain.reduce((sum: number, item) => sum + jsonBytes(item), 0);
  const entries = Object.entries(plain as Record<string, unknown>).filter(([, item]) => item !== undefined);
  return (
    2 +
    Math.max(0, entries.length - 1) +
    entries.reduce(
      (sum, [key, item]) => sum + Buffer.byteLength(JSON.stringify(key)) + 1 + jsonBytes(item),
      0,
    )
  );
}
