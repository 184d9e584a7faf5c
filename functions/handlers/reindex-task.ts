/**
 * The reindex's Fargate build task: the container's entry point. The state machine starts it with
 * `ecs:runTask.sync` when Snapshot chose `buildCompute: 'fargate'` (a version that would not fit a
 * Lambda with 2× margin), passing the state as `BISEARCH_TASK_INPUT` (JSON, a container
 * environment override). It runs Build then Validate (ReindexSteps.runTask, the Lambdas' code),
 * writes the outcome for CollectTaskResult, and exits 0 once that is written (a step's error
 * included: CollectTaskResult re-raises it under its name), non-zero when even that failed.
 */
import { pathToFileURL } from 'node:url';
import { Logger } from '@aws-lambda-powertools/logger';
import type { ReindexState } from '../adapters/services/reindex-steps.js';
import { readEnvironment } from './environment.js';
import { createReindexSteps } from './reindex-setup.js';

/** Run the task with `env` (the container's environment); resolves with the exit code. */
export async function runReindexTask(env: Record<string, string | undefined>): Promise<number> {
  const logger = new Logger({ serviceName: 'bisearch-reindex-task' });
  try {
    const input = JSON.parse(env.BISEARCH_TASK_INPUT ?? '') as ReindexState;
    if (typeof input?.executionName !== 'string') throw new Error('BISEARCH_TASK_INPUT has no executionName');
    const { steps } = createReindexSteps(readEnvironment(env), (message, fields) =>
      logger.info(message, fields),
    );
    const result = await steps.runTask(input);
    if (result.ok)
      logger.info('reindex task done', { output: result.state as unknown as Record<string, unknown> });
    else logger.error('reindex task failed', { error: result.error });
    return 0;
  } catch (error) {
    logger.error('reindex task could not run or report', error as Error);
    return 1;
  }
}

// The container runs this file (`node index.mjs`); importing it (tests, the local stack) does not.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await runReindexTask(process.env);
}
