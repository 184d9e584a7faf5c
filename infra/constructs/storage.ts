import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import { AttributeType, BillingMode, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { TABLE_KEYS } from '../resources.js';

export interface SearchStorageProps {
  /** What happens to data when the stack is deleted. Default RETAIN (documents and indexes are data). */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * Where bisearch keeps state: the documents bucket (uploads under `docs/`), the index bucket
 * (`indexes/<version>/`, `exports/<run>/`), both private, TLS-only, encrypted, access-logged;
 * and one DynamoDB table (chunks, document status, change log, index pointer) with
 * point-in-time recovery, encryption and TTL on the change log.
 */
export class SearchStorage extends Construct {
  readonly documentsBucket: Bucket;
  readonly indexBucket: Bucket;
  readonly table: Table;

  constructor(scope: Construct, id: string, props: SearchStorageProps = {}) {
    super(scope, id);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const secure = {
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      removalPolicy,
    } as const;
    const accessLogs = new Bucket(this, 'AccessLogs', {
      ...secure,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_PREFERRED,
      lifecycleRules: [{ expiration: Duration.days(90) }],
    });
    Validations.of(accessLogs).acknowledge({
      id: 'AwsSolutions-S1',
      reason: 'This is the access-log bucket; logging it into itself would loop.',
    });
    this.documentsBucket = new Bucket(this, 'Documents', {
      ...secure,
      versioned: true,
      serverAccessLogsBucket: accessLogs,
      serverAccessLogsPrefix: 'documents/',
      lifecycleRules: [
        { abortIncompleteMultipartUploadAfter: Duration.days(1) },
        { noncurrentVersionExpiration: Duration.days(30) },
      ],
    });
    this.indexBucket = new Bucket(this, 'Indexes', {
      ...secure,
      serverAccessLogsBucket: accessLogs,
      serverAccessLogsPrefix: 'indexes/',
      lifecycleRules: [
        { abortIncompleteMultipartUploadAfter: Duration.days(1) },
        // No expiration under indexes/: a lifecycle rule cannot know which version the pointer
        // names, and the serving version may be months old. The Prune step deletes unused versions
        // (and RecordFailure those of failed runs); exports are scratch and may expire.
        { prefix: 'exports/', expiration: Duration.days(7) },
      ],
    });
    this.table = new Table(this, 'Table', {
      partitionKey: { name: TABLE_KEYS.partitionKey, type: AttributeType.STRING },
      sortKey: { name: TABLE_KEYS.sortKey, type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      encryption: TableEncryption.AWS_MANAGED,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      timeToLiveAttribute: TABLE_KEYS.timeToLiveAttribute,
      removalPolicy,
    });
  }

  /** The variables every bisearch function reads to find this storage. */
  functionEnvironment(): Record<string, string> {
    return {
      TABLE_NAME: this.table.tableName,
      DOCUMENTS_BUCKET: this.documentsBucket.bucketName,
      INDEX_BUCKET: this.indexBucket.bucketName,
    };
  }
}
