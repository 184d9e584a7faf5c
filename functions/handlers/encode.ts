/**
 * Encode Lambda: SQS batches of S3 object events → parse, chunk, embed, write chunks, status and
 * change-log entries. Reports partial batch failures: only records that hit a transient error are
 * retried (and dead-lettered after the queue's max receives); bad documents become `failed`.
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { connectionFromEnvironment, dynamoDocumentClient, s3Client } from '../adapters/aws/aws-clients.js';
import { DocumentBucket } from '../adapters/aws/document-bucket.js';
import { SearchTable } from '../adapters/aws/search-table.js';
import { resolveModelDirectory } from '../adapters/model/model-resolution.js';
import { OnnxEmbedder } from '../adapters/model/onnx-embedder.js';
import { IngestService, parseS3EventMessage } from '../adapters/services/ingest-service.js';
import { ENCODE_TIMEOUT_SECONDS, METRICS_NAMESPACE, readEnvironment } from './environment.js';

const environment = readEnvironment();
const logger = new Logger({ serviceName: 'bisearch-encode' });
const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: 'encode' });
const connection = connectionFromEnvironment();
const table = new SearchTable(dynamoDocumentClient(connection), environment.TABLE_NAME);
const documents = new DocumentBucket(s3Client(connection), environment.DOCUMENTS_BUCKET);
const model = await resolveModelDirectory();
const embedder = await OnnxEmbedder.load(model.directory, {
  ...(environment.BISEARCH_INTRA_OP_THREADS ? { intraOpThreads: environment.BISEARCH_INTRA_OP_THREADS } : {}),
});
// Refuse to mix embedding spaces: a changed model must come with a new table or a full rebuild.
await table.ensureEmbeddingSpace(embedder.space);
const ingest = new IngestService(table, documents, embedder, {
  logger,
  // A live encoder never loses its lease on an object: the lease outlasts the function timeout.
  leaseMs: ENCODE_TIMEOUT_SECONDS * 1000 + 30_000,
});
const processor = new BatchProcessor(EventType.SQS);

async function processRecord(record: SQSRecord): Promise<void> {
  for (const event of parseS3EventMessage(record.body)) {
    const started = performance.now();
    const outcomes = await ingest.process(event);
    for (const outcome of outcomes) {
      metrics.addMetric(
        `Documents${outcome.outcome[0]?.toUpperCase()}${outcome.outcome.slice(1)}`,
        MetricUnit.Count,
        1,
      );
      if (outcome.embedded) metrics.addMetric('ChunksEmbedded', MetricUnit.Count, outcome.embedded);
    }
    metrics.addMetric('EncodeTime', MetricUnit.Milliseconds, performance.now() - started);
    // Ids and outcomes only: document text never reaches the logs.
    logger.info('object processed', {
      key: event.key,
      kind: event.kind,
      outcomes: outcomes.map(({ docId, outcome }) => ({ docId, outcome })),
    });
  }
}

export const handler = async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
  logger.addContext(context);
  try {
    const response = await processPartialResponse(event, processRecord, processor, {
      context,
      throwOnFullBatchFailure: false,
    });
    // A record that failed is a batch item failure, not a Lambda error: without this metric no
    // alarm would see encode failures until they reached the dead-letter queue.
    metrics.addMetric('RecordsFailed', MetricUnit.Count, response.batchItemFailures.length);
    return response;
  } finally {
    metrics.publishStoredMetrics();
  }
};
