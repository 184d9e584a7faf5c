/**
 * The resources of a bisearch stack that both the CDK stack and the one-machine runtime create.
 * One definition, so the local emulators hold exactly what AWS would.
 */
export const TABLE_KEYS = { partitionKey: 'pk', sortKey: 'sk', timeToLiveAttribute: 'expiresAt' } as const;

/** Uploads under this prefix are ingested (S3 notification filter); defined with the bucket adapter. */
export { DOCUMENTS_PREFIX } from '../functions/adapters/aws/document-bucket.js';

/** Receives before a message goes to the dead-letter queue. */
export const INGEST_MAX_RECEIVE_COUNT = 5;

/** Encode Lambda timeout, seconds; the ingest queue's visibility timeout is 6× this (AWS guidance). */
export { ENCODE_TIMEOUT_SECONDS } from '../functions/handlers/environment.js';

import { ENCODE_TIMEOUT_SECONDS } from '../functions/handlers/environment.js';
export const INGEST_VISIBILITY_TIMEOUT_SECONDS = ENCODE_TIMEOUT_SECONDS * 6;

/** Messages per encode invocation and how long the event source waits to fill a batch. */
export const ENCODE_BATCH_SIZE = 10;
export const ENCODE_BATCHING_WINDOW_SECONDS = 2;

/** Names of the local resources (on AWS, CloudFormation names them). */
export function localResourceNames(prefix = 'bisearch') {
  return {
    tableName: `${prefix}-table`,
    documentsBucket: `${prefix}-documents`,
    indexBucket: `${prefix}-indexes`,
    ingestQueue: `${prefix}-ingest`,
    deadLetterQueue: `${prefix}-ingest-dlq`,
  } as const;
}

export type LocalResourceNames = ReturnType<typeof localResourceNames>;
