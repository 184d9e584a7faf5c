import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Architecture, Code, LayerVersion } from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { buildModelLayer, MODEL_MOUNT_PATH } from '../../layers/model-layer.js';
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
}

/**
 * The two layers every model-using function carries: the native runtime (onnxruntime-node and
 * usearch, Linux binaries of one architecture, GLIBC-checked) and the model files, mounted at
 * `/opt/model`. Built from the project's installed packages at synth time; synth fails when
 * they would not fit Lambda's 250 MB next to a function.
 */
export class RuntimeLayers extends Construct {
  readonly native: LayerVersion;
  readonly model: LayerVersion;
  readonly architecture: LambdaArchitecture;
  readonly modelMountPath = MODEL_MOUNT_PATH;
  /** Unzipped sizes (bytes) of the native and model layers. */
  readonly sizes: { native: number; model: number };

  constructor(scope: Construct, id: string, props: RuntimeLayersProps) {
    super(scope, id);
    this.architecture = props.architecture;
    const buildRoot = join(PROJECT_ROOT, 'layers', 'build', props.architecture);
    const native = buildNativeLayer(props.architecture, join(buildRoot, 'native'));
    const model = buildModelLayer(props.modelDirectory, join(buildRoot, 'model'));
    this.sizes = { native: native.bytes, model: model.bytes };
    assertWithinLambdaLimit({
      'native layer': native.bytes,
      'model layer': model.bytes,
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
  }
}
