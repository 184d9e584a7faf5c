/**
 * Encode Lambda: SQS batches of S3 object events → parse, chunk, embed, write chunks, status and
 * change-log entries. Reports partial batch failures: only records that hit a transient error are
 * retried (and dead-lettered after the queue's max receives); bad documents become `failed`.
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import {
  connectionFromEnvironment,
  dynamoDocumentClient,
  s3Client,
  sqsClient,
} from '../adapters/aws/aws-clients.js';
import { DocumentBucket } from '../adapters/aws/document-bucket.js';
import { SearchTable } from '../adapters/aws/search-table.js';
import { resolveModelDirectory } from '../adapters/model/model-resolution.js';
import { OnnxEmbedder } from '../adapters/model/onnx-embedder.js';
import {
  ContinuationNeededError,
  IngestService,
  parseS3EventMessage,
} from '../adapters/services/ingest-service.js';
import {
  ENCODE_CONTINUATION_ATTRIBUTE,
  ENCODE_MAX_CONTINUATIONS,
  ENCODE_TIMEOUT_SECONDS,
  METRICS_NAMESPACE,
  readEnvironment,
} from './environment.js';

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
const sqs = sqsClient(connection);
/**
 * Kept free at the end of an invocation, ms: for the partial-batch response, metrics, and a
 * record that must be re-enqueued. A record does not start with less than this left.
 */
const INVOCATION_RESERVE_MS = 10_000;
let invocation: Context | undefined;

/**
 * Continue a record in a new invocation: the same message body again (an event means "bring this
 * key in line with S3", so processing it again is safe), counted so a record that never finishes
 * stops being re-enqueued (it then fails and the queue's redrive reaches the dead-letter queue).
 */
async function continueLater(record: SQSRecord, reason: string): Promise<void> {
  const continuations = Number(record.messageAttributes?.[ENCODE_CONTINUATION_ATTRIBUTE]?.stringValue ?? 0);
  if (!environment.INGEST_QUEUE_URL || continuations >= ENCODE_MAX_CONTINUATIONS)
    throw new Error(`${reason}; not continued after ${continuations} continuations`);
  await sqs.send(
    new SendMessageCommand({
      QueueUrl: environment.INGEST_QUEUE_URL,
      MessageBody: record.body,
      MessageAttributes: {
        [ENCODE_CONTINUATION_ATTRIBUTE]: { DataType: 'Number', StringValue: String(continuations + 1) },
      },
    }),
  );
  metrics.addMetric('RecordsContinued', MetricUnit.Count, 1);
  logger.info('record continues in a new invocation', { reason, continuations: continuations + 1 });
}

async function processRecord(record: SQSRecord): Promise<void> {
  const remainingMs = invocation?.getRemainingTimeInMillis() ?? ENCODE_TIMEOUT_SECONDS * 1000;
  if (remainingMs < 2 * INVOCATION_RESERVE_MS) {
    // Too little left to start: earlier records of the batch took the time.
    await continueLater(record, 'not started: the batch used the invocation');
    return;
  }
  const deadline = Date.now() + remainingMs - INVOCATION_RESERVE_MS;
  for (const event of parseS3EventMessage(record.body)) {
    const started = performance.now();
    let outcomes: Awaited<ReturnType<IngestService['process']>>;
    try {
      outcomes = await ingest.process(event, { deadline });
    } catch (error) {
      if (!(error instanceof ContinuationNeededError)) throw error;
      // Events of this record already processed are skipped next time (their source record says so).
      await continueLater(record, error.message);
      return;
    }
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
  invocation = context;
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
