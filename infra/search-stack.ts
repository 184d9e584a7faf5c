import { CfnOutput, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { StackConfig } from './config.js';
import { SearchAlarms } from './constructs/alarms.js';
import { IngestPipeline } from './constructs/ingest.js';
import { RuntimeLayers } from './constructs/layers.js';
import { acknowledgeBucketNotificationsHandler } from './constructs/nag.js';
import { QueryApi } from './constructs/query-api.js';
import { ReindexWorkflow } from './constructs/reindex.js';
import { SearchStorage } from './constructs/storage.js';

export interface SearchStackProps extends StackProps {
  readonly config: StackConfig;
  /** Model directory shipped in the model layer (resolved by the app). */
  readonly modelDirectory: string;
  /** Default RETAIN; tests and throwaway stacks may DESTROY. */
  readonly removalPolicy?: RemovalPolicy;
}

/** The whole bisearch deployment: composition only, each concern lives in its construct. */
export class SearchStack extends Stack {
  readonly storage: SearchStorage;
  readonly ingest: IngestPipeline;
  readonly queryApi: QueryApi;
  readonly reindex: ReindexWorkflow;
  readonly alarms: SearchAlarms;

  constructor(scope: Construct, id: string, props: SearchStackProps) {
    super(scope, id, props);
    const { config } = props;
    const layers = new RuntimeLayers(this, 'Layers', {
      architecture: config.architecture,
      modelDirectory: props.modelDirectory,
      ...(config.rerankerDir ? { rerankerDirectory: config.rerankerDir } : {}),
    });
    this.storage = new SearchStorage(this, 'Storage', {
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    });
    this.ingest = new IngestPipeline(this, 'Ingest', {
      storage: this.storage,
      layers,
      memoryMb: config.encodeMemoryMb,
      maxConcurrency: config.encodeMaxConcurrency,
    });
    this.queryApi = new QueryApi(this, 'Query', { storage: this.storage, layers, config });
    this.reindex = new ReindexWorkflow(this, 'Reindex', { storage: this.storage, layers, config });
    // A delta past its bound starts a reindex from the query side (one per version and hour).
    if (config.deltaReindexChunks > 0) {
      this.queryApi.queryFunction.addEnvironment(
        'BISEARCH_REINDEX_STATE_MACHINE_ARN',
        this.reindex.stateMachine.stateMachineArn,
      );
      this.reindex.stateMachine.grantStartExecution(this.queryApi.queryFunction);
    }
    this.queryApi.queryFunction.addEnvironment(
      'BISEARCH_DELTA_REINDEX_CHUNKS',
      String(config.deltaReindexChunks),
    );
    this.alarms = new SearchAlarms(this, 'Alarms', {
      queryApi: this.queryApi,
      ingest: this.ingest,
      reindex: this.reindex,
      config,
    });
    acknowledgeBucketNotificationsHandler(this);
    new CfnOutput(this, 'DocumentsBucketName', { value: this.storage.documentsBucket.bucketName });
    new CfnOutput(this, 'IndexBucketName', { value: this.storage.indexBucket.bucketName });
    new CfnOutput(this, 'TableName', { value: this.storage.table.tableName });
    new CfnOutput(this, 'ReindexStateMachineArn', { value: this.reindex.stateMachine.stateMachineArn });
    new CfnOutput(this, 'AlarmTopicArn', { value: this.alarms.topic.topicArn });
  }
}
