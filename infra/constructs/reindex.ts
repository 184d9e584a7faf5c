import { ArnFormat, Duration, Stack } from 'aws-cdk-lib';
import { SubnetType } from 'aws-cdk-lib/aws-ec2';
import { FargatePlatformVersion } from 'aws-cdk-lib/aws-ecs';
import { Rule, RuleTargetInput, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction, SfnStateMachine } from 'aws-cdk-lib/aws-events-targets';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import {
  Choice,
  Condition,
  DefinitionBody,
  Fail,
  IntegrationPattern,
  JsonPath,
  LogLevel,
  StateMachine,
  Succeed,
  TaskInput,
  Timeout,
} from 'aws-cdk-lib/aws-stepfunctions';
import { EcsFargateLaunchTarget, EcsRunTask, LambdaInvoke } from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { TRANSIENT_REINDEX_ERRORS } from '../../functions/adapters/services/reindex-steps.js';
import type { StackConfig } from '../config.js';
import { bisearchFunction } from './bisearch-function.js';
import type { RuntimeLayers } from './layers.js';
import { acknowledgeBucketGrants, acknowledgeReindexTask, acknowledgeStepInvocations } from './nag.js';
import { ReindexTask } from './reindex-task.js';
import type { SearchStorage } from './storage.js';

export interface ReindexWorkflowProps {
  readonly storage: SearchStorage;
  readonly layers: RuntimeLayers;
  readonly config: Pick<
    StackConfig,
    | 'reindexSchedule'
    | 'keepVersions'
    | 'ephemeralStorageMb'
    | 'recallTarget'
    | 'fargateBuild'
    | 'fargateBuildCpu'
    | 'fargateBuildMemoryMb'
    | 'fargateBuildStorageGib'
    | 'lambdaBuildMaxChunks'
  >;
}

/** State names of the reindex state machine (the local runtime binds handlers to them). */
export const REINDEX_STATES = {
  snapshot: 'Snapshot',
  buildCompute: 'BuildCompute',
  build: 'Build',
  validate: 'Validate',
  buildOnFargate: 'BuildOnFargate',
  collectTaskResult: 'CollectTaskResult',
  swap: 'Swap',
  prune: 'Prune',
  recordFailure: 'RecordFailure',
  failed: 'ReindexFailed',
  recordSuperseded: 'RecordSuperseded',
  superseded: 'SupersededByConcurrentReindex',
} as const;

/** How often the index-age monitor reports the served version's age (minutes). */
export const INDEX_AGE_REPORT_MINUTES = 5;

/** How long the Fargate build task may run (Build and Validate of the largest corpus). */
export const REINDEX_TASK_TIMEOUT = Duration.hours(4);

/**
 * ECS errors worth a second try of the task's start: the service's own failures and capacity
 * not available right now (RunTask's `Failures`, surfaced as AmazonECS.Unknown). The task's own
 * outcome is never retried: it is CollectTaskResult's.
 */
export const TRANSIENT_TASK_START_ERRORS = [
  'ECS.ServerException',
  'ECS.AmazonECSException',
  'AmazonECS.Unknown',
];

/** Retry only what can succeed on a second try: see TRANSIENT_REINDEX_ERRORS. */
const TRANSIENT_RETRY = { errors: [...TRANSIENT_REINDEX_ERRORS] };

/**
 * Step Functions reindex: snapshot (freeze a watermark, export chunks) → build (new version in
 * S3) → validate (checksums, embedding space, counts, HNSW recall) → swap (conditional pointer
 * update) → prune. Build and Validate run in Lambdas, or (`fargateBuild`, for versions Snapshot
 * finds too large for a Lambda with 2× margin) in one ECS Fargate task started with
 * `ecs:runTask.sync`, whose result CollectTaskResult reads. Every task retries transient errors only and catches the rest into
 * RecordFailure, which leaves the pointer untouched; the execution then fails. A swap lost to a
 * concurrent run is caught into RecordSuperseded and ends in a Succeed state. Scheduled nightly
 * by EventBridge; a second rule reports the served index's age every few minutes.
 */
export class ReindexWorkflow extends Construct {
  readonly stateMachine: StateMachine;
  /** The step functions of the state machine. */
  readonly functions: NodejsFunction[] = [];
  /** The same, by step name (Snapshot, Build, …, RecordFailure): alarms are named after them. */
  readonly functionsByStep: Array<readonly [string, NodejsFunction]> = [];
  /** The Fargate build task, when `fargateBuild` is on. */
  readonly task: ReindexTask | undefined;
  /**
   * Reports `IndexAge` (service `reindex`) every {@link INDEX_AGE_REPORT_MINUTES} minutes,
   * with or without traffic; reports nothing while no version was ever swapped in.
   */
  readonly indexAgeFunction: NodejsFunction;

