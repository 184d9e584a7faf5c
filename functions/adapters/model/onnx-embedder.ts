import { join } from 'node:path';
import type * as ort from 'onnxruntime-node';
import type { EmbeddingSpace, TextEmbedder } from '../../core/embedding-space.js';
import { ModelConfigurationError } from '../../core/errors.js';
import { type PoolingStrategy, poolTokenStates, splitRows } from '../../core/pooling.js';
import type { ModelDescription, ModelOverrides } from './model-directory.js';
import { modelFingerprint } from './model-fingerprint.js';
import type { EncodedSequence, ModelTokenizer } from './model-tokenizer.js';
import { floatOutput, loadOnnxModel, type OnnxSessionOptions, runInBatches } from './onnx-session.js';

export interface OnnxEmbedderOptions extends ModelOverrides, OnnxSessionOptions {
  /** Texts per ONNX call. Default 32. */
  readonly batchSize?: number;
}

/** Names under which exporters publish per-token states. */
const TOKEN_STATE_OUTPUTS = ['last_hidden_state', 'token_embeddings'];

/**
 * A bi-encoder on onnxruntime-node: tokenises with the model's tokenizer.json, runs the ONNX graph
 * in length-sorted, dynamically padded batches, pools (mean / CLS / in-graph) and L2-normalises.
 * Output vectors are Float32Array of `space.dimensions`, in input order.
 */
export class OnnxEmbedder implements TextEmbedder {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly tokenizer: ModelTokenizer,
    readonly description: ModelDescription,
    readonly space: EmbeddingSpace,
    private readonly outputName: string,
    private readonly batchSize: number,
  ) {}

  /** Load a model directory (see `describeModelDirectory`) and check it produces vectors. */
  static async load(directory: string, options: OnnxEmbedderOptions = {}): Promise<OnnxEmbedder> {
    const { description, tokenizer, session } = await loadOnnxModel(directory, options);
    // Hashed (asynchronous, streamed reads) while the probe below runs.
    const fingerprinting = modelFingerprint(description.onnxPath, join(directory, 'tokenizer.json'));
    let pooling: PoolingStrategy;
    let outputName: string;
    if (
      description.pooling === 'in-graph' ||
      (!description.pooling && session.outputNames.includes('sentence_embedding'))
    ) {
      pooling = 'in-graph';
      outputName = session.outputNames.includes('sentence_embedding')
        ? 'sentence_embedding'
        : (session.outputNames[0] as string);
    } else {
      pooling = description.pooling ?? 'mean';
      const tokenOutput = TOKEN_STATE_OUTPUTS.find((name) => session.outputNames.includes(name));
      if (!tokenOutput) {
        throw new ModelConfigurationError(
          `${description.onnxPath}: ${pooling} pooling needs a per-token output (${TOKEN_STATE_OUTPUTS.join(' or ')}); the graph has ${session.outputNames.join(', ')}`,
        );
      }
      outputName = tokenOutput;
    }
    const provisional = new OnnxEmbedder(
      session,
      tokenizer,
      description,
      {
        modelId: description.modelId,
        dimensions: 0,
        pooling,
        normalized: description.normalize,
      },
      outputName,
      options.batchSize ?? 32,
    );
    // One probe run learns the dimensions and fails at load, not at the first query, on a broken model.
    const [probe] = await provisional.embedEncoded([tokenizer.encode('dimension probe')]);
    const dimensions = probe?.length ?? 0;
    if (dimensions === 0)
      throw new ModelConfigurationError(`${description.onnxPath} produced an empty vector`);
    return new OnnxEmbedder(
      session,
      tokenizer,
      description,
      { ...provisional.space, fingerprint: await fingerprinting, dimensions },
      outputName,
      options.batchSize ?? 32,
    );
  }

  get maxContentTokens(): number {
    return this.tokenizer.maxContentTokens - this.tokenizer.countTokens(this.description.documentPrefix);
  }

  countTokens(text: string): number {
    return this.tokenizer.countTokens(text);
  }

  async embedQuery(text: string): Promise<Float32Array> {
    const [vector] = await this.embedEncoded([this.tokenizer.encode(this.description.queryPrefix + text)]);
    return vector as Float32Array;
  }

  async embedDocuments(texts: readonly string[]): Promise<Float32Array[]> {
    return this.embedEncoded(
      texts.map((text) => this.tokenizer.encode(this.description.documentPrefix + text)),
    );
  }

  /** Embed already-tokenised rows (e.g. golden token ids); one vector per row, in input order. */
  async embedEncoded(rows: readonly EncodedSequence[]): Promise<Float32Array[]> {
    if (rows.length === 0) return [];
    const { pooling, normalized } = this.space;
    return runInBatches(this.session, rows, this.batchSize, ({ outputs, batch, sequence, attentionMask }) => {
      const { data, dims } = floatOutput(outputs, this.outputName);
      if (pooling === 'in-graph') return splitRows(data, batch, dims[dims.length - 1] ?? 0, normalized);
      return poolTokenStates(data, attentionMask, [batch, sequence, dims[2] ?? 0], pooling, normalized);
    });
  }

  /** Release the native session. */
  async dispose(): Promise<void> {
    await this.session.release();
  }
}
