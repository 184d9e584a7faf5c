/**
 * onnxruntime-node, loaded with `require` for the reason native-modules.ts gives (on Lambda it
 * lives in the native layer, which ES imports cannot find). Only model code imports this module.
 */
import { createRequire } from 'node:module';
import type * as OnnxRuntime from 'onnxruntime-node';

/** onnxruntime-node, as its CommonJS entry point exports it. */
export const ort = createRequire(import.meta.url)('onnxruntime-node') as typeof OnnxRuntime;