  constructor(scope: Construct, id: string, props: ReindexWorkflowProps) {
    super(scope, id);
    const { storage, config } = props;
    const environment = {
      ...storage.functionEnvironment(),
      BISEARCH_KEEP_VERSIONS: String(config.keepVersions),
      BISEARCH_RECALL_TARGET: String(config.recallTarget),
      BISEARCH_BUILD_TMP_MB: String(config.ephemeralStorageMb),
      BISEARCH_LAMBDA_BUILD_MAX_CHUNKS: String(config.lambdaBuildMaxChunks),
      BISEARCH_FARGATE_BUILD: String(config.fargateBuild),
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
      this.functionsByStep.push([name, fn]);
      return fn;
    };
    const heavy = Duration.minutes(15);
    const failed = new Fail(this, REINDEX_STATES.failed, {
      error: 'ReindexFailed',
      cause:
        'A reindex step failed; the index pointer is unchanged. See the RecordFailure step and the function logs.',
    });
    const failureFunction = step('RecordFailure', 'failureHandler', 1024, Duration.minutes(2));
    // The execution name comes from the context object: the failed state's input need not hold
    // it (Snapshot's input is the trigger's), and without it the cleanup would aim at
    // `exports/undefined/`. The Catch keeps that input (resultPath $.error), so `state` has the
    // version to remove.
    const failurePayload = (superseded: boolean) =>
      TaskInput.fromObject({
        executionName: JsonPath.stringAt('$$.Execution.Name'),
        state: JsonPath.objectAt('$'),
        ...(superseded ? { superseded: true } : {}),
      });
    const recordFailure = new LambdaInvoke(this, REINDEX_STATES.recordFailure, {
      lambdaFunction: failureFunction,
      payloadResponseOnly: true,
      payload: failurePayload(false),
      resultPath: JsonPath.DISCARD,
    });
    recordFailure.addRetry({
      ...TRANSIENT_RETRY,
      maxAttempts: 2,
      interval: Duration.seconds(5),
      backoffRate: 2,
    });
    recordFailure.addCatch(failed);
    recordFailure.next(failed);
    // Losing the swap race to a concurrent run is benign: the winner's version serves. Clean up
    // and end in a Succeed state of its own, so ExecutionsFailed (and its alarm) means failure.
    const superseded = new Succeed(this, REINDEX_STATES.superseded, {
      comment: 'Another reindex swapped the pointer first; this run cleaned up its files.',
      // The output is the PointerConflict, not this run's state: its version was never served.
      outputPath: '$.error',
    });
    const recordSuperseded = new LambdaInvoke(this, REINDEX_STATES.recordSuperseded, {
      lambdaFunction: failureFunction,
      payloadResponseOnly: true,
      payload: failurePayload(true),
      resultPath: JsonPath.DISCARD,
    });
    recordSuperseded.addRetry({
      ...TRANSIENT_RETRY,
      maxAttempts: 2,
      interval: Duration.seconds(5),
      backoffRate: 2,
    });
    recordSuperseded.addCatch(failed);
    recordSuperseded.next(superseded);

    const task = (
      state: string,
      name: string,
      handlerExport: string,
      memoryMb: number,
      timeout: Duration,
      payload?: TaskInput,
      catchConflict = false,
    ) => {
      const invoke = new LambdaInvoke(this, state, {
        lambdaFunction: step(name, handlerExport, memoryMb, timeout),
        payloadResponseOnly: true,
        taskTimeout: Timeout.duration(timeout.plus(Duration.minutes(1))),
        ...(payload ? { payload } : {}),
      });
      // Never States.ALL: it would rerun deterministic timeouts, ENOSPC and out-of-memory.
      invoke.addRetry({ ...TRANSIENT_RETRY, maxAttempts: 2, interval: Duration.seconds(10), backoffRate: 2 });
      // First matching Catch wins: the lost race before the catch-all.
      if (catchConflict)
        invoke.addCatch(recordSuperseded, { errors: ['PointerConflict'], resultPath: '$.error' });
      invoke.addCatch(recordFailure, { resultPath: '$.error' });
      return invoke;
    };
    const definition = task(
      REINDEX_STATES.snapshot,
      'Snapshot',
      'snapshotHandler',
      3008,
      heavy,
      // The execution input rides along as `request` (`{"full": true}` forces a full rebuild).
      TaskInput.fromObject({
        executionName: JsonPath.stringAt('$$.Execution.Name'),
        request: JsonPath.objectAt('$'),
      }),
    );
    const swap = task(REINDEX_STATES.swap, 'Swap', 'swapHandler', 1024, Duration.minutes(2), undefined, true);
    swap.next(task(REINDEX_STATES.prune, 'Prune', 'pruneHandler', 1024, Duration.minutes(5)));
    const inLambdas = task(REINDEX_STATES.build, 'Build', 'buildHandler', 10240, heavy);
    inLambdas.next(task(REINDEX_STATES.validate, 'Validate', 'validateHandler', 10240, heavy)).next(swap);

    this.task = config.fargateBuild
      ? new ReindexTask(this, 'Task', {
          storage,
          layers: props.layers,
          environment,
          cpu: config.fargateBuildCpu,
          memoryMiB: config.fargateBuildMemoryMb,
          ephemeralStorageGiB: config.fargateBuildStorageGib,
        })
      : undefined;
    if (this.task) {
      const onFargate = new EcsRunTask(this, REINDEX_STATES.buildOnFargate, {
        integrationPattern: IntegrationPattern.RUN_JOB,
        cluster: this.task.cluster,
        taskDefinition: this.task.taskDefinition,
        launchTarget: new EcsFargateLaunchTarget({ platformVersion: FargatePlatformVersion.LATEST }),
        // Public subnets without NAT: the public IP only pulls the image and ships logs; S3 and
        // DynamoDB go through the VPC's gateway endpoints. No inbound rule exists.
        assignPublicIp: true,
        subnets: { subnetType: SubnetType.PUBLIC },
        securityGroups: [this.task.securityGroup],
        containerOverrides: [
          {
            containerDefinition: this.task.container,
            environment: [
              { name: 'BISEARCH_TASK_INPUT', value: JsonPath.jsonToString(JsonPath.objectAt('$')) },
            ],
          },
        ],
        // `.sync` returns ECS's description of the stopped task: CollectTaskResult reads the outcome.
        resultPath: JsonPath.DISCARD,
        taskTimeout: Timeout.duration(REINDEX_TASK_TIMEOUT),
      });
      onFargate.addRetry({
        errors: TRANSIENT_TASK_START_ERRORS,
        maxAttempts: 2,
        interval: Duration.minutes(1),
        backoffRate: 2,
      });
      onFargate.addCatch(recordFailure, { resultPath: '$.error' });
      onFargate
        .next(
          task(
            REINDEX_STATES.collectTaskResult,
            'CollectTaskResult',
            'collectTaskHandler',
            1024,
            Duration.minutes(2),
          ),
        )
        .next(swap);
      definition.next(
        new Choice(this, REINDEX_STATES.buildCompute, {
          comment: "Snapshot's buildCompute: Build and Validate in Lambdas, or in the Fargate task.",
        })
          .when(
            Condition.and(
              Condition.isPresent('$.buildCompute'),
              Condition.stringEquals('$.buildCompute', 'fargate'),
            ),
            onFargate,
          )
          .otherwise(inLambdas),
      );
    } else {
      definition.next(inLambdas);
    }

    this.stateMachine = new StateMachine(this, 'StateMachine', {
      definitionBody: DefinitionBody.fromChainable(definition),
      // The Fargate task may run for hours; the Lambda path ends within about an hour.
      timeout: this.task ? REINDEX_TASK_TIMEOUT.plus(Duration.hours(2)) : Duration.hours(2),
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
    if (this.task) {
      // The family ARN exactly as ecs:runTask.sync's grant builds it (the finding names it).
      const stack = Stack.of(this);
      const arn = stack.splitArn(this.task.taskDefinition.taskDefinitionArn, ArnFormat.SLASH_RESOURCE_NAME);
      const familyArn = stack.formatArn({
        partition: arn.partition,
        service: arn.service,
        account: arn.account,
        region: arn.region,
        resource: arn.resource,
        arnFormat: arn.arnFormat,
        resourceName: arn.resourceName?.split(':')[0],
      });
      acknowledgeReindexTask(this.stateMachine, this.task.taskDefinition.obtainExecutionRole(), familyArn);
    }

    // Index age must be reported whether or not queries arrive (the query Lambda reports it only
    // per request): a schedule of its own, so that silence itself can be treated as breaching.
    this.indexAgeFunction = bisearchFunction(this, 'IndexAgeFunction', {
      handlerFile: 'reindex',
      handlerExport: 'indexAgeHandler',
      description: "bisearch: reports the served index version's age",
      memoryMb: 256,
      timeout: Duration.seconds(30),
      layers: props.layers,
      needsModel: false,
      environment,
    });
    storage.table.grantReadData(this.indexAgeFunction);
    new Rule(this, 'IndexAgeSchedule', {
      description: 'bisearch: report the served index age',
      schedule: Schedule.rate(Duration.minutes(INDEX_AGE_REPORT_MINUTES)),
      targets: [new LambdaFunction(this.indexAgeFunction)],
    });
  }
}
