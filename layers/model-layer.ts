import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { directorySize } from './native-layer.js';

/** Where the model layer's files appear inside a Lambda: `/opt/model`. */
export const MODEL_MOUNT_PATH = '/opt/model';
/** Where the cross-encoder (reranker) layer's files appear inside a Lambda: `/opt/reranker`. */
export const RERANKER_MOUNT_PATH = '/opt/reranker';
/**
 * File the layer build writes beside the model files: `{"name": …}`, the model's readable name.
 * In a layer the directory is always called `model`, so without it a model whose config.json has
 * no `_name_or_path` would be called "model" on AWS.
 */
export const MODEL_NAME_FILE = 'bisearch-model.json';

/** Files a model directory needs at run time (documentation and golden data stay out). */
const MODEL_FILE =
  /^(model.*\.onnx|tokenizer\.json|tokenizer_config\.json|special_tokens_map\.json|config\.json|sentence_bert_config\.json|config_sentence_transformers\.json|LICENSE)$/;

/** The readable name of a model directory: config.json `_name_or_path`, else the directory's name. */
function readableName(modelDirectory: string): string {
  try {
    const config = JSON.parse(readFileSync(join(modelDirectory, 'config.json'), 'utf8')) as {
      _name_or_path?: unknown;
    };
    if (typeof config._name_or_path === 'string' && config._name_or_path) return config._name_or_path;
  } catch {
    // No or unreadable config.json: the directory name is the best name there is.
  }
  return basename(resolve(modelDirectory));
}

/**
 * Stage a model directory as a Lambda layer (`<folder>/…`, mounted at `/opt/<folder>`; folder
 * `model` by default, `reranker` for the cross-encoder), copying only the files the engine reads
 * (ONNX, tokenizer, configs, `1_Pooling/`, `onnx/`) and recording the model's readable name in
 * {@link MODEL_NAME_FILE}.
 */
export function buildModelLayer(
  modelDirectory: string,
  outputDirectory: string,
  options: { folder?: string } = {},
): { directory: string; bytes: number; name: string } {
  if (!existsSync(join(modelDirectory, 'tokenizer.json')))
    throw new Error(`model layer: ${modelDirectory} is not a model directory`);
  rmSync(outputDirectory, { recursive: true, force: true });
  const target = join(outputDirectory, options.folder ?? 'model');
  mkdirSync(target, { recursive: true });
  for (const entry of readdirSync(modelDirectory, { withFileTypes: true })) {
    if (entry.isDirectory() && (entry.name === '1_Pooling' || entry.name === 'onnx')) {
      cpSync(join(modelDirectory, entry.name), join(target, entry.name), { recursive: true });
    } else if (entry.isFile() && MODEL_FILE.test(entry.name)) {
      cpSync(join(modelDirectory, entry.name), join(target, entry.name));
    }
  }
  const name = readableName(modelDirectory);
  writeFileSync(join(target, MODEL_NAME_FILE), `${JSON.stringify({ name })}\n`);
  return { directory: outputDirectory, bytes: directorySize(outputDirectory), name };
}
