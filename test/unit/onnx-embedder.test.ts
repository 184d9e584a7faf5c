import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OnnxEmbedder } from '../../functions/adapters/model/onnx-embedder.js';
import { dot } from '../../functions/core/vectors.js';
import { maxAbsDiff, readGolden, TINY_BERT_BIENCODER_DIR, USE_LITE_DIR } from '../support/shared-fixtures.js';

interface UseLiteGolden {
  tolerance: { max_abs_diff_per_component: number };
  items: Array<{
    id: string;
    text: string;
    input_ids: number[];
    embedding: number[];
    hf_tokenizers_ids_match: boolean;
    hf_tokenizers_ids?: number[];
  }>;
  similarities_tfjs: Record<string, number>;
}

interface BertGolden {
  tolerance: { max_abs_diff_per_component: number };
  texts: Array<{
    id: string;
    text: string;
    input_ids: number[];
    token_type_ids: number[];
    truncated: boolean;
    mean_pooled_normalized: number[];
    cls_pooled_normalized: number[];
  }>;
  batches: Array<{ ids: string[]; input_ids: number[][]; token_type_ids: number[][] }>;
}

describe('USE-lite through OnnxEmbedder (in-graph pooling, no special tokens)', () => {
  const golden = readGolden<UseLiteGolden>(USE_LITE_DIR);
  const tolerance = golden.tolerance.max_abs_diff_per_component;
  let embedder: OnnxEmbedder;
  beforeAll(async () => {
    embedder = await OnnxEmbedder.load(USE_LITE_DIR, { batchSize: 4 });
  });
  afterAll(() => embedder.dispose());

  it('derives the embedding space and limits from the model files', () => {
    expect(embedder.space).toEqual({
      modelId: 'use-lite',
      fingerprint: expect.stringMatching(/^sha256:[0-9a-f]{64}$/),
      dimensions: 512,
      pooling: 'in-graph',
      normalized: true,
    });
    expect(embedder.tokenizer.maxTokens).toBe(128);
    expect(embedder.maxContentTokens).toBe(128);
  });

  it.each(golden.items.filter((item) => item.hf_tokenizers_ids_match))(
    'tokenises and embeds "$id" as golden.json says',
    async (item) => {
      expect(embedder.tokenizer.encode(item.text).ids).toEqual(item.input_ids);
      const [vector] = await embedder.embedDocuments([item.text]);
      expect(maxAbsDiff(vector as Float32Array, item.embedding)).toBeLessThanOrEqual(tolerance);
    },
  );

  it('matches the graph alone for texts where the JS tokenizer legitimately segments differently', async () => {
    const items = golden.items.filter((item) => !item.hf_tokenizers_ids_match);
    expect(items.length).toBeGreaterThan(0);
    for (const item of items)
      expect(embedder.tokenizer.encode(item.text).ids).toEqual(item.hf_tokenizers_ids);
    const vectors = await embedder.embedEncoded(
      items.map((item) => ({ ids: item.input_ids, typeIds: [], truncated: false })),
    );
    for (const [index, item] of items.entries()) {
      expect(maxAbsDiff(vectors[index] as Float32Array, item.embedding)).toBeLessThanOrEqual(tolerance);
    }
  });

  it('returns every text of one padded, length-sorted batch call in input order, equal to single calls', async () => {
    const items = golden.items.filter((item) => item.hf_tokenizers_ids_match);
    const batched = await embedder.embedDocuments(items.map((item) => item.text));
    expect(batched).toHaveLength(items.length);
    for (const [index, item] of items.entries()) {
      expect(maxAbsDiff(batched[index] as Float32Array, item.embedding)).toBeLessThanOrEqual(tolerance);
    }
  });

  it('embeds the empty text as [0] and truncates long texts to their first 128 tokens', async () => {
    expect(embedder.tokenizer.encode('').ids).toEqual([0]);
    const long = golden.items.find((item) => item.id === 'long_truncated');
    expect(long).toBeDefined();
    const encoded = embedder.tokenizer.encode(long?.text ?? '');
    expect(encoded.ids).toHaveLength(128);
    expect(encoded.truncated).toBe(true);
  });

  it('ranks a paraphrase above a related answer above an unrelated sentence', async () => {
    const text = (id: string) => golden.items.find((item) => item.id === id)?.text ?? '';
    const query = await embedder.embedQuery(text('paraphrase_a'));
    const [paraphrase, related, unrelated] = await embedder.embedDocuments([
      text('paraphrase_b'),
      text('related_answer'),
      text('unrelated'),
    ]);
    const scores = [paraphrase, related, unrelated].map((vector) => dot(query, vector as Float32Array));
    expect(scores[0]).toBeCloseTo(golden.similarities_tfjs['paraphrase_a~paraphrase_b'] as number, 4);
    expect(scores[0]).toBeGreaterThan(scores[1] as number);
    expect(scores[1]).toBeGreaterThan(scores[2] as number);
  });
});

describe('tiny-bert bi-encoder through OnnxEmbedder (WordPiece, special tokens, mean/CLS pooling)', () => {
  const golden = readGolden<BertGolden>(TINY_BERT_BIENCODER_DIR);
  const tolerance = golden.tolerance.max_abs_diff_per_component;
  let mean: OnnxEmbedder;
  let cls: OnnxEmbedder;
  beforeAll(async () => {
    mean = await OnnxEmbedder.load(TINY_BERT_BIENCODER_DIR, { batchSize: 3 });
    cls = await OnnxEmbedder.load(TINY_BERT_BIENCODER_DIR, { pooling: 'cls' });
  });
  afterAll(async () => {
    await mean.dispose();
    await cls.dispose();
  });

  it('derives mean pooling from 1_Pooling/config.json and 128 tokens from tokenizer.json', () => {
    expect(mean.space).toMatchObject({ dimensions: 32, pooling: 'mean', normalized: true });
    expect(mean.tokenizer.maxTokens).toBe(128);
    expect(mean.maxContentTokens).toBe(126);
  });

  it.each(golden.texts)('tokenises "$id" with [CLS]/[SEP], truncation that keeps the final [SEP]', (item) => {
    const encoded = mean.tokenizer.encode(item.text);
    expect(encoded.ids).toEqual(item.input_ids);
    expect(encoded.typeIds).toEqual(item.token_type_ids);
    expect(encoded.truncated).toBe(item.truncated);
  });

  it.each(golden.texts)('mean- and CLS-pools "$id" alone as golden.json says', async (item) => {
    const [meanVector] = await mean.embedDocuments([item.text]);
    const [clsVector] = await cls.embedDocuments([item.text]);
    expect(maxAbsDiff(meanVector as Float32Array, item.mean_pooled_normalized)).toBeLessThanOrEqual(
      tolerance,
    );
    expect(maxAbsDiff(clsVector as Float32Array, item.cls_pooled_normalized)).toBeLessThanOrEqual(tolerance);
  });

  it('gives each row of a padded batch the same vector as the text alone', async () => {
    for (const batch of golden.batches) {
      const texts = batch.ids.map((id) => golden.texts.find((text) => text.id === id)?.text ?? '');
      const vectors = await mean.embedDocuments(texts);
      batch.ids.forEach((id, row) => {
        const expected = golden.texts.find((text) => text.id === id)?.mean_pooled_normalized ?? [];
        expect(maxAbsDiff(vectors[row] as Float32Array, expected)).toBeLessThanOrEqual(tolerance);
      });
    }
  });
});
