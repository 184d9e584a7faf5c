import type * as OnnxRuntime from 'onnxruntime-node';
import { ModelConfigurationError } from '../../core/errors.js';
import { describeModelDirectory, type ModelDescription, type ModelOverrides } from './model-directory.js';
import { type EncodedSequence, ModelTokenizer } from './model-tokenizer.js';
import { ort } from './onnxruntime.js';

/** onnxruntime session settings. */
export interface OnnxSessionOptions {
  /**
   * Threads for one operator. Default: onnxruntime's own (one per physical core). Use 1 when
   * several sessions or requests share a small machine.
   */
  readonly intraOpThreads?: number;
}

/** Open an ONNX model on the CPU with full graph optimisation, sequential execution. */
export async function openOnnxSession(
  onnxPath: string,
  options: OnnxSessionOptions = {},
): Promise<OnnxRuntime.InferenceSession> {
  try {
    return await ort.InferenceSession.create(onnxPath, {
      executionProviders: ['cpu'],
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      interOpNumThreads: 1,
      ...(options.intraOpThreads ? { intraOpNumThreads: options.intraOpThreads } : {}),
    });
  } catch (cause) {
    throw new ModelConfigurationError(`cannot load ONNX model ${onnxPath}: ${(cause as Error).message}`, {
      cause,
    });
  }
}

/** A model directory opened for inference: what the files say, its tokenizer and its ONNX session. */
export interface LoadedOnnxModel {
  readonly description: ModelDescription;
  readonly tokenizer: ModelTokenizer;
  readonly session: OnnxRuntime.InferenceSession;
}

/** Describe a model directory (with overrides), build its tokenizer and open its ONNX session. */
export async function loadOnnxModel(
  directory: string,
  options: ModelOverrides & OnnxSessionOptions = {},
): Promise<LoadedOnnxModel> {
  const description = describeModelDirectory(directory, options);
  const tokenizer = new ModelTokenizer(
    description.tokenizerJson,
    description.tokenizerConfig,
    description.maxTokens,
  );
  const session = await openOnnxSession(description.onnxPath, options);
  return { description, tokenizer, session };
}

/** Index of the low 32-bit word of an int64 in this machine's byte order. */
const LOW_WORD = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 0 : 1;

/** The outputs of one padded batch, with the shape of its inputs. */
export interface BatchOutputs {
  readonly outputs: OnnxRuntime.InferenceSession.ReturnType;
  /** Rows in the batch. */
  readonly batch: number;
  /** Padded sequence length. */
  readonly sequence: number;
  /** Row-major `[batch, sequence]` attention mask fed to the model. */
  readonly attentionMask: BigInt64Array;
}

/**
 * Run encoded rows through a session in batches of at most `batchSize`, with dynamic padding:
 * rows are sorted by length so each batch is padded only to its own longest row (right padding,
 * id 0, mask 0), then results are put back in input order.
 *
 * @param extract turns one batch's outputs into one result per row, in batch order.
 */
export async function runInBatches<Result>(
  session: OnnxRuntime.InferenceSession,
  rows: readonly EncodedSequence[],
  batchSize: number,
  extract: (batch: BatchOutputs) => Result[],
): Promise<Result[]> {
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
  const order = rows
    .map((_, index) => index)
    .sort((a, b) => (rows[a]?.ids.length ?? 0) - (rows[b]?.ids.length ?? 0));
  const wantsTypeIds = session.inputNames.includes('token_type_ids');
  const results = new Array<Result>(rows.length);
  for (let start = 0; start < order.length; start += batchSize) {
    const indices = order.slice(start, start + batchSize);
    const batchRows = indices.map((index) => rows[index] as EncodedSequence);
    const sequence = Math.max(...batchRows.map((row) => row.ids.length));
    const ids = new BigInt64Array(batchRows.length * sequence);
    const mask = new BigInt64Array(batchRows.length * sequence);
    const typeIds = new BigInt64Array(batchRows.length * sequence);
    // int64 tensors written through 32-bit views (ids are small and non-negative: the low word
    // holds the value, the high word stays 0): a BigInt per token cost more than a tiny model's inference.
    const idWords = new Int32Array(ids.buffer);
    const maskWords = new Int32Array(mask.buffer);
    const typeWords = new Int32Array(typeIds.buffer);
    batchRows.forEach((row, r) => {
      const base = 2 * r * sequence;
      for (let s = 0; s < row.ids.length; s += 1) {
        const word = base + 2 * s + LOW_WORD;
        idWords[word] = row.ids[s] as number;
        maskWords[word] = 1;
        typeWords[word] = row.typeIds[s] ?? 0;
      }
    });
    const dims = [batchRows.length, sequence];
    const feeds: Record<string, OnnxRuntime.Tensor> = {
      input_ids: new ort.Tensor('int64', ids, dims),
      attention_mask: new ort.Tensor('int64', mask, dims),
    };
    if (wantsTypeIds) feeds.token_type_ids = new ort.Tensor('int64', typeIds, dims);
    const outputs = await session.run(feeds);
    const extracted = extract({ outputs, batch: batchRows.length, sequence, attentionMask: mask });
    if (extracted.length !== batchRows.length) {
      throw new ModelConfigurationError(
        `model returned ${extracted.length} rows for a batch of ${batchRows.length}`,
      );
    }
    indices.forEach((index, r) => {
      results[index] = extracted[r] as Result;
    });
  }
  return results;
}

/** A float32 output by name, with a clear error when the graph does not have it. */
export function floatOutput(
  outputs: OnnxRuntime.InferenceSession.ReturnType,
  name: string,
): { data: Float32Array; dims: readonly number[] } {
  const tensor = outputs[name];
  if (!tensor)
    throw new ModelConfigurationError(
      `model has no output named ${name} (has ${Object.keys(outputs).join(', ')})`,
    );
  if (tensor.type !== 'float32')
    throw new ModelConfigurationError(`output ${name} is ${tensor.type}, expected float32`);
  return { data: tensor.data as Float32Array, dims: tensor.dims };
}
