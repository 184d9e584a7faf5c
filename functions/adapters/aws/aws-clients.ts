import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/**
 * Where the AWS SDK clients point. On AWS everything comes from the Lambda environment; on one
 * machine `endpoints` target the emulators (DynamoDB, S3 and SQS may each run on their own port).
 */
export interface AwsConnection {
  readonly region?: string;
  readonly endpoints?: { readonly dynamodb?: string; readonly s3?: string; readonly sqs?: string };
  /** Static credentials for emulators; on AWS leave undefined (the role's credentials are used). */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
  /**
   * Modelled network latency added to every call, ms (emulators answer in well under 1 ms on
   * loopback; AWS takes a few): a loop of sequential calls then shows its real cost. Local only.
   */
  readonly latencyMs?: number;
}

/** Reads `BISEARCH_DYNAMODB_ENDPOINT`, `BISEARCH_S3_ENDPOINT`, `BISEARCH_SQS_ENDPOINT` (local runs only). */
export function connectionFromEnvironment(
  env: Record<string, string | undefined> = process.env,
): AwsConnection {
  const endpoints = {
    ...(env.BISEARCH_DYNAMODB_ENDPOINT ? { dynamodb: env.BISEARCH_DYNAMODB_ENDPOINT } : {}),
    ...(env.BISEARCH_S3_ENDPOINT ? { s3: env.BISEARCH_S3_ENDPOINT } : {}),
    ...(env.BISEARCH_SQS_ENDPOINT ? { sqs: env.BISEARCH_SQS_ENDPOINT } : {}),
  };
  const local = Object.keys(endpoints).length > 0;
  const latencyMs = Number(env.BISEARCH_SIMULATED_LATENCY_MS ?? 0);
  return {
    region: env.AWS_REGION ?? (local ? 'us-east-1' : undefined),
    endpoints,
    ...(local && latencyMs > 0 ? { latencyMs } : {}),
    // Emulators accept any key. Take the given environment's, not the process's, so a caller can
    // target a stack described by another environment (the CLI reads the local stack's).
    ...(local
      ? {
          credentials: {
            accessKeyId: env.AWS_ACCESS_KEY_ID ?? 'local',
            secretAccessKey: env.AWS_SECRET_ACCESS_KEY ?? 'local',
          },
        }
      : {}),
  } as AwsConnection;
}

function common(connection: AwsConnection, endpoint: string | undefined) {
  return {
    ...(connection.region ? { region: connection.region } : {}),
    ...(endpoint ? { endpoint } : {}),
    ...(connection.credentials ? { credentials: connection.credentials } : {}),
    // Bounded retries with the SDK's backoff; handlers decide what to do after that.
    maxAttempts: 4,
  };
}

/** Delay every call of a client by the connection's modelled latency (before it is sent). */
function withLatency<T extends { middlewareStack: { add: (...args: never[]) => void } }>(
  client: T,
  connection: AwsConnection,
): T {
  const latencyMs = connection.latencyMs ?? 0;
  if (latencyMs > 0) {
    (client.middlewareStack.add as (middleware: unknown, options: unknown) => void)(
      (next: (args: unknown) => Promise<unknown>) => async (args: unknown) => {
        await new Promise((resolve) => setTimeout(resolve, latencyMs));
        return next(args);
      },
      { step: 'finalizeRequest', name: 'bisearchSimulatedLatency' },
    );
  }
  return client;
}

/** DynamoDB document client (plain JS values; `undefined` attributes dropped). */
export function dynamoDocumentClient(connection: AwsConnection): DynamoDBDocumentClient {
  return withLatency(
    DynamoDBDocumentClient.from(new DynamoDBClient(common(connection, connection.endpoints?.dynamodb)), {
      marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
    }),
    connection,
  );
}

export function s3Client(connection: AwsConnection): S3Client {
  // Emulators serve buckets by path, not by virtual host.
  return withLatency(
    new S3Client({
      ...common(connection, connection.endpoints?.s3),
      forcePathStyle: Boolean(connection.endpoints?.s3),
    }),
    connection,
  );
}

export function sqsClient(connection: AwsConnection): SQSClient {
  return withLatency(new SQSClient(common(connection, connection.endpoints?.sqs)), connection);
}
