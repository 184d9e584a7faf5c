import { z } from 'zod';

/**
 * Deployment settings, read from CDK context (`cdk.json` or `-c key=value`) and validated here so
 * a typo fails `cdk synth` with a clear message instead of deploying something else.
 */
export const stackConfigSchema = z
  .object({
    /** Stack name. */
    stackName: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9-]{0,127}$/)
      .default('Bisearch'),
    /** Lambda CPU architecture; the native layer ships only this architecture's binaries. */
    architecture: z.enum(['x86_64', 'arm64']).default('x86_64'),
    /**
     * Provisioned concurrency of the query alias. Default 0 (off: cold starts, no standing cost):
     * it is taken from the regional concurrency quota, Lambda keeps part of that quota unreserved,
     * and on accounts whose quota is 10 (new accounts) even 1 fails the deploy.
     */
    provisionedConcurrency: z.coerce.number().int().min(0).max(1000).default(0),
    /** Query Lambda memory (MB); CPU scales with it. */
    queryMemoryMb: z.coerce.number().int().min(1024).max(10240).default(3008),
    /** Encode Lambda memory (MB). */
    encodeMemoryMb: z.coerce.number().int().min(1024).max(10240).default(3008),
    /**
     * Most encode invocations at once (the SQS event source's maximum concurrency, 2–1,000).
     * Default 32: each announces through one atomic counter item (DynamoDB: ~1,000 writes/s per
     * item), and each holds up to 10 messages.
     */
    encodeMaxConcurrency: z.coerce.number().int().min(2).max(1000).default(32),
    /** /tmp of the query and reindex Lambdas (MB): must hold a snapshot (two during a swap). */
    ephemeralStorageMb: z.coerce.number().int().min(512).max(10240).default(4096),
    /** EventBridge schedule of the nightly reindex (UTC). */
    reindexSchedule: z.string().default('cron(0 3 * * ? *)'),
    /**
     * Bound on the delta (chunks changed since the snapshot): past it the query function starts a
     * reindex, at most once per version and hour. 0 turns it off (nightly reindex only).
     */
    deltaReindexChunks: z.coerce.number().int().min(0).default(20_000),
    /**
     * ANN recall@10 each reindex tunes the search ef for and requires (BISEARCH_RECALL_TARGET);
     * 0 turns tuning off.
     */
    recallTarget: z.coerce.number().min(0).max(1).default(0.98),
    /**
     * The reindex's Fargate build task (ECS, started by the state machine with `.sync`): Build
     * and Validate move to it for versions that would not fit a Lambda with 2× margin. Costs
     * nothing between runs (no NAT gateway); `false` keeps every build in the Lambdas.
     */
    fargateBuild: z
      .union([z.boolean(), z.enum(['true', 'false']).transform((value) => value === 'true')])
      .default(true),
    /** vCPU units of the Fargate build task (1024 = 1 vCPU; Fargate's values 1024–16384). */
    fargateBuildCpu: z.coerce
      .number()
      .int()
      .refine((cpu) => [1024, 2048, 4096, 8192, 16384].includes(cpu), 'one of 1024, 2048, 4096, 8192, 16384')
      .default(8192),
    /** Memory of the Fargate build task (MiB), within what Fargate allows for its vCPUs. */
    fargateBuildMemoryMb: z.coerce.number().int().min(2048).max(122_880).default(61_440),
    /** Ephemeral storage of the Fargate build task (GiB, 21–200). */
    fargateBuildStorageGib: z.coerce.number().int().min(21).max(200).default(100),
    /**
     * Most chunks a reindex builds in the Lambdas before it moves Build and Validate to the
     * Fargate task (also moved when twice the estimated snapshot exceeds their `/tmp`).
     */
    lambdaBuildMaxChunks: z.coerce.number().int().min(1).default(500_000),
    /** Snapshot versions kept besides current and previous. */
    keepVersions: z.coerce.number().int().min(1).max(50).default(3),
    /** HTTP API authorisation: AWS IAM (SigV4) by default, or a JWT authoriser. */
    auth: z.enum(['iam', 'jwt']).default('iam'),
    jwtIssuer: z.string().url().optional(),
    jwtAudience: z.array(z.string()).optional(),
    /** Allowed CORS origins; none by default. */
    corsOrigins: z.array(z.string()).default([]),
    /** API Gateway throttling (requests per second, burst). */
    throttleRateLimit: z.coerce.number().min(1).default(100),
    throttleBurstLimit: z.coerce.number().int().min(1).default(200),
    /** E-mail subscribed to the alarm topic, if any. */
    alarmEmail: z.string().email().optional(),
    /** Query p99 latency alarm threshold (ms). */
    latencyAlarmMs: z.coerce.number().min(1).default(1000),
    /** Model directory for the model layer; default: the engine's resolution order. */
    modelDir: z.string().optional(),
    /** Optional cross-encoder directory: enables reranking in the query Lambda. */
    rerankerDir: z.string().optional(),
  })
  .superRefine((config, context) => {
    if (config.auth === 'jwt' && (!config.jwtIssuer || !config.jwtAudience?.length)) {
      context.addIssue({
        code: 'custom',
        message: 'auth "jwt" needs jwtIssuer and jwtAudience',
        path: ['auth'],
      });
    }
  });

export type StackConfig = z.infer<typeof stackConfigSchema>;

/** Parse context values (strings from `-c`, JSON from cdk.json) into a validated config. */
export function parseStackConfig(context: Record<string, unknown>): StackConfig {
  const normalized = Object.fromEntries(
    Object.entries(context).map(([key, value]) => {
      // `-c corsOrigins='["https://a"]'` arrives as a string.
      if (typeof value === 'string' && /^\s*[[{]/.test(value)) {
        try {
          return [key, JSON.parse(value)];
        } catch {
          return [key, value];
        }
      }
      return [key, value];
    }),
  );
  const parsed = stackConfigSchema.safeParse(normalized);
  if (!parsed.success) {
    throw new Error(
      `invalid bisearch context: ${parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}`,
    );
  }
  return parsed.data;
}

/** Context keys the config reads (everything else in the CDK context is ignored). */
export const CONFIG_KEYS = Object.keys(stackConfigSchema.shape) as Array<keyof StackConfig>;
