/**
 * The reindex steps as the deployment configures them, from the validated environment: shared by
 * the step Lambdas (reindex.ts) and the Fargate build task (reindex-task.ts), so both run the
 * same code with the same settings.
 */
import { connectionFromEnvironment, dynamoDocumentClient, s3Client } from '../adapters/aws/aws-clients.js';
import { IndexBucket } from '../adapters/aws/index-bucket.js';
import { SearchTable } from '../adapters/aws/search-table.js';
import { ReindexSteps } from '../adapters/services/reindex-steps.js';
import type { HandlerEnvironment } from './environment.js';

/** The table, the index bucket and the steps over them. */
export function createReindexSteps(
  environment: HandlerEnvironment,
  log: (message: string, fields: Record<string, unknown>) => void,
): { table: SearchTable; steps: ReindexSteps } {
  const connection = connectionFromEnvironment();
  const table = new SearchTable(dynamoDocumentClient(connection), environment.TABLE_NAME);
  const steps = new ReindexSteps({
    table,
    indexBucket: new IndexBucket(s3Client(connection), environment.INDEX_BUCKET),
    workDirectory: `${environment.BISEARCH_WORK_DIR}/reindex`,
    keepVersions: environment.BISEARCH_KEEP_VERSIONS,
    maxRemovedFraction: environment.BISEARCH_MAX_REMOVED_FRACTION,
    incremental:
      environment.BISEARCH_INCREMENTAL_MAX_CHANGED_FRACTION > 0
        ? { maxChangedFraction: environment.BISEARCH_INCREMENTAL_MAX_CHANGED_FRACTION }
        : false,
    minRecall: environment.BISEARCH_MIN_RECALL,
    log,
    recallTarget:
      environment.BISEARCH_RECALL_TARGET > 0
        ? {
            target: environment.BISEARCH_RECALL_TARGET,
            maxExpansionSearch: environment.BISEARCH_MAX_EXPANSION_SEARCH,
            maxConnectivity: environment.BISEARCH_MAX_CONNECTIVITY,
            queries: environment.BISEARCH_RECALL_QUERIES,
          }
        : false,
    recallSamples: environment.BISEARCH_RECALL_QUERIES,
    ...(environment.BISEARCH_BUILD_TMP_MB
      ? {
          buildCompute: {
            lambdaTmpMb: environment.BISEARCH_BUILD_TMP_MB,
            lambdaMaxChunks: environment.BISEARCH_LAMBDA_BUILD_MAX_CHUNKS,
            fargateAvailable: environment.BISEARCH_FARGATE_BUILD,
          },
        }
      : {}),
  });
  return { table, steps };
}
