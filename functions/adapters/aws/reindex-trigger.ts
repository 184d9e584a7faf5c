/**
 * Starting a reindex from the query side when the delta outgrows its bound: Step Functions on
 * AWS, the local stack's reindex route on one machine. Both are idempotent per name, so the many
 * query instances that see the same large delta start one execution between them.
 */
import { ExecutionAlreadyExists, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';

/** Why a reindex is asked for. */
export interface ReindexReason {
  /** Chunks in the delta when it was asked for. */
  readonly deltaChunks: number;
  /** The snapshot version the delta is over (null before the first one). */
  readonly version: string | null;
}

/** What came of asking: a new execution, or one that this name already started. */
export type ReindexTriggerOutcome = 'started' | 'already-started';

/** Starts the reindex workflow (see implementations). */
export interface ReindexTrigger {
  start(reason: ReindexReason, now: number): Promise<ReindexTriggerOutcome>;
}

/**
 * Execution name shared by every instance for one snapshot version and hour, so that the first
 * instance starts the execution and the others get `ExecutionAlreadyExists` (Step Functions keeps
 * names unique per state machine for 90 days); an hour later, if the delta is still over the
 * bound (the run failed), the next hour's name starts another.
 */
export function autoReindexName(reason: ReindexReason, now: number): string {
  const hour = new Date(now)
    .toISOString()
    .slice(0, 13)
    .replace(/[^0-9]/g, '');
  const version = (reason.version ?? 'none').replace(/[^A-Za-z0-9-_]/g, '').slice(0, 40);
  return `auto-${version}-${hour}`;
}

/** Starts an execution of the reindex state machine (needs `states:StartExecution` on it). */
export class StepFunctionsReindexTrigger implements ReindexTrigger {
  constructor(
    private readonly client: SFNClient,
    /** ARN of the reindex state machine. */
    private readonly stateMachineArn: string,
  ) {}

  async start(reason: ReindexReason, now: number): Promise<ReindexTriggerOutcome> {
    try {
      await this.client.send(
        new StartExecutionCommand({
          stateMachineArn: this.stateMachineArn,
          name: autoReindexName(reason, now),
          input: JSON.stringify({ trigger: 'delta', version: reason.version }),
        }),
      );
      return 'started';
    } catch (error) {
      // Another instance (or an earlier call) started this hour's run for this version already.
      if (error instanceof ExecutionAlreadyExists) return 'already-started';
      throw error;
    }
  }
}

/** The local stack's `POST /_local/reindex`, which joins a running reindex instead of starting a second. */
export class LocalReindexTrigger implements ReindexTrigger {
  constructor(
    /** URL of the local stack's reindex route. */
    private readonly url: string,
  ) {}

  async start(): Promise<ReindexTriggerOutcome> {
    const response = await fetch(this.url, { method: 'POST' });
    if (response.status !== 202) throw new Error(`the local reindex route answered ${response.status}`);
    return 'started';
  }
}

/** The trigger the environment configures, if any. */
export function reindexTriggerFromEnvironment(
  env: NodeJS.ProcessEnv = process.env,
): ReindexTrigger | undefined {
  if (env.BISEARCH_LOCAL_REINDEX_URL) return new LocalReindexTrigger(env.BISEARCH_LOCAL_REINDEX_URL);
  if (env.BISEARCH_REINDEX_STATE_MACHINE_ARN)
    return new StepFunctionsReindexTrigger(new SFNClient({}), env.BISEARCH_REINDEX_STATE_MACHINE_ARN);
  return undefined;
}
