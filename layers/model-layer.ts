import { cpSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { directorySize } from './native-layer.js';

/** Where the model layer's files appear inside a Lambda: `/opt/model`. */
export const MODEL_MOUNT_PATH = '/opt/model';

/** Files a model directory needs at run time (documentation and golden data stay out). */
const MODEL_FILE =
  /^(model.*\.onnx|tokenizer\.json|tokenizer_config\.json|special_tokens_map\.json|config\.json|sentence_bert_config\.json|config_sentence_transformers\.json|LICENSE)$/;

/**
 * Stage a model directory as a Lambda layer (`model/…`, mounted at `/opt/model`), copying only
 * the files the engine reads (ONNX, tokenizer, configs, `1_Pooling/`, `onnx/`).
 */
export function buildModelLayer(
  modelDirectory: string,
  outputDirectory: string,
): { directory: string; bytes: number } {
  if (!existsSync(join(modelDirectory, 'tokenizer.json')))
    throw new Error(`model layer: ${modelDirectory} is not a model directory`);
  rmSync(outputDirectory, { recursive: true, force: true });
  const target = join(outputDirectory, 'model');
  mkdirSync(target, { recursive: true });
  for (const entry of readdirSync(modelDirectory, { withFileTypes: true })) {
    if (entry.isDirectory() && (entry.name === '1_Pooling' || entry.name === 'onnx')) {
      cpSync(join(modelDirectory, entry.name), join(target, entry.name), { recursive: true });
    } else if (entry.isFile() && MODEL_FILE.test(entry.name)) {
      cpSync(join(modelDirectory, entry.name), join(target, entry.name));
    }
  }
  return { directory: outputDirectory, bytes: directorySize(outputDirectory) };
}
