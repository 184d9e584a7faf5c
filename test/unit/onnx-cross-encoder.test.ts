import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OnnxCrossEncoder } from '../../functions/adapters/model/onnx-cross-encoder.js';
import { readGolden, TINY_BERT_CROSS_ENCODER_DIR } from '../support/shared-fixtures.js';

interface CrossEncoderGolden {
  tolerance: { max_abs_diff_logit: number };
  pairs: Array<{
    id: string;
    query: string;
    passage: string;
    input_ids: number[];
    token_type_ids: number[];
    truncated: boolean;
    logit: number;
  }>;
  batches: Array<{ ids: string[] }>;
}

describe('tiny-bert cross-encoder through OnnxCrossEncoder', () => {
  const golden = readGolden<CrossEncoderGolden>(TINY_BERT_CROSS_ENCODER_DIR);
  const tolerance = golden.tolerance.max_abs_diff_logit;
  let reranker: OnnxCrossEncoder;
  beforeAll(async () => {
    reranker = await OnnxCrossEncoder.load(TINY_BERT_CROSS_ENCODER_DIR, { batchSize: 2 });
  });
  afterAll(() => reranker.dispose());

  it.each(golden.pairs)(
    'encodes pair "$id" as [CLS] q [SEP] p [SEP] with segment ids (empty sides keep their [SEP])',
    (pair) => {
      const encoded = reranker.tokenizer.encodePair(pair.query, pair.passage);
      expect(encoded.ids).toEqual(pair.input_ids);
      expect(encoded.typeIds).toEqual(pair.token_type_ids);
      expect(encoded.truncated).toBe(pair.truncated);
    },
  );

  it.each(golden.pairs)('scores pair "$id" alone with the golden logit', async (pair) => {
    const [score] = await reranker.score(pair.query, [pair.passage]);
    expect(Math.abs((score as number) - pair.logit)).toBeLessThanOrEqual(tolerance);
  });

  it('scores a padded batch of passages for one query in input order', async () => {
    const query = 'how do i reset my password';
    const pairs = golden.pairs.filter((pair) => pair.query === query);
    expect(pairs.length).toBeGreaterThanOrEqual(2);
    const scores = await reranker.score(
      query,
      pairs.map((pair) => pair.passage),
    );
    for (const [index, pair] of pairs.entries()) {
      expect(Math.abs((scores[index] as number) - pair.logit)).toBeLessThanOrEqual(tolerance);
    }
  });

  it('scores mixed-query golden batches row by row as the single pairs', async () => {
    for (const batch of golden.batches) {
      for (const id of batch.ids) {
        const pair = golden.pairs.find((candidate) => candidate.id === id);
        if (!pair) throw new Error(`golden batch names unknown pair ${id}`);
        const [score] = await reranker.score(pair.query, [
          pair.passage,
          'padding partner of a different length',
        ]);
        expect(Math.abs((score as number) - pair.logit)).toBeLessThanOrEqual(tolerance);
      }
    }
  });
});
