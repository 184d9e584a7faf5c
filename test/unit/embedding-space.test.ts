import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { modelFingerprint } from '../../functions/adapters/model/model-fingerprint.js';
import { OnnxEmbedder } from '../../functions/adapters/model/onnx-embedder.js';
import { assertSameEmbeddingSpace, type EmbeddingSpace } from '../../functions/core/embedding-space.js';
import { EmbeddingSpaceMismatchError } from '../../functions/core/errors.js';
import { snapshotManifestSchema } from '../../functions/core/snapshot-manifest.js';
import { TINY_BERT_BIENCODER_DIR, TINY_BERT_CROSS_ENCODER_DIR } from '../support/shared-fixtures.js';

const work = mkdtempSync(join(tmpdir(), 'bisearch-space-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A model directory called `model` (as in a Lambda layer), with no `_name_or_path`. */
function asLayerFolder(source: string, parent: string): string {
  const target = join(work, parent, 'model');
  mkdirSync(target, { recursive: true });
  for (const file of ['model.onnx', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'])
    cpSync(join(source, file), join(target, file));
  writeFileSync(join(target, 'config.json'), '{}');
  return target;
}

const space = (overrides: Partial<EmbeddingSpace>): EmbeddingSpace => ({
  modelId: 'model',
  dimensions: 32,
  pooling: 'mean',
  normalized: true,
  ...overrides,
});

describe('embedding space identity', () => {
  it('two models in folders of the same name and dimension differ by fingerprint', async () => {
    // The cross-encoder's graph stands in for "another model of the same size": only its files differ.
    const a = asLayerFolder(TINY_BERT_BIENCODER_DIR, 'a');
    const b = asLayerFolder(TINY_BERT_CROSS_ENCODER_DIR, 'b');
    const first = await modelFingerprint(join(a, 'model.onnx'), join(a, 'tokenizer.json'));
    const second = await modelFingerprint(join(b, 'model.onnx'), join(b, 'tokenizer.json'));
    expect(first).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(second).not.toBe(first);
    // Same files elsewhere: same fingerprint (it is about content, not place).
    const copy = asLayerFolder(TINY_BERT_BIENCODER_DIR, 'c');
    expect(await modelFingerprint(join(copy, 'model.onnx'), join(copy, 'tokenizer.json'))).toBe(first);
    expect(() =>
      assertSameEmbeddingSpace(space({ fingerprint: first }), space({ fingerprint: second }), 'index'),
    ).toThrow(EmbeddingSpaceMismatchError);
    expect(() =>
      assertSameEmbeddingSpace(space({ fingerprint: first }), space({ fingerprint: second }), 'index'),
    ).toThrow(/fingerprint: expected sha256:/);
  });

  it('the embedder records its fingerprint and a readable name', async () => {
    const embedder = await OnnxEmbedder.load(TINY_BERT_BIENCODER_DIR, { intraOpThreads: 1 });
    expect(embedder.space.fingerprint).toBe(
      await modelFingerprint(
        join(TINY_BERT_BIENCODER_DIR, 'model.onnx'),
        join(TINY_BERT_BIENCODER_DIR, 'tokenizer.json'),
      ),
    );
    expect(embedder.space.modelId).not.toBe('model');
  });

  it('the fingerprint decides when both sides have one; spaces without one compare by model id', () => {
    const fingerprint = `sha256:${'a'.repeat(64)}`;
    // One model under two names (renamed folder, recorded name changed): the same space.
    expect(() =>
      assertSameEmbeddingSpace(
        space({ modelId: 'use-lite', fingerprint }),
        space({ modelId: 'model', fingerprint }),
        'index',
      ),
    ).not.toThrow();
    // A table or manifest recorded before fingerprints: the name still protects it.
    expect(() =>
      assertSameEmbeddingSpace(
        space({ modelId: 'use-lite' }),
        space({ modelId: 'use-lite', fingerprint }),
        'table',
      ),
    ).not.toThrow();
    expect(() =>
      assertSameEmbeddingSpace(
        space({ modelId: 'use-lite' }),
        space({ modelId: 'other', fingerprint }),
        'table',
      ),
    ).toThrow(/modelId: expected use-lite, found other/);
    // Dimensions are always compared.
    expect(() =>
      assertSameEmbeddingSpace(space({ fingerprint }), space({ fingerprint, dimensions: 64 }), 'index'),
    ).toThrow(/dimensions/);
  });

  it('manifests keep the fingerprint, and manifests without one still parse', () => {
    const embedding = { modelId: 'use-lite', dimensions: 512, pooling: 'in-graph', normalized: true };
    const manifest = {
      formatVersion: 3,
      version: 'v1',
      builtAt: new Date(0).toISOString(),
      watermark: 0,
      index: { metric: 'ip', dtype: 'f16', connectivity: 16, expansionAdd: 128, expansionSearch: 128 },
      counts: { chunks: 0, documents: 0 },
      files: {},
    };
    const fingerprint = `sha256:${'b'.repeat(64)}`;
    expect(
      snapshotManifestSchema.parse({ ...manifest, embedding: { ...embedding, fingerprint } }).embedding
        .fingerprint,
    ).toBe(fingerprint);
    expect(snapshotManifestSchema.parse({ ...manifest, embedding }).embedding.fingerprint).toBeUndefined();
  });
});
