import { readFileSync } from 'node:fs';
import { Tokenizer } from '@huggingface/tokenizers';
import { describe, expect, it } from 'vitest';
import { describeModelDirectory } from '../../functions/adapters/model/model-directory.js';
import { ModelTokenizer } from '../../functions/adapters/model/model-tokenizer.js';
import {
  SCIFACT_DIR,
  TINY_BERT_BIENCODER_DIR,
  TINY_BERT_CROSS_ENCODER_DIR,
  USE_LITE_DIR,
} from '../support/shared-fixtures.js';

/** 1,000 SciFact abstracts (title and text), plus texts with unknown characters, accents, CJK, emoji. */
const texts = [
  ...readFileSync(`${SCIFACT_DIR}/corpus.jsonl`, 'utf8')
    .split('\n')
    .filter(Boolean)
    .slice(0, 1_000)
    .map((line) => {
      const document = JSON.parse(line) as { title: string; text: string };
      return `${document.title}. ${document.text}`;
    }),
  'Café naïve façade — déjà vu; 東京 の 研究 🧬🧪 ℃ ∑ ﬁ x² … “quoted”',
  '   leading and trailing spaces   ',
  'a\u0000b\u200bc\tnew\nline',
  'the role of the gene in the role of the cell',
  '',
];

/** Content ids straight from the library, with nothing remembered between texts. */
function libraryIds(tokenizerJson: Record<string, unknown>, tokenizerConfig: Record<string, unknown>) {
  const tokenizer = new Tokenizer(tokenizerJson as never, tokenizerConfig as never);
  return (text: string) => tokenizer.encode(text, { add_special_tokens: false }).ids;
}

describe('ModelTokenizer remembers the pieces of words it has split, without changing any output', () => {
  it.each([
    ['use-lite (Unigram, no pre-tokenizer: texts cut before each ▁)', USE_LITE_DIR],
    ['tiny-bert bi-encoder (WordPiece)', TINY_BERT_BIENCODER_DIR],
    ['tiny-bert cross-encoder (WordPiece)', TINY_BERT_CROSS_ENCODER_DIR],
  ])('%s: the same ids as the library, on first sight and when remembered', (_name, directory) => {
    const description = describeModelDirectory(directory);
    const expected = libraryIds(description.tokenizerJson, description.tokenizerConfig);
    const tokenizer = new ModelTokenizer(
      description.tokenizerJson,
      description.tokenizerConfig,
      description.maxTokens,
    );
    for (const pass of ['first', 'remembered'])
      for (const text of texts)
        expect(tokenizer.contentIds(text), `${pass}: ${text.slice(0, 40)}`).toEqual(expected(text));
  });

  it('does not cut Unigram texts at ▁ when a vocabulary piece spans a word boundary', () => {
    const description = describeModelDirectory(USE_LITE_DIR);
    const json = structuredClone(description.tokenizerJson) as {
      model: { vocab: [string, number][] };
    };
    // A piece across two words, scored to win: cutting before each ▁ could never produce it.
    json.model.vocab.push(['▁of▁the', 0]);
    const crossingId = json.model.vocab.length - 1;
    const expected = libraryIds(json, description.tokenizerConfig);
    const tokenizer = new ModelTokenizer(json, description.tokenizerConfig, description.maxTokens);
    const text = 'the role of the gene in the role of the cell';
    expect(expected(text)).toContain(crossingId);
    for (let pass = 0; pass < 2; pass += 1) expect(tokenizer.contentIds(text)).toEqual(expected(text));
  });
});
