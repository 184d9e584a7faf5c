import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { ModelConfigurationError } from '../../core/errors.js';
import type { PoolingStrategy } from '../../core/pooling.js';

/** Explicit settings that win over what the model files say. */
export interface ModelOverrides {
  /**
   * Readable identifier recorded in manifests. Default: `_name_or_path` in config.json, else the
   * name the model layer recorded (`bisearch-model.json`), else the directory name.
   */
  readonly modelId?: string;
  /** ONNX file inside the directory. Default: model.onnx, then onnx/model_quantized.onnx, onnx/model.onnx. */
  readonly onnxFile?: string;
  readonly pooling?: PoolingStrategy;
  readonly normalize?: boolean;
  /** Total tokens per sequence, special tokens included. */
  readonly maxTokens?: number;
  readonly queryPrefix?: string;
  readonly documentPrefix?: string;
}

/** What the engine needs to know about a model, derived from its Hugging Face-layout directory. */
export interface ModelDescription {
  readonly directory: string;
  readonly modelId: string;
  readonly onnxPath: string;
  /**
   * Pooling the files or overrides declare (`mean`/`cls` from 1_Pooling/config.json, `in-graph`
   * from the config); undefined when they say nothing and the ONNX outputs decide.
   */
  readonly pooling: PoolingStrategy | undefined;
  readonly normalize: boolean;
  /** Total tokens per sequence, special tokens included. */
  readonly maxTokens: number;
  readonly queryPrefix: string;
  readonly documentPrefix: string;
  readonly tokenizerJson: Record<string, unknown>;
  readonly tokenizerConfig: Record<string, unknown>;
  readonly config: Record<string, unknown>;
}

/** Written by the model layer build (layers/model-layer.ts MODEL_NAME_FILE): `{"name": …}`. */
const MODEL_NAME_FILE = 'bisearch-model.json';

const ONNX_CANDIDATES = ['model.onnx', 'onnx/model_quantized.onnx', 'onnx/model.onnx'];

/**
 * Known query/document prefixes for model families that were trained with them. Used only when
 * the directory has no `config_sentence_transformers.json` prompts and no override is given.
 */
const KNOWN_PREFIXES: Array<{ pattern: RegExp; query: string; document: string }> = [
  { pattern: /(^|\/)(multilingual-)?e5-/i, query: 'query: ', document: 'passage: ' },
  {
    pattern: /(^|\/)bge-.*-en/i,
    query: 'Represent this sentence for searching relevant passages: ',
    document: '',
  },
];

function readJson(path: string, required: boolean): Record<string, unknown> | undefined {
  if (!existsSync(path)) {
    if (required) throw new ModelConfigurationError(`model file missing: ${path}`);
    return undefined;
  }
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (cause) {
    throw new ModelConfigurationError(`model file is not valid JSON: ${path}`, { cause });
  }
}

function positiveInteger(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value > 0 && value < 1_000_000
    ? value
    : undefined;
}

/**
 * Read a model directory in Hugging Face layout (`model.onnx` or `onnx/model*.onnx`,
 * `tokenizer.json`, `tokenizer_config.json`, `config.json`, optional `1_Pooling/config.json`,
 * `sentence_bert_config.json`, `config_sentence_transformers.json`) and derive pooling,
 * normalisation, max tokens and prefixes. `in-graph` pooling is decided later, from the ONNX
 * outputs, when the files do not say.
 */
export function describeModelDirectory(directory: string, overrides: ModelOverrides = {}): ModelDescription {
  if (!existsSync(directory)) throw new ModelConfigurationError(`model directory not found: ${directory}`);
  const config = readJson(join(directory, 'config.json'), false) ?? {};
  const tokenizerJson = readJson(join(directory, 'tokenizer.json'), true) as Record<string, unknown>;
  const tokenizerConfig = readJson(join(directory, 'tokenizer_config.json'), false) ?? {};
  const poolingConfig = readJson(join(directory, '1_Pooling', 'config.json'), false);
  const sentenceBertConfig = readJson(join(directory, 'sentence_bert_config.json'), false);
  const sentenceTransformersConfig = readJson(join(directory, 'config_sentence_transformers.json'), false);

  const onnxFile =
    overrides.onnxFile ?? ONNX_CANDIDATES.find((candidate) => existsSync(join(directory, candidate)));
  if (!onnxFile || !existsSync(join(directory, onnxFile))) {
    throw new ModelConfigurationError(
      `no ONNX model in ${directory} (looked for ${overrides.onnxFile ?? ONNX_CANDIDATES.join(', ')})`,
    );
  }

  // A layer's directory is always `model`: the layer build records the readable name beside it.
  const recordedName = readJson(join(directory, MODEL_NAME_FILE), false)?.name;
  const modelId =
    overrides.modelId ??
    (typeof config._name_or_path === 'string' && config._name_or_path
      ? config._name_or_path
      : typeof recordedName === 'string' && recordedName
        ? recordedName
        : basename(directory));

  let pooling: PoolingStrategy | undefined = overrides.pooling;
  if (!pooling && poolingConfig) {
    if (poolingConfig.pooling_mode_cls_token === true) pooling = 'cls';
    else if (poolingConfig.pooling_mode_mean_tokens === true) pooling = 'mean';
    else
      throw new ModelConfigurationError(
        `unsupported pooling in ${join(directory, '1_Pooling', 'config.json')}: only mean and CLS are implemented`,
      );
  }
  // USE-lite style configs say where pooling happens in prose; the ONNX outputs decide otherwise.
  if (!pooling && typeof config.pooling === 'string' && /inside the (onnx )?graph/i.test(config.pooling))
    pooling = 'in-graph';

  const truncation = tokenizerJson.truncation as { max_length?: unknown } | null | undefined;
  const positionLimit = positiveInteger(config.max_position_embeddings);
  const derivedMaxTokens =
    positiveInteger(sentenceBertConfig?.max_seq_length) ??
    positiveInteger(truncation?.max_length) ??
    positiveInteger(config.max_seq_length) ??
    positiveInteger(tokenizerConfig.model_max_length) ??
    512;
  const maxTokens = overrides.maxTokens ?? Math.min(derivedMaxTokens, positionLimit ?? derivedMaxTokens);

  const prompts = (sentenceTransformersConfig?.prompts ?? {}) as Record<string, unknown>;
  const known = KNOWN_PREFIXES.find((entry) => entry.pattern.test(modelId));
  const queryPrefix =
    overrides.queryPrefix ?? (typeof prompts.query === 'string' ? prompts.query : (known?.query ?? ''));
  const documentPrefix =
    overrides.documentPrefix ??
    (typeof prompts.document === 'string'
      ? prompts.document
      : typeof prompts.passage === 'string'
        ? prompts.passage
        : (known?.document ?? ''));

  return {
    directory,
    modelId,
    onnxPath: join(directory, onnxFile),
    pooling,
    normalize: overrides.normalize ?? true,
    maxTokens,
    queryPrefix,
    documentPrefix,
    tokenizerJson,
    tokenizerConfig,
    config,
  };
}
