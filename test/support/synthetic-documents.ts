/**
 * Documents written straight into the table as the encoder would leave them (chunks, then the
 * status, then a change-log announcement), with synthetic unit vectors: for tests and benchmarks
 * of the change log and catch-up at sizes where embedding every text would dominate.
 */
import type { SearchTable } from '../../functions/adapters/aws/search-table.js';
import type { EmbeddedChunk } from '../../functions/core/delta.js';

/** A deterministic unit vector for document `n` (mulberry32: 32-bit integer arithmetic, no float overflow). */
export function syntheticVector(n: number, dimensions: number): Float32Array {
  const vector = new Float32Array(dimensions);
  let state = (Math.imul(n + 1, 0x9e3779b1) ^ 0x85ebca6b) >>> 0;
  let norm = 0;
  for (let i = 0; i < dimensions; i += 1) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const value = ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296 - 0.5;
    vector[i] = value;
    norm += value * value;
  }
  const scale = 1 / Math.sqrt(norm);
  for (let i = 0; i < dimensions; i += 1) vector[i] = (vector[i] as number) * scale;
  return vector;
}

/** Write document `docId` (one chunk whose text is `text`) without announcing it. */
export async function writeSyntheticDocument(
  table: SearchTable,
  docId: string,
  text: string,
  vector: Float32Array,
): Promise<void> {
  const writeId = table.newWriteId();
  const chunk: EmbeddedChunk = {
    chunkId: `${docId}#0`,
    docId,
    ordinal: 0,
    text,
    metadata: {},
    contentHash: `hash-${docId}-${text.length}`,
    vector,
  };
  await table.writeChunks(docId, writeId, [chunk]);
  const current = await table.documentStatus(docId);
  await table.writeStatus(
    {
      docId,
      status: 'indexed',
      chunks: 1,
      updatedAt: new Date().toISOString(),
      sourceKey: `docs/${docId}.txt`,
      sourceSequencer: '0',
      writeId,
      contentHash: chunk.contentHash,
    },
    current?.revision ?? undefined,
  );
}

/**
 * Write and announce `count` documents `<prefix>-<n>` whose text holds the word `<prefix>word<n>`,
 * `concurrency` at a time. Returns the sequences taken.
 */
export async function seedDocuments(
  table: SearchTable,
  options: { prefix: string; count: number; dimensions: number; concurrency?: number; start?: number },
): Promise<number[]> {
  const sequences: number[] = [];
  let next = options.start ?? 0;
  const end = next + options.count;
  const worker = async () => {
    for (let n = next++; n < end; n = next++) {
      const docId = `${options.prefix}-${n}`;
      await writeSyntheticDocument(
        table,
        docId,
        `Synthetic document ${options.prefix}word${n} for the change-log tests.`,
        syntheticVector(n, options.dimensions),
      );
      sequences.push(await table.announce(docId));
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 8 }, worker));
  return sequences;
}

/**
 * A unit vector near one of `clusters` centres (`normalise(centre + spread · noise)`): structured
 * like real embeddings, where near neighbours are much nearer than the rest. Independent uniform
 * vectors in hundreds of dimensions are all about equally far apart, which no ANN index (and no
 * embedding model) produces.
 */
export function clusteredVector(n: number, dimensions: number, clusters = 1_000, spread = 0.6): Float32Array {
  const centre = syntheticVector(10_000_000 + (n % clusters), dimensions);
  const noise = syntheticVector(n, dimensions);
  const vector = new Float32Array(dimensions);
  let norm = 0;
  for (let i = 0; i < dimensions; i += 1) {
    const value = (centre[i] as number) + spread * (noise[i] as number);
    vector[i] = value;
    norm += value * value;
  }
  const scale = 1 / Math.sqrt(norm);
  for (let i = 0; i < dimensions; i += 1) vector[i] = (vector[i] as number) * scale;
  return vector;
}
