import { Duration, Stack } from 'aws-cdk-lib';
import {
  Alarm,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  type IMetric,
  MathExpression,
  Metric,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { Effect, PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { METRICS_NAMESPACE } from '../../functions/handlers/environment.js';
import type { StackConfig } from '../config.js';
import type { IngestPipeline } from './ingest.js';
import type { QueryApi } from './query-api.js';
import type { ReindexWorkflow } from './reindex.js';

export interface SearchAlarmsProps {
  readonly queryApi: QueryApi;
  readonly ingest: IngestPipeline;
  readonly reindex: ReindexWorkflow;
  readonly config: Pick<StackConfig, 'alarmEmail' | 'latencyAlarmMs' | 'provisionedConcurrency'>;
}

/** Index age beyond which the nightly reindex has evidently not run (26 h: a day plus slack). */
export const MAX_INDEX_AGE_SECONDS = 26 * 3600;
/** Oldest ingest message age that breaks the freshness promise (seconds). */
export const MAX_INGEST_AGE_SECONDS = 300;

/**
 * Alarms on what users feel — POST /search p99 latency (API Gateway), 5xx rate, freshness
 * (ingest backlog age, dead letters), failed encode records, index age (reported on a schedule; silence breaches), reindex
 * failures (not lost swap races), Lambda errors/throttles per function, provisioned-concurrency
 * spillover — into one SNS topic (optional e-mail), and a dashboard of the same metrics.
 */
export class SearchAlarms extends Construct {
  readonly topic: Topic;
  /** Customer-managed key of the topic (rotation on; CloudWatch may use it). */
  readonly key: Key;
  readonly alarms: Alarm[] = [];
  readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: SearchAlarmsProps) {
    super(scope, id);
    const { queryApi, ingest, reindex, config } = props;
    const account = Stack.of(this).account;
    // CloudWatch alarms cannot publish to a topic encrypted with the AWS-managed alias/aws/sns key
    // (its policy cannot be changed), so the topic gets its own key that CloudWatch may use.
    this.key = new Key(this, 'TopicKey', {
      description: 'bisearch alarm topic encryption',
      enableKeyRotation: true,
    });
    this.key.addToResourcePolicy(
      new PolicyStatement({
        sid: 'AllowCloudWatchAlarmsToUseTheKey',
        effect: Effect.ALLOW,
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': account } },
      }),
    );
    this.topic = new Topic(this, 'Topic', {
      displayName: 'bisearch alarms',
      enforceSSL: true,
      masterKey: this.key,
    });
    // enforceSSL creates a topic policy holding only a Deny, which replaces SNS's default policy:
    // without this statement nothing allows CloudWatch to publish.
    this.topic.addToResourcePolicy(
      new PolicyStatement({
        sid: 'AllowCloudWatchAlarmsToPublish',
        effect: Effect.ALLOW,
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [this.topic.topicArn],
        conditions: { StringEquals: { 'aws:SourceAccount': account } },
      }),
    );
    if (config.alarmEmail) this.topic.addSubscription(new EmailSubscription(config.alarmEmail));
    const action = new SnsAction(this.topic);
    const fiveMinutes = Duration.minutes(5);
    const alarm = (
      name: string,
      metric: IMetric,
      threshold: number,
      description: string,
      evaluationPeriods = 1,
      treatMissingData = TreatMissingData.NOT_BREACHING,
    ) => {
      const created = new Alarm(this, name, {
        alarmDescription: description,
        metric,
        threshold,
        evaluationPeriods,
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData,
      });
      created.addAlarmAction(action);
      created.addOkAction(action);
      this.alarms.push(created);
      return created;
    };

    // What a searching client waits for: API Gateway's latency of POST /search (cold starts, init
    // and the gateway included), not the Lambda's Duration of every route mixed.
    const latency = queryApi.routeLatency('POST', '/search', { statistic: 'p99', period: fiveMinutes });
    alarm(
      'SearchLatencyP99',
      latency,
      config.latencyAlarmMs,
      `POST /search p99 latency (API Gateway) above ${config.latencyAlarmMs} ms`,
      3,
    );
    const serverErrorRate = new MathExpression({
      expression: 'IF(requests > 0, 100 * errors / requests, 0)',
      usingMetrics: {
        errors: queryApi.httpApi.metricServerError({ period: fiveMinutes, statistic: 'Sum' }),
        requests: queryApi.httpApi.metricCount({ period: fiveMinutes, statistic: 'Sum' }),
      },
      period: fiveMinutes,
      label: '5xx %',
    });
    alarm('Api5xxRate', serverErrorRate, 1, 'More than 1% of API requests answered 5xx', 2);
    const functions = [
      ['Query', queryApi.queryFunction],
      ['Encode', ingest.encodeFunction],
      ...reindex.functionsByStep.map(([step, fn]) => [`Reindex${step}`, fn] as const),
      ['IndexAgeMonitor', reindex.indexAgeFunction],
    ] as const;
    for (const [name, fn] of functions) {
      alarm(
        `${name}Errors`,
        fn.metricErrors({ period: fiveMinutes, statistic: 'Sum' }),
        0,
        `${name} Lambda errors`,
      );
      alarm(
        `${name}Throttles`,
        fn.metricThrottles({ period: fiveMinutes, statistic: 'Sum' }),
        0,
        `${name} Lambda throttles`,
      );
    }
    alarm(
      'EncodeRecordsFailed',
      new Metric({
        namespace: METRICS_NAMESPACE,
        metricName: 'RecordsFailed',
        dimensionsMap: { service: 'encode' },
        statistic: 'Sum',
        period: fiveMinutes,
      }),
      0,
      'Encode records failed and will be retried (partial batch failures: no Lambda error is raised)',
    );
    alarm(
      'DeadLetters',
      ingest.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
        period: Duration.minutes(1),
        statistic: 'Maximum',
      }),
      0,
      'Documents failed ingestion repeatedly and are in the dead-letter queue',
    );
    alarm(
      'IngestBacklogAge',
      ingest.queue.metricApproximateAgeOfOldestMessage({ period: Duration.minutes(1), statistic: 'Maximum' }),
      MAX_INGEST_AGE_SECONDS,
      `Uploads wait more than ${MAX_INGEST_AGE_SECONDS} s to be indexed (freshness)`,
      3,
    );
    alarm(
      'ReindexFailed',
      reindex.stateMachine.metricFailed({ period: fiveMinutes, statistic: 'Sum' }),
      0,
      'A reindex execution failed (a swap lost to a concurrent run ends in SupersededByConcurrentReindex instead)',
    );
    alarm(
      'ReindexTimedOut',
      reindex.stateMachine.metricTimedOut({ period: fiveMinutes, statistic: 'Sum' }),
      0,
      'A reindex execution timed out',
    );
    // Reported by the index-age monitor on a schedule, with or without traffic. Silence means the
    // monitor is broken or no version was ever swapped in: breaching, not fine.
    const indexAge = new Metric({
      namespace: METRICS_NAMESPACE,
      metricName: 'IndexAge',
      dimensionsMap: { service: 'reindex' },
      statistic: 'Maximum',
      period: Duration.minutes(15),
    });
    alarm(
      'IndexAge',
      indexAge,
      MAX_INDEX_AGE_SECONDS,
      'The served index is older than 26 h, or no index was ever swapped in: the reindex is not landing',
      1,
      TreatMissingData.BREACHING,
    );
    if (config.provisionedConcurrency > 0) {
      alarm(
        'ProvisionedConcurrencySpillover',
        queryApi.alias.metric('ProvisionedConcurrencySpilloverInvocations', {
          period: fiveMinutes,
          statistic: 'Sum',
        }),
        0,
        'Queries exceeded provisioned concurrency and ran on cold instances',
        3,
      );
    }

    this.dashboard = new Dashboard(this, 'Dashboard', { dashboardName: undefined });
    this.dashboard.addWidgets(
      new GraphWidget({
        title: 'POST /search latency (ms)',
        left: [latency, queryApi.routeLatency('POST', '/search', { statistic: 'p50', period: fiveMinutes })],
      }),
      new GraphWidget({ title: 'API 5xx %', left: [serverErrorRate] }),
      new GraphWidget({
        title: 'Freshness',
        left: [ingest.queue.metricApproximateAgeOfOldestMessage({ period: Duration.minutes(1) })],
        right: [
          ingest.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1) }),
        ],
      }),
      new GraphWidget({
        title: 'Index',
        left: [indexAge],
        right: [reindex.stateMachine.metricSucceeded(), reindex.stateMachine.metricFailed()],
      }),
    );
  }
}
