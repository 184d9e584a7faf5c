import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { dynamoDocumentClient, s3Client, sqsClient } from '../../functions/adapters/aws/aws-clients.js';
import { SearchTable } from '../../functions/adapters/aws/search-table.js';
import { apiGatewayEvent, localLambdaContext } from '../../infra/local/api-gateway-event.js';
import { type LocalAws, startLocalAws } from '../../infra/local/emulators.js';
import { SqsPoller } from '../../infra/local/sqs-poller.js';
import { USE_LITE_DIR } from './shared-fixtures.js';

/** A parsed JSON response body; tests assert on it structurally. */
// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked by assertions, not types
type JsonBody = any;

/** Emulators plus the real encode and query handler modules, wired as on AWS. */
export interface HandlerStack {
  readonly aws: LocalAws;
  readonly table: SearchTable;
  readonly poller: SqsPoller;
  readonly workDirectory: string;
  upload(key: string, body: string | Uint8Array): Promise<void>;
  remove(key: string): Promise<void>;
  /** Run the ingest poller until the queue stays empty for one long poll. */
  drainIngest(): Promise<void>;
  http(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<{ status: number; body: JsonBody }>;
  encode(event: SQSEvent): Promise<SQSBatchResponse>;
  stop(): Promise<void>;
}

/**
 * Start emulators, point the environment at them and import the handlers (they read it at init,
 * as on Lambda). Call once per test file: each file runs in its own process.
 */
export async function startHandlerStack(
  extraEnvironment: Record<string, string> = {},
): Promise<HandlerStack> {
  const workDirectory = mkdtempSync(join(tmpdir(), 'bisearch-stack-'));
  const aws = await startLocalAws({ visibilityTimeoutSeconds: 1 });
  Object.assign(process.env, aws.environment, {
    BISEARCH_MODEL_DIR: USE_LITE_DIR,
    BISEARCH_WORK_DIR: workDirectory,
    BISEARCH_MAX_STALENESS_MS: '0',
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    POWERTOOLS_METRICS_DISABLED: 'true',
    ...extraEnvironment,
  });
  const encodeModule = await import('../../functions/handlers/encode.js');
  const queryModule = await import('../../functions/handlers/query.js');
  const encode = (event: SQSEvent) => encodeModule.handler(event, localLambdaContext('encode') as never);
  const poller = new SqsPoller({
    sqs: sqsClient(aws.connection),
    queueUrl: aws.ingestQueueUrl,
    handler: encode,
    waitSeconds: 1,
  });
  const s3 = s3Client(aws.connection);
  return {
    aws,
    table: new SearchTable(dynamoDocumentClient(aws.connection), aws.names.tableName),
    poller,
    workDirectory,
    encode,
    upload: async (key, body) => {
      await s3.send(new PutObjectCommand({ Bucket: aws.names.documentsBucket, Key: key, Body: body }));
    },
    remove: async (key) => {
      await s3.send(new DeleteObjectCommand({ Bucket: aws.names.documentsBucket, Key: key }));
    },
    drainIngest: async () => {
      const deadline = Date.now() + 60_000;
      let idle = 0;
      while (idle < 2) {
        if (Date.now() > deadline) throw new Error('ingest queue did not drain within 60 s');
        const { received } = await poller.pollOnce(1);
        idle = received === 0 ? idle + 1 : 0;
      }
    },
    http: async (method, path, body, headers = {}) => {
      // As API Gateway HTTP APIs do: the path reaches Lambda URL-decoded.
      const [pathOnly = '', query] = path.split('?', 2);
      const event: APIGatewayProxyEventV2 = apiGatewayEvent({
        method,
        path: decodeURIComponent(pathOnly),
        ...(query !== undefined ? { query } : {}),
        ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
        headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      });
      const response = (await queryModule.handler(event, localLambdaContext('query') as never)) as Exclude<
        APIGatewayProxyResultV2,
        string
      >;
      return {
        status: response.statusCode ?? 200,
        body: response.body ? JSON.parse(response.body) : undefined,
      };
    },
    stop: async () => {
      await aws.stop();
      rmSync(workDirectory, { recursive: true, force: true });
    },
  };
}
