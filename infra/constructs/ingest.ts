import { Duration, Validations } from 'aws-cdk-lib';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { EventType } from 'aws-cdk-lib/aws-s3';
import { SqsDestination } from 'aws-cdk-lib/aws-s3-notifications';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import {
  DOCUMENTS_PREFIX,
  ENCODE_BATCH_SIZE,
  ENCODE_BATCHING_WINDOW_SECONDS,
  ENCODE_TIMEOUT_SECONDS,
  INGEST_MAX_RECEIVE_COUNT,
  INGEST_VISIBILITY_TIMEOUT_SECONDS,
} from '../resources.js';
import { bisearchFunction } from './bisearch-function.js';
import type { RuntimeLayers } from './layers.js';
import { acknowledgeBucketGrants } from './nag.js';
import type { SearchStorage } from './storage.js';

export interface IngestPipelineProps {
  readonly storage: SearchStorage;
  readonly layers: RuntimeLayers;
  /** Encode Lambda memory (MB). */
  readonly memoryMb: number;
  /**
   * Most encode invocations the queue's event source runs at once (Lambda's SQS maximum
   * concurrency, 2–1,000). Bounds the load on the change-log counter and on DynamoDB.
   */
  readonly maxConcurrency: number;
}

/**
 * S3 `ObjectCreated`/`ObjectRemoved` under `docs/` → SQS ingest queue (dead-letter queue after 5
 * receives) → encode Lambda (batches, batching window, partial batch failures). The queue's
 * visibility timeout is 6× the encode timeout, so a slow batch is never delivered twice at once.
 */
export class IngestPipeline extends Construct {
  readonly queue: Queue;
  readonly deadLetterQueue: Queue;
  readonly encodeFunction: NodejsFunction;

  constructor(scope: Construct, id: string, props: IngestPipelineProps) {
    super(scope, id);
    const { storage } = props;
    this.deadLetterQueue = new Queue(this, 'DeadLetters', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(this.deadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason: 'This is the dead-letter queue; messages that land here are inspected and redriven by hand.',
    });
    this.queue = new Queue(this, 'Queue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: Duration.seconds(INGEST_VISIBILITY_TIMEOUT_SECONDS),
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: INGEST_MAX_RECEIVE_COUNT },
    });
    const destination = new SqsDestination(this.queue);
    for (const event of [EventType.OBJECT_CREATED, EventType.OBJECT_REMOVED]) {
      storage.documentsBucket.addEventNotification(event, destination, { prefix: DOCUMENTS_PREFIX });
    }

    this.encodeFunction = bisearchFunction(this, 'Encode', {
      handlerFile: 'encode',
      description: 'bisearch: parse, chunk and embed uploaded documents',
      memoryMb: props.memoryMb,
      timeout: Duration.seconds(ENCODE_TIMEOUT_SECONDS),
      layers: props.layers,
      // A large object's processing continues in a message the function sends to its own queue.
      environment: { ...storage.functionEnvironment(), INGEST_QUEUE_URL: this.queue.queueUrl },
    });
    this.queue.grantSendMessages(this.encodeFunction);
    storage.table.grantReadWriteData(this.encodeFunction);
    storage.documentsBucket.grantRead(this.encodeFunction);
    acknowledgeBucketGrants(this.encodeFunction, storage.documentsBucket, [
      's3:GetObject*',
      's3:GetBucket*',
      's3:List*',
    ]);
    this.encodeFunction.addEventSource(
      new SqsEventSource(this.queue, {
        batchSize: ENCODE_BATCH_SIZE,
        maxBatchingWindow: Duration.seconds(ENCODE_BATCHING_WINDOW_SECONDS),
        reportBatchItemFailures: true,
        maxConcurrency: props.maxConcurrency,
      }),
    );
  }
}
