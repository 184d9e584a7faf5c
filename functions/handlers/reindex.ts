/**
 * Reindex step Lambdas. One bundle, one export per state of the reindex state machine
 * (snapshot → build → validate → swap → prune, and the failure recorder its Catch clauses use).
 * Each takes and returns plain JSON; named errors drive the state machine's Retry and Catch.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { connectionFromEnvironment, dynamoDocumentClient, s3Client } from '../adapters/aws-clients.js';
import { IndexBucket } from '../adapters/index-bucket.js';
import { type ReindexState, ReindexSteps } from '../adapters/reindex-steps.js';
import { SearchTable } from '../adapters/search-table.js';
import { METRICS_NAMESPACE, readEnvironment } from './environment.js';

const environment = readEnvironment();
const logger = new Logger({ serviceName: 'bisearch-reindex' });
const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: 'reindex' });
const connection = connectionFromEnvironment();
const steps = new ReindexSteps({
  table: new SearchTable(dynamoDocumentClient(connection), environment.TABLE_NAME),
  indexBucket: new IndexBucket(s3Client(connection), environment.INDEX_BUCKET),
  workDirectory: `${environment.BISEARCH_WORK_DIR}/reindex`,
  keepVersions: environment.BISEARCH_KEEP_VERSIONS,
  minRecall: environment.BISEARCH_MIN_RECALL,
});

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

export const snapshotHandler = step('snapshot', (input: Pick<ReindexState, 'executionName'>) =>
  steps.snapshot(input),
);
export const buildHandler = step('build', (input: ReindexState) => steps.build(input));
export const validateHandler = step('validate', async (input: ReindexState) => {
  const output = await steps.validate(input);
  metrics.addMetric('ReindexRecall', MetricUnit.Count, output.recall ?? 0);
  return output;
});
export const swapHandler = step('swap', (input: ReindexState) => steps.swap(input));
export const pruneHandler = step('prune', (input: ReindexState) => steps.prune(input));
export const failureHandler = step('failure', (input: Parameters<ReindexSteps['recordFailure']>[0]) => {
  metrics.addMetric('ReindexFailed', MetricUnit.Count, 1);
  return steps.recordFailure(input);
});
