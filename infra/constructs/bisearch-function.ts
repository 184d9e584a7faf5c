import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type CfnResource, type Duration, RemovalPolicy, Size } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { Architecture, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import type { RuntimeLayers } from './layers.js';
import { acknowledgeFunctionBasics } from './nag.js';
import { HANDLER_FILE_METADATA } from './template-metadata.js';

const PROJECT_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Modules the native layer provides; never bundled (they load their own binaries). */
export const NATIVE_MODULES = ['onnxruntime-node', 'usearch'];

/** ESM bundles of CommonJS dependencies still call require(); this banner gives them one. */
export const ESM_REQUIRE_BANNER =
  "import { createRequire as bisearchCreateRequire } from 'node:module'; const require = bisearchCreateRequire(import.meta.url);";

export interface BisearchFunctionProps {
  /** Handler file under `functions/handlers/`, without extension. */
  readonly handlerFile: string;
  /** Exported handler name. Default `handler`. */
  readonly handlerExport?: string;
  readonly description: string;
  readonly memoryMb: number;
  readonly timeout: Duration;
  readonly layers: RuntimeLayers;
  /** Attach the model layer (`/opt/model`). Default true. */
  readonly needsModel?: boolean;
  /** Layers beyond the native and model ones (e.g. the reranker's). */
  readonly extraLayers?: lambda.ILayerVersion[];
  readonly ephemeralStorageMb?: number;
  readonly environment?: Record<string, string>;
}

/**
 * A bisearch Lambda: Node.js 22 (ESM, top-level await), bundled by the local esbuild with the
 * native modules external and shipped in the native layer, minified with names kept (readable error
 * classes in logs, no source maps), one-month log retention, X-Ray active.
 */
export function bisearchFunction(scope: Construct, id: string, props: BisearchFunctionProps): NodejsFunction {
  const logGroup = new LogGroup(scope, `${id}Logs`, {
    retention: RetentionDays.ONE_MONTH,
    removalPolicy: RemovalPolicy.DESTROY,
  });
  const layers: lambda.ILayerVersion[] = [props.layers.native];
  if (props.needsModel ?? true) layers.push(props.layers.model);
  layers.push(...(props.extraLayers ?? []));
  const fn = new NodejsFunction(scope, id, {
    entry: join(PROJECT_ROOT, 'functions', 'handlers', `${props.handlerFile}.ts`),
    handler: props.handlerExport ?? 'handler',
    description: props.description,
    runtime: Runtime.NODEJS_22_X,
    architecture: props.layers.architecture === 'arm64' ? Architecture.ARM_64 : Architecture.X86_64,
    memorySize: props.memoryMb,
    timeout: props.timeout,
    ephemeralStorageSize: Size.mebibytes(props.ephemeralStorageMb ?? 512),
    layers,
    logGroup,
    tracing: Tracing.ACTIVE,
    projectRoot: PROJECT_ROOT,
    depsLockFilePath: join(PROJECT_ROOT, 'package-lock.json'),
    environment: {
      ...((props.needsModel ?? true) ? { BISEARCH_MODEL_DIR: props.layers.modelMountPath } : {}),
      ...props.environment,
    },
    bundling: {
      format: OutputFormat.ESM,
      target: 'node22',
      platform: 'node',
      mainFields: ['module', 'main'],
      externalModules: NATIVE_MODULES,
      // No source maps: with --enable-source-maps every error.stack parses a 4–5 MB map, which
      // makes each logged error costly; keepNames keeps class and function names readable instead.
      sourceMap: false,
      minify: true,
      keepNames: true,
      banner: ESM_REQUIRE_BANNER,
      forceDockerBundling: false,
    },
  });
  // The local runner starts each function from its handler source with the template's limits.
  (fn.node.defaultChild as CfnResource).addMetadata(
    HANDLER_FILE_METADATA,
    `functions/handlers/${props.handlerFile}.ts`,
  );
  acknowledgeFunctionBasics(fn);
  return fn;
}
