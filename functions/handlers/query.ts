/**
 * Query Lambda (behind API Gateway HTTP API, alias with provisioned concurrency). Init loads the
 * model and, at the same time, the current snapshot (download, verify, memory-map) so that
 * provisioned instances answer their first request warm. Requests are routed by `query-routes.ts`.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2, Context } from 'aws-lambda';
import { handle } from 'hono/aws-lambda';
import { connectionFromEnvironment, dynamoDocumentClient, s3Client } from '../adapters/aws/aws-clients.js';
import { DocumentBucket } from '../adapters/aws/document-bucket.js';
import { IndexBucket } from '../adapters/aws/index-bucket.js';
import { reindexTriggerFromEnvironment } from '../adapters/aws/reindex-trigger.js';
import { SearchTable } from '../adapters/aws/search-table.js';
import { resolveModelDirectory } from '../adapters/model/model-resolution.js';
import { OnnxCrossEncoder } from '../adapters/model/onnx-cross-encoder.js';
import { OnnxEmbedder } from '../adapters/model/onnx-embedder.js';
import { SearchRuntime } from '../adapters/services/search-runtime.js';
import { METRICS_NAMESPACE, readEnvironment } from './environment.js';
import { createQueryApp } from './query-routes.js';

const environment = readEnvironment();
const logger = new Logger({ serviceName: 'bisearch-query' });
const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: 'query' });
const connection = connectionFromEnvironment();
const s3 = s3Client(connection);
const table = new SearchTable(dynamoDocumentClient(connection), environment.TABLE_NAME);
const threads = environment.BISEARCH_INTRA_OP_THREADS
  ? { intraOpThreads: environment.BISEARCH_INTRA_OP_THREADS }
  : {};
// Not awaited here: the models load while the runtime reads the pointer and fetches the snapshot.
const embedder = resolveModelDirectory().then((model) => OnnxEmbedder.load(model.directory, threads));
const reranker = environment.BISEARCH_RERANKER_DIR
  ? OnnxCrossEncoder.load(environment.BISEARCH_RERANKER_DIR, threads)
  : undefined;
// Past its bound the delta asks for a reindex (Step Functions on AWS, the local stack's route here).
const trigger = reindexTriggerFromEnvironment();
const runtime = await SearchRuntime.start({
  table,
  indexBucket: new IndexBucket(s3, environment.INDEX_BUCKET),
  embedder,
  ...(reranker ? { reranker } : {}),
  workDirectory: `${environment.BISEARCH_WORK_DIR}/indexes`,
  maxStalenessMs: environment.BISEARCH_MAX_STALENESS_MS,
  pointerCheckIntervalMs: environment.BISEARCH_POINTER_CHECK_MS,
  maxCatchUpWaitMs: environment.BISEARCH_MAX_CATCH_UP_WAIT_MS,
  initCatchUpWaitMs: environment.BISEARCH_INIT_CATCH_UP_WAIT_MS,
  ...(trigger && environment.BISEARCH_DELTA_REINDEX_CHUNKS > 0
    ? { autoReindex: { trigger, deltaChunks: environment.BISEARCH_DELTA_REINDEX_CHUNKS } }
    : {}),
  observer: {
    metric: (name, value, unit) => metrics.addMetric(name, MetricUnit[unit], value),
    warn: (message, attributes) => logger.warn(message, attributes ?? {}),
    info: (message, attributes) => logger.info(message, attributes ?? {}),
  },
});
metrics.publishStoredMetrics();

const app = createQueryApp({
  runtime,
  table,
  documents: new DocumentBucket(s3, environment.DOCUMENTS_BUCKET),
  onUnexpectedError: (error) => logger.error('request failed', error as Error),
  onSearch: (timings, results) => {
    metrics.addMetric('EmbedTime', MetricUnit.Milliseconds, timings.embed);
    metrics.addMetric('SearchTime', MetricUnit.Milliseconds, timings.search);
    metrics.addMetric('DenseTime', MetricUnit.Milliseconds, timings.dense);
    metrics.addMetric('LexicalTime', MetricUnit.Milliseconds, timings.lexical);
    metrics.addMetric('RerankTime', MetricUnit.Milliseconds, timings.rerank);
    metrics.addMetric('QueryTime', MetricUnit.Milliseconds, timings.total);
    metrics.addMetric('Results', MetricUnit.Count, results);
  },
});
const honoHandler = handle(app);

/** Emitted on every request so alarms can watch index age and freshness. */
function recordIndexMetrics(): void {
  const health = runtime.health();
  metrics.addMetric('DeltaSize', MetricUnit.Count, health.index.deltaSize);
  if (health.freshness.lagMs >= 0)
    metrics.addMetric('FreshnessLag', MetricUnit.Milliseconds, health.freshness.lagMs);
  if (health.index.builtAt) {
    metrics.addMetric('IndexAge', MetricUnit.Seconds, (Date.now() - Date.parse(health.index.builtAt)) / 1000);
  }
  if (health.index.version) metrics.addMetadata('indexVersion', health.index.version);
}

export const handler = async (
  event: APIGatewayProxyEventV2,
  context: Context,
): Promise<APIGatewayProxyResultV2> => {
  logger.addContext(context);
  try {
    // Path and status only: query text, document text and vectors are never logged.
    const response = (await honoHandler(event as never, context as never)) as APIGatewayProxyResultV2;
    recordIndexMetrics();
    logger.info('request', {
      route: event.routeKey,
      status: (response as { statusCode?: number }).statusCode,
    });
    return response;
  } finally {
    metrics.publishStoredMetrics();
  }
};
