/**
 * Where a reindex builds and validates its version: in the Build and Validate Lambdas, or in one
 * ECS Fargate task when the version would not fit a Lambda with a 2× margin. Pure: Snapshot
 * calls it with what it knows of the coming version.
 *
 * Why these limits. A Lambda step has 15 minutes, at most 10,240 MB of memory and of `/tmp`.
 * Measured at 512-d with recall tuning to 0.98 (2026-12-04, 2 cores): the snapshot is ~3.4 KB per
 * chunk on `/tmp`; a full build of 1M chunks took 659 s, and its physical memory (proportional
 * set size, sampled) peaked at ~6.8 KB per chunk beyond the input rows (its resident set reads
 * twice that: it counts every memory map of the index file that tuning opens, one per ef tried).
 * At {@link DEFAULT_LAMBDA_BUILD_MAX_CHUNKS} (500k) that is ~3.4 GB against 10,240 MB (3×) and
 * ~330 s against 15 minutes (2.7×); at 750k time would keep only 1.8×. `/tmp` depends on the
 * configured size: twice the estimated snapshot must fit.
 */

/** Where the version is built and validated. */
export type BuildCompute = 'lambda' | 'fargate';

/**
 * Most chunks a Lambda build takes by default (500k: measured memory and time both keep ≥ 2×
 * margin; see the module comment).
 */
export const DEFAULT_LAMBDA_BUILD_MAX_CHUNKS = 500_000;

/** Margin every Lambda limit keeps: twice the estimate must fit. */
export const LAMBDA_BUILD_MARGIN = 2;

/**
 * Snapshot bytes per chunk when no version exists to measure them on (bytes): float32 rows
 * (4 per dimension), the f16 HNSW graph (2 per dimension plus ~150 of links at connectivity 16),
 * records, offsets and BM25 (~1,300 for chunks of about a kilobyte of text). Measured versions
 * replace it: {@link measuredBytesPerChunk}.
 */
export function estimatedBytesPerChunk(dimensions: number): number {
  return 6 * dimensions + 1_450;
}

/** Bytes per chunk of an existing version: its files' sizes over its chunks. */
export function measuredBytesPerChunk(
  files: Readonly<Record<string, { readonly bytes: number }>>,
  chunks: number,
): number | undefined {
  if (chunks <= 0) return undefined;
  let bytes = 0;
  for (const file of Object.values(files)) bytes += file.bytes;
  return bytes / chunks;
}

export interface BuildComputeInput {
  /** Chunks the new version will hold (an estimate for incremental runs). */
  readonly chunks: number;
  /** Snapshot bytes per chunk (measured on the current version, or estimated). */
  readonly bytesPerChunk: number;
  /**
   * An incremental build also keeps the base version's graph and keys on `/tmp` beside the new
   * snapshot: about a third more. Default false.
   */
  readonly incremental?: boolean;
  /** The Build Lambda's `/tmp` (MB). */
  readonly lambdaTmpMb: number;
  /** Most chunks a Lambda build takes. Default {@link DEFAULT_LAMBDA_BUILD_MAX_CHUNKS}. */
  readonly lambdaMaxChunks?: number;
  /** Whether the deployment has the Fargate task (config `fargateBuild`). */
  readonly fargateAvailable: boolean;
  /** An operator's choice (execution input `buildOn`); wins when possible. */
  readonly requested?: BuildCompute;
}

export interface BuildComputeChoice {
  readonly compute: BuildCompute;
  /** Why, in words for the execution output and logs. */
  readonly reason: string;
  /** Estimated `/tmp` bytes of the build (snapshot, plus the base graph when incremental). */
  readonly estimatedTmpBytes: number;
}

/**
 * Choose the build's compute: Fargate when the estimate breaks a Lambda bound with the margin,
 * or when asked; Lambda otherwise. Throws when Fargate is needed but not deployed (a clear
 * failure before any work, instead of ENOSPC or a timeout 15 minutes into Build).
 */
export function chooseBuildCompute(input: BuildComputeInput): BuildComputeChoice {
  const estimatedTmpBytes = Math.ceil(input.chunks * input.bytesPerChunk * (input.incremental ? 4 / 3 : 1));
  const maxChunks = input.lambdaMaxChunks ?? DEFAULT_LAMBDA_BUILD_MAX_CHUNKS;
  const tmpBytes = input.lambdaTmpMb * 1024 * 1024;
  const gib = (bytes: number) => `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
  const broken = [
    ...(input.chunks > maxChunks
      ? [`${input.chunks} chunks is more than a Lambda build takes (${maxChunks})`]
      : []),
    ...(estimatedTmpBytes * LAMBDA_BUILD_MARGIN > tmpBytes
      ? [
          `twice the estimated ${gib(estimatedTmpBytes)} on /tmp does not fit the Build Lambda's ${input.lambdaTmpMb} MB`,
        ]
      : []),
  ];
  const overLambda = broken.length > 0 ? broken.join('; ') : undefined;
  if (input.requested === 'fargate' || (overLambda && input.requested !== 'lambda')) {
    if (!input.fargateAvailable)
      throw new BuildComputeUnavailable(
        `${overLambda ?? 'a Fargate build was requested'}, and this deployment has no Fargate build task (deploy with -c fargateBuild=true, or raise -c ephemeralStorageMb)`,
      );
    return { compute: 'fargate', reason: overLambda ?? 'requested', estimatedTmpBytes };
  }
  return {
    compute: 'lambda',
    reason:
      input.requested === 'lambda'
        ? `requested${overLambda ? ` (although ${overLambda})` : ''}`
        : 'fits a Lambda with 2× margin',
    estimatedTmpBytes,
  };
}

/** The build needs the Fargate task, and the deployment has none. Not retried. */
export class BuildComputeUnavailable extends Error {
  override readonly name = 'BuildComputeUnavailable';
}
