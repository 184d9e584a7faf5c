import { z } from 'zod';

/**
 * Environment variables the handlers read, set by the CDK constructs (and by the local stack).
 * Validated once at cold start so a misconfigured function fails at init with every problem named.
 */
const environmentSchema = z.object({
  TABLE_NAME: z.string().min(3),
  DOCUMENTS_BUCKET: z.string().min(3),
  INDEX_BUCKET: z.string().min(3),
  /** Local directory for downloaded snapshots and build scratch space. */
  BISEARCH_WORK_DIR: z.string().default('/tmp/bisearch'),
  /** Upper bound of search staleness, milliseconds. */
  BISEARCH_MAX_STALENESS_MS: z.coerce.number().int().min(0).default(2_000),
  BISEARCH_POINTER_CHECK_MS: z.coerce.number().int().min(0).default(30_000),
  /** Chunks in the delta past which the query function asks for a reindex; 0 turns it off. */
  BISEARCH_DELTA_REINDEX_CHUNKS: z.coerce.number().int().min(0).default(20_000),
  /** Longest a request waits for catch-up with the change log before answering with its lag. */
  BISEARCH_MAX_CATCH_UP_WAIT_MS: z.coerce.number().int().min(0).default(2_000),
  /** Longest Init waits for catch-up (on-demand Init is limited to 10 s in all). */
  BISEARCH_INIT_CATCH_UP_WAIT_MS: z.coerce.number().int().min(0).max(8_000).default(3_000),
  /** The ingest queue (encode only): a large object's processing continues in a message sent here. */
  INGEST_QUEUE_URL: z.string().optional(),
  /** Optional cross-encoder directory; enables the rerank stage. */
  BISEARCH_RERANKER_DIR: z.string().optional(),
  /** onnxruntime threads per operator; Lambda's vCPUs by default. */
  BISEARCH_INTRA_OP_THREADS: z.coerce.number().int().min(1).optional(),
  /**
   * Largest share of the current version's documents a reindex re-exports incrementally (changed
   * since its watermark) before it rebuilds from every stored chunk instead; 0 makes every
   * reindex a full rebuild.
   */
  BISEARCH_INCREMENTAL_MAX_CHANGED_FRACTION: z.coerce.number().min(0).max(1).default(0.2),
  /**
   * Share of the rows whose graph keys were removed since the last fresh HNSW graph past which an
   * incremental reindex builds a fresh graph instead of updating the previous version's.
   */
  BISEARCH_MAX_REMOVED_FRACTION: z.coerce.number().min(0).max(1).default(0.2),
  /** Snapshot versions kept by the prune step (current and previous at least). */
  BISEARCH_KEEP_VERSIONS: z.coerce.number().int().min(2).default(3),
  /** Floor of HNSW recall@10 against exact search for a version to be swapped in (also without a target). */
  BISEARCH_MIN_RECALL: z.coerce.number().min(0).max(1).default(0.95),
  /**
   * ANN recall@10 the reindex tunes each version's search ef for (Build) and requires (Validate);
   * 0 turns tuning off (the configured ef 128, checked against BISEARCH_MIN_RECALL only).
   */
  BISEARCH_RECALL_TARGET: z.coerce.number().min(0).max(1).default(0.98),
  /** Largest search ef Build may choose. */
  BISEARCH_MAX_EXPANSION_SEARCH: z.coerce.number().int().min(16).max(16_384).default(1024),
  /** Largest HNSW connectivity Build may raise to (doubling from 16) when that ef is not enough. */
  BISEARCH_MAX_CONNECTIVITY: z.coerce.number().int().min(2).max(128).default(32),
  /** Sampled queries for choosing ef, and as many held out for reporting it (Build, Validate). */
  BISEARCH_RECALL_QUERIES: z.coerce.number().int().min(10).max(10_000).default(500),
  /**
   * The Build Lambda's `/tmp` (MB): with it set, Snapshot chooses where Build and Validate run
   * (see chooseBuildCompute); unset, they always run in the Lambdas.
   */
  BISEARCH_BUILD_TMP_MB: z.coerce.number().int().min(512).max(10_240).optional(),
  /** Most chunks a Lambda build takes before Build and Validate move to the Fargate task. */
  BISEARCH_LAMBDA_BUILD_MAX_CHUNKS: z.coerce.number().int().min(1).default(500_000),
  /** Whether the deployment has the Fargate build task (`true`/`false`). */
  BISEARCH_FARGATE_BUILD: z
    .enum(['true', 'false'])
    .default('false')
    .transform((value) => value === 'true'),
});

export type HandlerEnvironment = z.infer<typeof environmentSchema>;

export function readEnvironment(env: Record<string, string | undefined> = process.env): HandlerEnvironment {
  const parsed = environmentSchema.safeParse(env);
  if (!parsed.success) {
    throw new Error(
      `invalid function environment: ${parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}`,
    );
  }
  return parsed.data;
}

/** Encode Lambda timeout, seconds (the stack sets the function's timeout from it). */
export const ENCODE_TIMEOUT_SECONDS = 120;

/** SQS message attribute counting how often a record was continued in a new invocation. */
export const ENCODE_CONTINUATION_ATTRIBUTE = 'bisearch-continuation';
/**
 * A record is continued at most this often (≈ 100 × 110 s of embedding, far beyond the largest
 * allowed upload); past it the record fails like any other and dead-letters after redrives.
 */
export const ENCODE_MAX_CONTINUATIONS = 100;

/** Service name for logs and metrics dimensions. */
export const METRICS_NAMESPACE = 'Bisearch';
