import { appendFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileVectorCache } from '../../functions/adapters/index/file-vector-cache.js';
import { OnnxEmbedder } from '../../functions/adapters/model/onnx-embedder.js';
import type { TextEmbedder } from '../../functions/core/embedding-space.js';
import { chunkDocuments, embedChunks } from '../../functions/core/indexing.js';
import { HELP_CENTRE } from '../support/help-centre.js';
import { maxAbsDiff, USE_LITE_DIR } from '../support/shared-fixtures.js';

/** The real embedder, counting the passages it is asked to embed. */
function counting(embedder: OnnxEmbedder): TextEmbedder & { embedded: number } {
  const wrapper = {
    embedded: 0,
    space: embedder.space,
    maxContentTokens: embedder.maxContentTokens,
    countTokens: (text: string) => embedder.countTokens(text),
    embedQuery: (text: string) => embedder.embedQuery(text),
    embedDocuments: (texts: readonly string[]) => {
      wrapper.embedded += texts.length;
      return embedder.embedDocuments(texts);
    },
  };
  return wrapper;
}

describe('embedChunks with a vector cache', () => {
  let embedder: OnnxEmbedder;
  let work: string;
  beforeAll(async () => {
    embedder = await OnnxEmbedder.load(USE_LITE_DIR);
    work = mkdtempSync(join(tmpdir(), 'bisearch-cache-'));
  });
  afterAll(async () => {
    await embedder.dispose();
    rmSync(work, { recursive: true, force: true });
  });

  it('embeds each distinct content once, reuses cached vectors across runs and processes, and reports progress', async () => {
    const chunks = chunkDocuments(HELP_CENTRE, embedder);
    const duplicate = { ...chunks[0], chunkId: 'copy#0', docId: 'copy' } as (typeof chunks)[0];
    const cache = FileVectorCache.open(work, embedder.space);
    const first = counting(embedder);
    const progress: Array<[number, number]> = [];
    const embedded = await embedChunks([...chunks, duplicate], first, {
      cache,
      onProgress: (done, total) => progress.push([done, total]),
    });
    expect(first.embedded).toBe(chunks.length);
    expect(embedded.at(-1)?.vector).toBe(embedded[0]?.vector);
    expect(progress.at(-1)).toEqual([chunks.length + 1, chunks.length + 1]);

    const reopened = FileVectorCache.open(work, embedder.space);
    expect(reopened.size).toBe(chunks.length);
    const second = counting(embedder);
    const again = await embedChunks(chunks, second, { cache: reopened });
    expect(second.embedded).toBe(0);
    again.forEach((chunk, index) => {
      expect(maxAbsDiff(chunk.vector, embedded[index]?.vector ?? new Float32Array())).toBe(0);
    });

    const edited = chunkDocuments(
      [{ ...HELP_CENTRE[0], text: 'A completely new body.' } as (typeof HELP_CENTRE)[0]],
      embedder,
    );
    const third = counting(embedder);
    await embedChunks(edited, third, { cache: reopened });
    expect(third.embedded).toBe(1);
  });

  it('cuts a torn last record on open so later appends stay readable', async () => {
    const directory = join(work, 'torn');
    const cache = FileVectorCache.open(directory, embedder.space);
    const [vector] = await embedder.embedDocuments(['hello']);
    cache.set('a'.repeat(64), vector as Float32Array);
    appendFileSync(cache.path, Buffer.alloc(100, 7));
    const recovered = FileVectorCache.open(directory, embedder.space);
    expect(statSync(cache.path).size).toBe(32 + 512 * 4);
    recovered.set('b'.repeat(64), vector as Float32Array);
    const reread = FileVectorCache.open(directory, embedder.space);
    expect(reread.size).toBe(2);
    expect(maxAbsDiff(reread.get('b'.repeat(64)) ?? new Float32Array(), vector as Float32Array)).toBe(0);
  });
});
