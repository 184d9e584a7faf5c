import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { CreateTableCommand, DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, HeadBucketCommand } from '@aws-sdk/client-s3';
import { CreateQueueCommand, GetQueueAttributesCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import dynalite from 'dynalite';
import { startFauxqs } from 'fauxqs';
import S3rver from 's3rver';
import {
  type AwsConnection,
  dynamoDocumentClient,
  s3Client,
  sqsClient,
} from '../../functions/adapters/aws/aws-clients.js';
import {
  DOCUMENTS_PREFIX,
  INGEST_MAX_RECEIVE_COUNT,
  INGEST_VISIBILITY_TIMEOUT_SECONDS,
  type LocalResourceNames,
  localResourceNames,
  TABLE_KEYS,
} from '../resources.js';
import {
  atomicObjects,
  type EmulatorEventRecord,
  keyGuard,
  PerKeySequencers,
  toS3Notification,
} from './s3-fidelity.js';

export interface EmulatorOptions {
  /** Keep DynamoDB (LevelDB) and S3 (files) state here; in memory / a temporary folder when omitted. */
  readonly dataDirectory?: string;
  readonly names?: LocalResourceNames;
  /** Ingest-queue visibility timeout in seconds (default: the stack's, 6× the encode timeout). */
  readonly visibilityTimeoutSeconds?: number;
}

/** Running emulators with the stack's resources created in them. */
export interface LocalAws {
  readonly connection: AwsConnection;
  readonly names: LocalResourceNames;
  readonly ingestQueueUrl: string;
  readonly deadLetterQueueUrl: string;
  /** Environment variables that point the handlers (and the AWS SDK) at the emulators. */
  readonly environment: Record<string, string>;
  /** Sequencers of the documents bucket's notifications (per key, as S3 hands them out). */
  readonly sequencers: PerKeySequencers;
  stop(): Promise<void>;
}

const CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

/**
 * Start AWS-compatible emulators on loopback (dynalite for DynamoDB, s3rver for S3, fauxqs for
 * SQS), create the stack's table, buckets and queues, and forward S3 object events under `docs/`
 * of the documents bucket to the ingest queue exactly as S3 notifications would (same JSON).
 */
export async function startLocalAws(options: EmulatorOptions = {}): Promise<LocalAws> {
  const names = options.names ?? localResourceNames();
  const dynamo = dynalite({
    createTableMs: 0,
    deleteTableMs: 0,
    updateTableMs: 0,
    ...(options.dataDirectory ? { path: join(options.dataDirectory, 'dynamodb') } : {}),
  });
  await new Promise<void>((resolve) => dynamo.listen(0, '127.0.0.1', () => resolve()));
  const s3Directory = options.dataDirectory
    ? join(options.dataDirectory, 's3')
    : join(process.env.TMPDIR ?? '/tmp', `bisearch-s3-${process.pid}-${Date.now()}`);
  mkdirSync(s3Directory, { recursive: true });
  const s3rver = new S3rver({
    port: 0,
    address: '127.0.0.1',
    silent: true,
    directory: s3Directory,
    allowMismatchedSignatures: true,
  });
  // Before s3rver's own routes (Koa composes its middleware list when the server starts).
  (s3rver as unknown as { middleware: unknown[] }).middleware.unshift(keyGuard());
  atomicObjects((s3rver as unknown as { store: Parameters<typeof atomicObjects>[0] }).store);
  s3rver.on('error', () => {
    // A request s3rver could not serve was answered with an error; never a reason to exit.
  });
  const s3Address = (await s3rver.run()) as AddressInfo;
  const sequencers = new PerKeySequencers();
  const fauxqs = await startFauxqs({ port: 0, logger: false });

  const connection: AwsConnection = {
    region: 'us-east-1',
    credentials: CREDENTIALS,
    endpoints: {
      dynamodb: `http://127.0.0.1:${(dynamo.address() as AddressInfo).port}`,
      s3: `http://127.0.0.1:${s3Address.port}`,
      sqs: `http://127.0.0.1:${fauxqs.port}`,
    },
  };
  const stop = async () => {
    await fauxqs.stop();
    await s3rver.close();
    await new Promise<void>((resolve) => dynamo.close(() => resolve()));
  };
  try {
    await createTable(connection, names.tableName);
    const s3 = s3Client(connection);
    for (const bucket of [names.documentsBucket, names.indexBucket]) {
      const exists = await s3.send(new HeadBucketCommand({ Bucket: bucket })).then(
        () => true,
        () => false,
      );
      if (!exists) await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    }
    const sqs = sqsClient(connection);
    const deadLetterQueueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: names.deadLetterQueue })))
      .QueueUrl as string;
    const deadLetterArn = (
      await sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: deadLetterQueueUrl, AttributeNames: ['QueueArn'] }),
      )
    ).Attributes?.QueueArn as string;
    const ingestQueueUrl = (
      await sqs.send(
        new CreateQueueCommand({
          QueueName: names.ingestQueue,
          Attributes: {
            VisibilityTimeout: String(options.visibilityTimeoutSeconds ?? INGEST_VISIBILITY_TIMEOUT_SECONDS),
            RedrivePolicy: JSON.stringify({
              deadLetterTargetArn: deadLetterArn,
              maxReceiveCount: INGEST_MAX_RECEIVE_COUNT,
            }),
          },
        }),
      )
    ).QueueUrl as string;

    // S3 → SQS notification, as configured on the stack's documents bucket, in S3's format.
    s3rver.on('event', (event: { Records: EmulatorEventRecord[] }) => {
      const raw = event.Records[0];
      if (!raw || raw.s3.bucket.name !== names.documentsBucket) return;
      const { key, record } = toS3Notification(raw, sequencers);
      if (!key.startsWith(DOCUMENTS_PREFIX)) return;
      sqs
        .send(
          new SendMessageCommand({
            QueueUrl: ingestQueueUrl,
            MessageBody: JSON.stringify({ ...event, Records: [record] }),
          }),
        )
        .catch((error: Error) => {
          process.stderr.write(
            `${JSON.stringify({ level: 'ERROR', message: 'local S3 notification to SQS failed', error: error.message })}\n`,
          );
        });
    });

    const environment: Record<string, string> = {
      TABLE_NAME: names.tableName,
      DOCUMENTS_BUCKET: names.documentsBucket,
      INDEX_BUCKET: names.indexBucket,
      INGEST_QUEUE_URL: ingestQueueUrl,
      BISEARCH_DYNAMODB_ENDPOINT: connection.endpoints?.dynamodb as string,
      BISEARCH_S3_ENDPOINT: connection.endpoints?.s3 as string,
      BISEARCH_SQS_ENDPOINT: connection.endpoints?.sqs as string,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
    };
    return { connection, names, ingestQueueUrl, deadLetterQueueUrl, environment, sequencers, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Create the stack's table (its key schema, on demand) unless it exists. */
export async function createTable(connection: AwsConnection, tableName: string): Promise<void> {
  // The document client sends any DynamoDB command; only its item marshalling is extra.
  const client = dynamoDocumentClient(connection);
  const exists = await client.send(new DescribeTableCommand({ TableName: tableName })).then(
    () => true,
    () => false,
  );
  if (exists) return;
  await client.send(
    new CreateTableCommand({
      TableName: tableName,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: TABLE_KEYS.partitionKey, AttributeType: 'S' },
        { AttributeName: TABLE_KEYS.sortKey, AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: TABLE_KEYS.partitionKey, KeyType: 'HASH' },
        { AttributeName: TABLE_KEYS.sortKey, KeyType: 'RANGE' },
      ],
    }),
  );
}
