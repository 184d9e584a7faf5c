import type * as ort from 'onnxruntime-node';
import type { PairScorer } from '../../core/embedding-space.js';
import type { ModelOverrides } from './model-directory.js';
import type { ModelTokenizer } from './model-tokenizer.js';
import { floatOutput, loadOnnxModel, type OnnxSessionOptions, runInBatches } from './onnx-session.js';

export interface OnnxCrossEncoderOptions
  extends Pick<ModelOverrides, 'modelId' | 'onnxFile' | 'maxTokens'>,
    OnnxSessionOptions {
  /** Pairs per ONNX call. Default 16. */
  readonly batchSize?: number;
}

/**
 * A cross-encoder reranker (BertForSequenceClassification-style ONNX export with a `logits`
 * output): scores (query, passage) pairs encoded as `[CLS] q [SEP] p [SEP]` with segment ids.
 * The score is the raw logit of the relevance label (column 0 for one label, column 1 for two);
 * apply a sigmoid for (0, 1) if needed, the ranking is the same.
 */
export class OnnxCrossEncoder implements PairScorer {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly tokenizer: ModelTokenizer,
    readonly modelId: string,
    private readonly batchSize: number,
  ) {}

  static async load(directory: string, options: OnnxCrossEncoderOptions = {}): Promise<OnnxCrossEncoder> {
    const { description, tokenizer, session } = await loadOnnxModel(directory, options);
    return new OnnxCrossEncoder(session, tokenizer, description.modelId, options.batchSize ?? 16);
  }

  async score(query: string, passages: readonly string[]): Promise<number[]> {
    if (passages.length === 0) return [];
    const rows = passages.map((passage) => this.tokenizer.encodePair(query, passage));
    return runInBatches(this.session, rows, this.batchSize, ({ outputs, batch }) => {
      const { data, dims } = floatOutput(outputs, 'logits');
      const labels = dims[1] ?? 1;
      const column = labels === 1 ? 0 : 1;
      return Array.from({ length: batch }, (_, row) => data[row * labels + column] as number);
    });
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}
