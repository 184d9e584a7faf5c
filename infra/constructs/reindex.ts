import { Duration } from 'aws-cdk-lib';
import { Rule, RuleTargetInput, Schedule } from 'aws-cdk-lib/aws-events';
import { SfnStateMachine } from 'aws-cdk-lib/aws-events-targets';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import {
  DefinitionBody,
  Fail,
  JsonPath,
  LogLevel,
  StateMachine,
  TaskInput,
  Timeout,
} from 'aws-cdk-lib/aws-stepfunctions';
import { LambdaInvoke } from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { TERMINAL_REINDEX_ERRORS } from '../../functions/adapters/reindex-steps.js';
import type { StackConfig } from '../config.js';
import { bisearchFunction } from './bisearch-function.js';
import type { RuntimeLayers } from './layers.js';
import { acknowledgeBucketGrants, acknowledgeStepInvocations } from './nag.js';
import type { SearchStorage } from './storage.js';

export interface ReindexWorkflowProps {
  readonly storage: SearchStorage;
  readonly layers: RuntimeLayers;
  readonly config: Pick<StackConfig, 'reindexSchedule' | 'keepVersions' | 'ephemeralStorageMb'>;
}

/** State names of the reindex state machine (the local runtime binds handlers to them). */
export const REINDEX_STATES = {
  snapshot: 'Snapshot',
  build: 'Build',
  validate: 'Validate',
  swap: 'Swap',
  prune: 'Prune',
  recordFailure: 'RecordFailure',
  failed: 'ReindexFailed',
} as const;

/**
 * Step Functions reindex: snapshot (freeze a watermark, export chunks) → build (new version in
 * S3) → validate (checksums, embedding space, counts, HNSW recall) → swap (conditional pointer
 * update) → prune. Every task retries transient errors and catches the rest into RecordFailure,
 * which leaves the pointer untouched; the execution then fails. Scheduled nightly by EventBridge.
 */
export class ReindexWorkflow extends Construct {
  readonly stateMachine: StateMachine;
  readonly functions: NodejsFunction[] = [];

  constructor(scope: Construct, id: string, props: ReindexWorkflowProps) {
    super(scope, id);
    const { storage, config } = props;
    const environment = {
      ...storage.functionEnvironment(),
      BISEARCH_KEEP_VERSIONS: String(config.keepVersions),
    };
    const step = (name: string, handlerExport: string, memoryMb: number, timeout: Duration) => {
      const fn = bisearchFunction(this, `${name}Function`, {
        handlerFile: 'reindex',
        handlerExport,
        description: `bisearch reindex: ${name.toLowerCase()}`,
        memoryMb,
        timeout,
        ephemeralStorageMb: config.ephemeralStorageMb,
        layers: props.layers,
        needsModel: false,
        environment,
      });
      storage.table.grantReadWriteData(fn);
      storage.indexBucket.grantReadWrite(fn);
      storage.indexBucket.grantDelete(fn);
      acknowledgeBucketGrants(fn, storage.indexBucket, [
        's3:GetObject*',
        's3:GetBucket*',
        's3:List*',
        's3:DeleteObject*',
        's3:Abort*',
      ]);
      this.functions.push(fn);
      return fn;
    };
    const heavy = Duration.minutes(15);
    const failed = new Fail(this, REINDEX_STATES.failed, {
      error: 'ReindexFailed',
      cause:
        'A reindex step failed; the index pointer is unchanged. See the RecordFailure step and the function logs.',
    });
    const recordFailure = new LambdaInvoke(this, REINDEX_STATES.recordFailure, {
      lambdaFunction: step('RecordFailure', 'failureHandler', 1024, Duration.minutes(2)),
      payloadResponseOnly: true,
      resultPath: JsonPath.DISCARD,
    });
    recordFailure.addRetry({
      errors: ['States.ALL'],
      maxAttempts: 2,
      interval: Duration.seconds(5),
      backoffRate: 2,
    });
    recordFailure.addCatch(failed);
    recordFailure.next(failed);

    const task = (
      state: string,
      name: string,
      handlerExport: string,
      memoryMb: number,
      timeout: Duration,
      payload?: TaskInput,
    ) => {
      const invoke = new LambdaInvoke(this, state, {
        lambdaFunction: step(name, handlerExport, memoryMb, timeout),
        payloadResponseOnly: true,
        taskTimeout: Timeout.duration(timeout.plus(Duration.minutes(1))),
        ...(payload ? { payload } : {}),
      });
      // Terminal errors first: retrying cannot change a failed validation or a lost swap race.
      invoke.addRetry({ errors: [...TERMINAL_REINDEX_ERRORS], maxAttempts: 0 });
      invoke.addRetry({
        errors: ['States.ALL'],
        maxAttempts: 2,
        interval: Duration.seconds(10),
        backoffRate: 2,
      });
      invoke.addCatch(recordFailure, { resultPath: '$.error' });
      return invoke;
    };
    const definition = task(
      REINDEX_STATES.snapshot,
      'Snapshot',
      'snapshotHandler',
      3008,
      heavy,
      TaskInput.fromObject({ executionName: JsonPath.stringAt('$$.Execution.Name') }),
    )
      .next(task(REINDEX_STATES.build, 'Build', 'buildHandler', 10240, heavy))
      .next(task(REINDEX_STATES.validate, 'Validate', 'validateHandler', 10240, heavy))
      .next(task(REINDEX_STATES.swap, 'Swap', 'swapHandler', 1024, Duration.minutes(2)))
      .next(task(REINDEX_STATES.prune, 'Prune', 'pruneHandler', 1024, Duration.minutes(5)));

    this.stateMachine = new StateMachine(this, 'StateMachine', {
      definitionBody: DefinitionBody.fromChainable(definition),
      timeout: Duration.hours(2),
      tracingEnabled: true,
      logs: {
        destination: new LogGroup(this, 'Logs', { retention: RetentionDays.ONE_MONTH }),
        level: LogLevel.ALL,
        includeExecutionData: false,
      },
    });
    new Rule(this, 'Nightly', {
      description: 'bisearch nightly reindex',
      schedule: Schedule.expression(config.reindexSchedule),
      targets: [
        new SfnStateMachine(this.stateMachine, {
          input: RuleTargetInput.fromObject({ trigger: 'schedule' }),
        }),
      ],
    });
    acknowledgeStepInvocations(this.stateMachine, this.functions);
  }
}
