/**
 * Reindex step Lambdas. One bundle, one export per state of the reindex state machine
 * (snapshot → build → validate → swap → prune, and the failure recorder its Catch clauses use).
 * Each takes and returns plain JSON; named errors drive the state machine's Retry and Catch.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { ReindexRequest, ReindexState } from '../adapters/services/reindex-steps.js';
import { METRICS_NAMESPACE, readEnvironment } from './environment.js';
import { createReindexSteps } from './reindex-setup.js';

const environment = readEnvironment();
const logger = new Logger({ serviceName: 'bisearch-reindex' });
const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: 'reindex' });
const { table, steps } = createReindexSteps(environment, (message, fields) => logger.info(message, fields));

/** Run one step with a log line and a duration metric; errors propagate with their names. */
function step<Input, Output>(
  name: string,
  run: (input: Input) => Promise<Output>,
): (input: Input) => Promise<Output> {
  return async (input) => {
    const started = performance.now();
    try {
      const output = await run(input);
      logger.info(`reindex ${name} done`, { output: output as Record<string, unknown> });
      return output;
    } catch (error) {
      logger.error(`reindex ${name} failed`, error as Error);
      throw error;
    } finally {
      metrics.addMetric(
        `Reindex${name[0]?.toUpperCase()}${name.slice(1)}Time`,
        MetricUnit.Milliseconds,
        performance.now() - started,
      );
      metrics.publishStoredMetrics();
    }
  };
}

export const snapshotHandler = step('snapshot', (input: ReindexRequest) => steps.snapshot(input));
export const buildHandler = step('build', (input: ReindexState) => steps.build(input));
/** A validated version's recall and ef, whichever compute validated it. */
function recordRecall(output: ReindexState): ReindexState {
  metrics.addMetric('ReindexRecall', MetricUnit.Count, output.recall ?? 0);
  if (output.expansionSearch)
    metrics.addMetric('ReindexExpansionSearch', MetricUnit.Count, output.expansionSearch);
  return output;
}
export const validateHandler = step('validate', async (input: ReindexState) =>
  recordRecall(await steps.validate(input)),
);
/** After the Fargate build task stopped: its outcome (see ReindexSteps.collectTaskResult). */
export const collectTaskHandler = step('collectTask', async (input: ReindexState) =>
  recordRecall(await steps.collectTaskResult(input)),
);
export const swapHandler = step('swap', (input: ReindexState) => steps.swap(input));
export const pruneHandler = step('prune', (input: ReindexState) => steps.prune(input));
/**
 * What the state machine's RecordFailure / RecordSuperseded states pass: the execution name from
 * the context object (the failed state's input may not hold one: Snapshot's is the trigger's
 * input), and that state's input with the caught error under `error`.
 */
export interface FailureInput {
  readonly executionName: string;
  readonly state?: Partial<Pick<ReindexState, 'version'>> & { error?: { Error?: string; Cause?: string } };
  readonly superseded?: boolean;
}

export const failureHandler = step('failure', (input: FailureInput) => {
  // A lost swap race is not a failure: its own metric, so the failure alarm stays meaningful.
  metrics.addMetric(input.superseded ? 'ReindexSuperseded' : 'ReindexFailed', MetricUnit.Count, 1);
  return steps.recordFailure({
    executionName: input.executionName,
    ...(input.state?.version ? { version: input.state.version } : {}),
    ...(input.state?.error ? { error: input.state.error } : {}),
    ...(input.superseded ? { superseded: true } : {}),
  });
});

/**
 * Scheduled (EventBridge, every few minutes): report `IndexAge` (seconds since the served
 * version was built) whether or not queries arrive. Reports nothing while no version was ever
 * swapped in; the alarm treats that silence as breaching.
 */
export const indexAgeHandler = async (): Promise<{ indexAgeSeconds: number | null }> => {
  const { current } = await table.readPointer();
  if (!current) {
    logger.warn('no index version has been swapped in yet');
    return { indexAgeSeconds: null };
  }
  const indexAgeSeconds = Math.max(0, (Date.now() - Date.parse(current.builtAt)) / 1000);
  metrics.addMetric('IndexAge', MetricUnit.Seconds, indexAgeSeconds);
  metrics.addMetadata('indexVersion', current.version);
  metrics.publishStoredMetrics();
  return { indexAgeSeconds };
};
