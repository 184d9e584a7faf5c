import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Architecture, Code, LayerVersion } from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { buildModelLayer, MODEL_MOUNT_PATH, RERANKER_MOUNT_PATH } from '../../layers/model-layer.js';
import {
  assertWithinLambdaLimit,
  buildNativeLayer,
  type LambdaArchitecture,
} from '../../layers/native-layer.js';

const PROJECT_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Room left for a function's own bundle under Lambda's 250 MB limit (checked again on the synthesized assets in tests). */
export const FUNCTION_CODE_BUDGET_BYTES = 30 * 1024 * 1024;

export interface RuntimeLayersProps {
  readonly architecture: LambdaArchitecture;
  /** Model directory (Hugging Face layout) shipped as the model layer. */
  readonly modelDirectory: string;
  /**
   * Optional cross-encoder directory shipped as a third layer, mounted at `/opt/reranker`
   * (relative paths resolve against the synth's working directory, as `-c rerankerDir=…` reads).
   */
  readonly rerankerDirectory?: string;
}

/**
 * The two layers every model-using function carries: the native runtime (onnxruntime-node and
 * usearch, Linux binaries of one architecture, GLIBC-checked) and the model files, mounted at
 * `/opt/model`; and, when reranking is configured, the cross-encoder at `/opt/reranker`. Built from the project's installed packages at synth time; synth fails when
 * they would not fit Lambda's 250 MB next to a function.
 */
export class RuntimeLayers extends Construct {
  readonly native: LayerVersion;
  readonly model: LayerVersion;
  readonly architecture: LambdaArchitecture;
  readonly modelMountPath = MODEL_MOUNT_PATH;
  /** The cross-encoder layer, when a reranker directory was given. */
  readonly reranker: LayerVersion | undefined;
  /** Where the reranker layer's files appear in a Lambda (`/opt/reranker`), when there is one. */
  readonly rerankerMountPath: string | undefined;
  /** Unzipped sizes (bytes) of the native, model and (0 without one) reranker layers. */
  readonly sizes: { native: number; model: number; reranker: number };

  constructor(scope: Construct, id: string, props: RuntimeLayersProps) {
    super(scope, id);
    this.architecture = props.architecture;
    const buildRoot = join(PROJECT_ROOT, 'layers', 'build', props.architecture);
    const native = buildNativeLayer(props.architecture, join(buildRoot, 'native'));
    const model = buildModelLayer(props.modelDirectory, join(buildRoot, 'model'));
    const reranker = props.rerankerDirectory
      ? buildModelLayer(resolve(props.rerankerDirectory), join(buildRoot, 'reranker'), {
          folder: 'reranker',
        })
      : undefined;
    this.sizes = { native: native.bytes, model: model.bytes, reranker: reranker?.bytes ?? 0 };
    // The query function carries all three layers: they must fit beside its code.
    assertWithinLambdaLimit({
      'native layer': native.bytes,
      'model layer': model.bytes,
      ...(reranker ? { 'reranker layer': reranker.bytes } : {}),
      'function budget': FUNCTION_CODE_BUDGET_BYTES,
    });
    const architecture = props.architecture === 'arm64' ? Architecture.ARM_64 : Architecture.X86_64;
    this.native = new LayerVersion(this, 'Native', {
      code: Code.fromAsset(native.directory),
      compatibleArchitectures: [architecture],
      description: `onnxruntime-node + usearch for linux-${props.architecture}`,
    });
    this.model = new LayerVersion(this, 'Model', {
      code: Code.fromAsset(model.directory),
      description: 'bisearch embedding model (mounted at /opt/model)',
    });
    this.reranker = reranker
      ? new LayerVersion(this, 'Reranker', {
          code: Code.fromAsset(reranker.directory),
          description: `bisearch cross-encoder ${reranker.name} (mounted at ${RERANKER_MOUNT_PATH})`,
        })
      : undefined;
    this.rerankerMountPath = reranker ? RERANKER_MOUNT_PATH : undefined;
  }
}
