import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Stack, Validations } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import { Bucket } from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseStackConfig } from '../../infra/config.js';
import { stateMachineFromTemplate } from '../../infra/local/state-machine-definition.js';
import { directorySize, LAMBDA_UNZIPPED_LIMIT_BYTES } from '../../layers/native-layer.js';
import { TINY_BERT_CROSS_ENCODER_DIR } from '../support/shared-fixtures.js';
import { type SynthesizedStack, synthesizeStack } from '../support/synth.js';

let synthesized: SynthesizedStack;
beforeAll(() => {
  // Bundled once, as `cdk synth` does, so asset sizes are real.
  synthesized = synthesizeStack({}, { bundle: true });
});

const resourcesOf = (type: string) =>
  Object.entries(synthesized.json.Resources).filter(([, resource]) => resource.Type === type);
/** A function by its construct path, e.g. `Ingest/Encode`. */
const functionAt = (path: string) => {
  const found = resourcesOf('AWS::Lambda::Function').find(
    ([, resource]) => resource.Metadata?.['aws:cdk:path'] === `Test/${path}/Resource`,
  );
  if (!found) throw new Error(`no function at ${path}`);
  return found;
};

describe('storage', () => {
  it('buckets block public access, enforce TLS, encrypt at rest, log access and expire old data', () => {
    const buckets = resourcesOf('AWS::S3::Bucket');
    expect(buckets).toHaveLength(3);
    for (const [, bucket] of buckets) {
      expect(bucket.Properties.PublicAccessBlockConfiguration).toEqual({
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      });
      expect(
        bucket.Properties.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault
          .SSEAlgorithm,
      ).toBe('AES256');
    }
    for (const [, policy] of resourcesOf('AWS::S3::BucketPolicy')) {
      expect(policy.Properties.PolicyDocument.Statement).toContainEqual(
        expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
      );
    }
    synthesized.template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({ AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 } }),
          Match.objectLike({ Prefix: 'exports/', ExpirationInDays: 7 }),
        ]),
      },
      LoggingConfiguration: Match.objectLike({ LogFilePrefix: 'indexes/' }),
    });
  });

  it('no lifecycle rule can expire an index version (the pointer may name any of them); exports expire', () => {
    const [, indexBucket] =
      resourcesOf('AWS::S3::Bucket').find(
        ([, bucket]) => bucket.Properties.LoggingConfiguration?.LogFilePrefix === 'indexes/',
      ) ?? [];
    const rules = indexBucket?.Properties.LifecycleConfiguration.Rules as Array<Record<string, unknown>>;
    expect(rules).toContainEqual(expect.objectContaining({ Prefix: 'exports/', ExpirationInDays: 7 }));
    for (const rule of rules) {
      const reachesIndexes = !rule.Prefix || String(rule.Prefix).startsWith('indexes') || rule.Prefix === '';
      if (!reachesIndexes) continue;
      // Only the multipart-upload cleanup may apply there: it never touches a finished object.
      expect(Object.keys(rule).sort()).toEqual(['AbortIncompleteMultipartUpload', 'Status']);
    }
  });

  it('the table has point-in-time recovery, encryption, TTL on the change log, and is retained', () => {
    synthesized.template.hasResource('AWS::DynamoDB::Table', {
      Properties: Match.objectLike({
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        SSESpecification: { SSEEnabled: true },
        TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
      }),
      DeletionPolicy: 'Retain',
    });
  });
});

describe('ingest', () => {
  it('S3 created/removed events under docs/ go to the ingest queue, which dead-letters after 5 receives', () => {
    synthesized.template.hasResourceProperties('Custom::S3BucketNotifications', {
      NotificationConfiguration: {
        QueueConfigurations: ['s3:ObjectCreated:*', 's3:ObjectRemoved:*'].map((event) =>
          Match.objectLike({
            Events: [event],
            Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: 'docs/' }] } },
          }),
        ),
      },
    });
    synthesized.template.hasResourceProperties('AWS::SQS::Queue', {
      VisibilityTimeout: 720,
      RedrivePolicy: { deadLetterTargetArn: Match.anyValue(), maxReceiveCount: 5 },
      SqsManagedSseEnabled: true,
    });
  });

  it('the encode Lambda consumes it in batches with partial batch failures, at most 32 at once by default; visibility ≥ 6× its timeout', () => {
    const [encodeId, encode] = functionAt('Ingest/Encode');
    expect(encode.Properties.Timeout * 6).toBeLessThanOrEqual(720);
    synthesized.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: encodeId },
      BatchSize: 10,
      MaximumBatchingWindowInSeconds: 2,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 32 },
    });
    expect(() => parseStackConfig({ encodeMaxConcurrency: '1' })).toThrow(/encodeMaxConcurrency/);
  });

  it('the encode Lambda may send to its own queue (a large object continues in a new invocation)', () => {
    const [, encode] = functionAt('Ingest/Encode');
    const [queueId] =
      resourcesOf('AWS::SQS::Queue').find(([id]) => /^IngestQueue/.test(id) && !/DeadLetters/.test(id)) ?? [];
    expect(encode.Properties.Environment.Variables.INGEST_QUEUE_URL).toEqual({ Ref: queueId });
    const statements = resourcesOf('AWS::IAM::Policy')
      .filter(([id]) => /^IngestEncodeServiceRoleDefaultPolicy/.test(id))
      .flatMap(
        ([, policy]) =>
          policy.Properties.PolicyDocument.Statement as Array<{ Action: unknown; Resource: unknown }>,
      );
    const onQueue = statements.filter((statement) =>
      JSON.stringify(statement.Resource).includes(queueId as string),
    );
    expect(onQueue.flatMap((statement) => [statement.Action].flat())).toContain('sqs:SendMessage');
  });
});

describe('query API', () => {
  it('routes the HTTP API through the live alias, IAM auth, throttling and access logs; no provisioned concurrency by default', () => {
    // Off by default: accounts with a concurrency quota of 10 cannot provision any.
    synthesized.template.hasResourceProperties('AWS::Lambda::Alias', {
      Name: 'live',
      ProvisionedConcurrencyConfig: Match.absent(),
    });
    const info = synthesized.stack.node
      .findAll()
      .flatMap((construct) => construct.node.metadata)
      .filter((entry) => entry.type === 'aws:cdk:info')
      .map((entry) => String(entry.data));
    expect(info.join('\n')).toMatch(/-c provisionedConcurrency=1/);
    const provisioned = synthesizeStack({ provisionedConcurrency: 1 });
    provisioned.template.hasResourceProperties('AWS::Lambda::Alias', {
      ProvisionedConcurrencyConfig: { ProvisionedConcurrentExecutions: 1 },
    });
    expect(
      provisioned.template.findResources('AWS::CloudWatch::Alarm', {
        Properties: { MetricName: 'ProvisionedConcurrencySpilloverInvocations' },
      }),
    ).not.toEqual({});
    const routes = resourcesOf('AWS::ApiGatewayV2::Route').map(([, route]) => route.Properties);
    expect(routes.map((route) => route.RouteKey).sort()).toEqual([
      'DELETE /documents/{docId+}',
      'GET /documents',
      'GET /documents/{docId+}',
      'GET /health',
      'GET /openapi.json',
      'POST /search',
      'PUT /documents/{docId+}',
    ]);
    for (const route of routes) expect(route.AuthorizationType).toBe('AWS_IAM');
    synthesized.template.hasResourceProperties('AWS::ApiGatewayV2::Integration', {
      IntegrationUri: { Ref: Match.stringLikeRegexp('QueryLive') },
    });
    synthesized.template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      DefaultRouteSettings: { ThrottlingRateLimit: 100, ThrottlingBurstLimit: 200 },
      AccessLogSettings: Match.objectLike({ DestinationArn: Match.anyValue() }),
    });
  });

  it('the query function may start the reindex state machine (a delta past its bound), and nothing else of it', () => {
    const [, query] = functionAt('Query/Query');
    const [machineId] = resourcesOf('AWS::StepFunctions::StateMachine')[0] ?? [];
    expect(query.Properties.Environment.Variables).toMatchObject({
      BISEARCH_REINDEX_STATE_MACHINE_ARN: { Ref: machineId },
      BISEARCH_DELTA_REINDEX_CHUNKS: '20000',
    });
    const statements = resourcesOf('AWS::IAM::Policy').flatMap(
      ([, policy]) =>
        policy.Properties.PolicyDocument.Statement as Array<{ Action: unknown; Resource: unknown }>,
    );
    const onMachine = statements.filter(
      (statement) => JSON.stringify(statement.Resource) === JSON.stringify({ Ref: machineId }),
    );
    expect(onMachine.map((statement) => statement.Action)).toContainEqual('states:StartExecution');
  });

  it('the query role may read document objects (GET /documents compares ETags by HEAD), put and delete them', () => {
    const role = Object.entries(synthesized.template.findResources('AWS::IAM::Policy')).find(([id]) =>
      /^QueryServiceRoleDefaultPolicy/.test(id),
    );
    expect(role).toBeDefined();
    const documentsBucketId = Object.keys(synthesized.template.findResources('AWS::S3::Bucket')).find((id) =>
      /StorageDocuments/.test(id),
    ) as string;
    type Statement = { Action: string | string[]; Resource: unknown };
    const statements = (
      (role as [string, unknown])[1] as { Properties: { PolicyDocument: { Statement: Statement[] } } }
    ).Properties.PolicyDocument.Statement;
    const onDocuments = statements
      .filter((statement) => JSON.stringify(statement.Resource).includes(documentsBucketId))
      .flatMap((statement) => [statement.Action].flat());
    for (const action of ['s3:GetObject*', 's3:List*', 's3:PutObject', 's3:DeleteObject*'])
      expect(onDocuments, action).toContain(action);
  });

  it('sizes /tmp for the index and runs Node.js 22 with the native and model layers', () => {
    const [, query] = functionAt('Query/Query');
    expect(query.Properties).toMatchObject({
      Runtime: 'nodejs22.x',
      EphemeralStorage: { Size: 4096 },
      Architectures: ['x86_64'],
    });
    expect(query.Properties.Layers).toHaveLength(2);
    expect(query.Properties.Environment.Variables).toMatchObject({ BISEARCH_MODEL_DIR: '/opt/model' });
    expect(query.Properties.Environment.Variables.BISEARCH_RERANKER_DIR).toBeUndefined();
  });

  it('functions do not parse source maps on every error, and minified bundles keep class names', () => {
    for (const [id, fn] of resourcesOf('AWS::Lambda::Function')) {
      expect({ id, options: fn.Properties.Environment?.Variables?.NODE_OPTIONS }).toEqual({
        id,
        options: undefined,
      });
    }
    const [, query] = functionAt('Query/Query');
    const bundle = readFileSync(
      join(synthesized.outdir, query.Metadata['aws:asset:path'], 'index.mjs'),
      'utf8',
    );
    // BisearchError sets this.name from new.target.name: only kept names make it readable.
    // The source never spells the name as a string, so only keepNames can put it there.
    expect(bundle).toMatch(/["']InvalidRequestError["']/);
    expect(bundle).toMatch(/["']ModelConfigurationError["']/);
  });

  it('-c rerankerDir ships the cross-encoder in a layer and points the query Lambda into /opt', () => {
    const variant = synthesizeStack({ rerankerDir: TINY_BERT_CROSS_ENCODER_DIR }, { nag: false });
    const [queryId, query] =
      Object.entries(variant.json.Resources).find(
        ([, resource]) => resource.Metadata?.['aws:cdk:path'] === 'Test/Query/Query/Resource',
      ) ?? [];
    expect(queryId).toBeDefined();
    expect(query?.Properties.Environment.Variables.BISEARCH_RERANKER_DIR).toBe('/opt/reranker');
    const rerankerLayer = Object.entries(variant.json.Resources).find(
      ([, resource]) =>
        resource.Type === 'AWS::Lambda::LayerVersion' &&
        String(resource.Properties.Description).includes('cross-encoder'),
    );
    expect(rerankerLayer).toBeDefined();
    const [layerId, layer] = rerankerLayer ?? [];
    expect(query?.Properties.Layers).toContainEqual({ Ref: layerId });
    const staged = join(variant.outdir, layer?.Metadata['aws:asset:path'], 'reranker');
    expect(readFileSync(join(staged, 'bisearch-model.json'), 'utf8')).toContain('tiny-bert-cross-encoder');
    expect(directorySize(staged)).toBeGreaterThan(0);
    // The other functions do not carry it.
    for (const resource of Object.values(variant.json.Resources)) {
      if (resource.Type !== 'AWS::Lambda::Function' || resource === query) continue;
      expect(resource.Properties.Layers ?? []).not.toContainEqual({ Ref: layerId });
    }
  });

  it('provisioned concurrency 0 turns it off; JWT auth, CORS and arm64 are options', () => {
    const variant = synthesizeStack({
      provisionedConcurrency: 0,
      auth: 'jwt',
      jwtIssuer: 'https://issuer.example.com',
      jwtAudience: ['bisearch'],
      corsOrigins: ['https://app.example.com'],
      architecture: 'arm64',
    });
    const alias = Object.values(variant.json.Resources).find(
      (resource) => resource.Type === 'AWS::Lambda::Alias',
    );
    expect(alias?.Properties.ProvisionedConcurrencyConfig).toBeUndefined();
    variant.template.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', {
      AuthorizerType: 'JWT',
      JwtConfiguration: { Issuer: 'https://issuer.example.com', Audience: ['bisearch'] },
    });
    variant.template.hasResourceProperties('AWS::ApiGatewayV2::Api', {
      CorsConfiguration: Match.objectLike({
        AllowOrigins: ['https://app.example.com'],
        // Browsers' SigV4 signing sends all of these (arrayWith keeps the source order).
        AllowHeaders: Match.arrayWith([
          'authorization',
          'x-amz-date',
          'x-amz-security-token',
          'x-amz-content-sha256',
        ]),
      }),
    });
    variant.template.hasResourceProperties('AWS::Lambda::LayerVersion', {
      CompatibleArchitectures: ['arm64'],
    });
    variant.template.resourcePropertiesCountIs('AWS::Lambda::Function', { Architectures: ['arm64'] }, 10);
    variant.template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      RuntimePlatform: { CpuArchitecture: 'ARM64', OperatingSystemFamily: 'LINUX' },
    });
    expect(
      variant.template.findResources('AWS::CloudWatch::Alarm', {
        Properties: { MetricName: 'ProvisionedConcurrencySpilloverInvocations' },
      }),
    ).toEqual({});
  });

  it('rejects invalid context with a message naming the setting', () => {
    expect(() => parseStackConfig({ auth: 'jwt' })).toThrow(
      /auth: auth "jwt" needs jwtIssuer and jwtAudience/,
    );
    expect(() => parseStackConfig({ provisionedConcurrency: -1 })).toThrow(/provisionedConcurrency/);
    expect(
      parseStackConfig({ corsOrigins: '["https://a.example"]', provisionedConcurrency: '2' }),
    ).toMatchObject({ corsOrigins: ['https://a.example'], provisionedConcurrency: 2 });
  });
});

describe('reindex', () => {
  it('a state machine chains Snapshot → Build → Validate → Swap → Prune, each with Retry and a Catch into RecordFailure', () => {
    const [, machine] = resourcesOf('AWS::StepFunctions::StateMachine')[0] ?? [];
    const definition = JSON.stringify(machine?.Properties.DefinitionString);
    for (const state of ['Snapshot', 'Build', 'Validate', 'Swap', 'Prune'])
      expect(definition).toContain(`\\"${state}\\":{`);
    expect(machine?.Properties.TracingConfiguration).toEqual({ Enabled: true });
    expect(machine?.Properties.LoggingConfiguration).toMatchObject({ Level: 'ALL' });
  });

  it('retries only transient errors, never States.ALL or States.Timeout; a lost swap race ends apart from failures', () => {
    const { definition } = stateMachineFromTemplate(synthesized.json);
    for (const [name, state] of Object.entries(definition.States)) {
      for (const retrier of (state.Retry ?? []) as Array<{ ErrorEquals: string[] }>) {
        expect({ name, errors: retrier.ErrorEquals }).not.toMatchObject({
          errors: expect.arrayContaining(['States.ALL']),
        });
        for (const error of ['States.ALL', 'States.Timeout', 'States.TaskFailed', 'Sandbox.Timedout'])
          expect(retrier.ErrorEquals).not.toContain(error);
        // The Fargate task's start retries ECS's own errors; its outcome is never retried.
        expect(retrier.ErrorEquals).toContain(
          name === 'BuildOnFargate' ? 'ECS.ServerException' : 'Lambda.ServiceException',
        );
      }
    }
    // RecordFailure names the execution from the context object, whatever the failed state held.
    // payloadResponseOnly: Parameters is the payload itself.
    expect(definition.States.RecordFailure?.Parameters).toMatchObject({
      'executionName.$': '$$.Execution.Name',
      'state.$': '$',
    });
    const swapCatches = definition.States.Swap?.Catch as Array<{ ErrorEquals: string[]; Next: string }>;
    expect(swapCatches[0]).toMatchObject({ ErrorEquals: ['PointerConflict'], Next: 'RecordSuperseded' });
    expect(definition.States.RecordSuperseded?.Next).toBe('SupersededByConcurrentReindex');
    expect(definition.States.SupersededByConcurrentReindex?.Type).toBe('Succeed');
  });

  it('versions too large for a Lambda build on an ECS Fargate task: .sync, its outcome collected, no NAT, no inbound, grants to this stack only', () => {
    const { definition } = stateMachineFromTemplate(synthesized.json);
    expect(definition.States.Snapshot?.Next).toBe('BuildCompute');
    expect(definition.States.BuildCompute).toMatchObject({
      Type: 'Choice',
      Default: 'Build',
      Choices: [
        {
          And: [
            { Variable: '$.buildCompute', IsPresent: true },
            { Variable: '$.buildCompute', StringEquals: 'fargate' },
          ],
          Next: 'BuildOnFargate',
        },
      ],
    });
    const [taskDefinitionId, taskDefinition] = resourcesOf('AWS::ECS::TaskDefinition')[0] ?? [];
    expect(definition.States.BuildOnFargate).toMatchObject({
      Type: 'Task',
      Resource: 'arn:aws:states:::ecs:runTask.sync',
      ResultPath: null,
      TimeoutSeconds: 4 * 3600,
      Next: 'CollectTaskResult',
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'RecordFailure' }],
      Parameters: {
        LaunchType: 'FARGATE',
        TaskDefinition: taskDefinition?.Properties.Family,
        NetworkConfiguration: { AwsvpcConfiguration: { AssignPublicIp: 'ENABLED' } },
        Overrides: {
          ContainerOverrides: [
            {
              Name: 'ReindexTask',
              Environment: [{ Name: 'BISEARCH_TASK_INPUT', 'Value.$': 'States.JsonToString($)' }],
            },
          ],
        },
      },
    });
    expect(definition.States.CollectTaskResult?.Next).toBe('Swap');
    expect(definition.States.Validate?.Next).toBe('Swap');
    expect(taskDefinitionId).toBeDefined();
    expect(taskDefinition?.Properties).toMatchObject({
      Cpu: '8192',
      Memory: '61440',
      EphemeralStorage: { SizeInGiB: 100 },
      RequiresCompatibilities: ['FARGATE'],
      RuntimePlatform: { CpuArchitecture: 'X86_64', OperatingSystemFamily: 'LINUX' },
    });
    const [container] = taskDefinition?.Properties.ContainerDefinitions ?? [];
    expect(container.LogConfiguration.LogDriver).toBe('awslogs');
    const environment = Object.fromEntries(
      (container.Environment as Array<{ Name: string; Value: unknown }>).map(({ Name, Value }) => [
        Name,
        Value,
      ]),
    );
    expect(environment).toMatchObject({
      TABLE_NAME: expect.anything(),
      INDEX_BUCKET: expect.anything(),
      BISEARCH_RECALL_TARGET: '0.98',
      BISEARCH_WORK_DIR: '/tmp/bisearch',
    });
    // Snapshot knows the Build Lambda's /tmp and that the task exists.
    const [, snapshotFunction] = functionAt('Reindex/SnapshotFunction');
    expect(snapshotFunction.Properties.Environment.Variables).toMatchObject({
      BISEARCH_BUILD_TMP_MB: '4096',
      BISEARCH_LAMBDA_BUILD_MAX_CHUNKS: '500000',
      BISEARCH_FARGATE_BUILD: 'true',
    });
    // No standing cost, no way in: no NAT gateway, gateway endpoints for S3 and DynamoDB, an
    // ingress-free security group, flow logs on.
    synthesized.template.resourceCountIs('AWS::EC2::NatGateway', 0);
    expect(
      resourcesOf('AWS::EC2::VPCEndpoint').map(([, endpoint]) => endpoint.Properties.VpcEndpointType),
    ).toEqual(['Gateway', 'Gateway']);
    const groups = resourcesOf('AWS::EC2::SecurityGroup');
    expect(groups).toHaveLength(1);
    expect(groups[0]?.[1].Properties.SecurityGroupIngress).toBeUndefined();
    synthesized.template.resourceCountIs('AWS::EC2::FlowLog', 1);
    // The task role reaches only this stack's table and index bucket.
    const taskRoleId = taskDefinition?.Properties.TaskRoleArn['Fn::GetAtt'][0];
    const taskPolicy = resourcesOf('AWS::IAM::Policy').find(([, policy]) =>
      JSON.stringify(policy.Properties.Roles).includes(taskRoleId),
    )?.[1];
    const statements = JSON.stringify(taskPolicy?.Properties.PolicyDocument.Statement);
    expect(statements).toContain('dynamodb:PutItem');
    expect(statements).toContain('s3:DeleteObject');
    expect(statements).not.toMatch(/"Resource":"\*"/);
  });

  it('-c fargateBuild=false: no ECS, no VPC; Build and Validate always run in the Lambdas', () => {
    const lambdasOnly = synthesizeStack({ fargateBuild: 'false' }, { nag: false });
    const { definition } = stateMachineFromTemplate(lambdasOnly.json);
    expect(definition.States.Snapshot?.Next).toBe('Build');
    expect(definition.States.BuildCompute).toBeUndefined();
    lambdasOnly.template.resourceCountIs('AWS::ECS::TaskDefinition', 0);
    lambdasOnly.template.resourceCountIs('AWS::EC2::VPC', 0);
    expect(() => parseStackConfig({ fargateBuildCpu: '3000' })).toThrow(/fargateBuildCpu/);
    expect(parseStackConfig({ fargateBuild: 'true' }).fargateBuild).toBe(true);
    expect(parseStackConfig({ fargateBuild: false }).fargateBuild).toBe(false);
  });

  it('a schedule independent of traffic reports the index age', () => {
    const [monitorId] = functionAt('Reindex/IndexAgeFunction');
    synthesized.template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(5 minutes)',
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [monitorId, 'Arn'] } })],
    });
  });

  it('Build and Validate get the recall target (-c recallTarget, default 0.98)', () => {
    for (const step of ['BuildFunction', 'ValidateFunction']) {
      const [, fn] = functionAt(`Reindex/${step}`);
      expect(fn.Properties.Environment.Variables).toMatchObject({ BISEARCH_RECALL_TARGET: '0.98' });
    }
    expect(parseStackConfig({ recallTarget: '0.99' }).recallTarget).toBe(0.99);
    expect(() => parseStackConfig({ recallTarget: '1.5' })).toThrow(/recallTarget/);
  });

  it('EventBridge starts it nightly', () => {
    synthesized.template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'cron(0 3 * * ? *)',
      Targets: [Match.objectLike({ Arn: { Ref: Match.stringLikeRegexp('ReindexStateMachine') } })],
    });
  });
});

describe('alarms and dashboard', () => {
  const alarmMetric = (metricName: string) =>
    Object.values(
      synthesized.template.findResources('AWS::CloudWatch::Alarm', {
        Properties: { MetricName: metricName },
      }),
    );

  it('watch latency, 5xx rate, errors, throttles, dead letters, backlog age, reindex failures, index age and spillover', () => {
    // The client's wait on POST /search (API Gateway, per-route detailed metrics), not Lambda Duration.
    expect(alarmMetric('Duration')).toEqual([]);
    expect(alarmMetric('Latency')).toHaveLength(1);
    expect(alarmMetric('Latency')[0]?.Properties).toMatchObject({
      Namespace: 'AWS/ApiGateway',
      ExtendedStatistic: 'p99',
      Threshold: 1000,
      Dimensions: expect.arrayContaining([
        { Name: 'Method', Value: 'POST' },
        { Name: 'Resource', Value: '/search' },
        { Name: 'Stage', Value: '$default' },
        { Name: 'ApiId', Value: { Ref: expect.stringMatching(/QueryApi/) } },
      ]),
    });
    synthesized.template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      DefaultRouteSettings: Match.objectLike({ DetailedMetricsEnabled: true }),
    });
    expect(alarmMetric('ApproximateNumberOfMessagesVisible')[0]?.Properties).toMatchObject({ Threshold: 0 });
    expect(alarmMetric('ApproximateAgeOfOldestMessage')[0]?.Properties).toMatchObject({ Threshold: 300 });
    expect(alarmMetric('ExecutionsFailed')).toHaveLength(1);
    expect(alarmMetric('ExecutionsTimedOut')).toHaveLength(1);
    expect(alarmMetric('IndexAge')[0]?.Properties).toMatchObject({
      Namespace: 'Bisearch',
      Threshold: 26 * 3600,
      // Reported by the scheduled monitor: silence (no monitor, no index ever) is an alarm.
      Dimensions: [{ Name: 'service', Value: 'reindex' }],
      TreatMissingData: 'breaching',
    });
    // Failed encode records are batch item failures, not Lambda errors: their own metric.
    expect(alarmMetric('RecordsFailed')[0]?.Properties).toMatchObject({
      Namespace: 'Bisearch',
      Dimensions: [{ Name: 'service', Value: 'encode' }],
      Statistic: 'Sum',
      Threshold: 0,
    });
    expect(alarmMetric('Errors')).toHaveLength(10);
    expect(alarmMetric('Throttles')).toHaveLength(10);
    // Named after what they watch, not Reindex0…Reindex5.
    const alarmIds = Object.keys(synthesized.template.findResources('AWS::CloudWatch::Alarm'));
    for (const step of ['Snapshot', 'Build', 'Validate', 'Swap', 'Prune', 'RecordFailure'])
      expect(alarmIds.some((id) => id.startsWith(`AlarmsReindex${step}Errors`))).toBe(true);
    expect(alarmIds.some((id) => id.startsWith('AlarmsIndexAgeMonitorErrors'))).toBe(true);
    expect(alarmIds.filter((id) => /Reindex\d/.test(id))).toEqual([]);
    const fiveXx = Object.values(synthesized.template.findResources('AWS::CloudWatch::Alarm')).find((alarm) =>
      JSON.stringify(alarm.Properties.Metrics ?? []).includes('5xx'),
    );
    expect(fiveXx).toBeDefined();
    for (const alarm of Object.values(synthesized.template.findResources('AWS::CloudWatch::Alarm'))) {
      expect(alarm.Properties.AlarmActions).toEqual([{ Ref: expect.stringMatching(/AlarmsTopic/) }]);
    }
    synthesized.template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
  });

  it('the alarm topic is encrypted with a key CloudWatch may use, lets CloudWatch publish, and mails the address from context', () => {
    const [keyId, key] = resourcesOf('AWS::KMS::Key')[0] ?? [];
    expect(key?.Properties.EnableKeyRotation).toBe(true);
    // Not alias/aws/sns: CloudWatch alarms are not authorised to use the AWS-managed key.
    synthesized.template.hasResourceProperties('AWS::SNS::Topic', {
      KmsMasterKeyId: { 'Fn::GetAtt': [keyId, 'Arn'] },
    });
    expect(key?.Properties.KeyPolicy.Statement).toContainEqual(
      expect.objectContaining({
        Effect: 'Allow',
        Principal: { Service: 'cloudwatch.amazonaws.com' },
        Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
      }),
    );
    const [, topicPolicy] = resourcesOf('AWS::SNS::TopicPolicy')[0] ?? [];
    const statements = topicPolicy?.Properties.PolicyDocument.Statement;
    expect(statements).toContainEqual(
      expect.objectContaining({
        Effect: 'Allow',
        Principal: { Service: 'cloudwatch.amazonaws.com' },
        Action: 'sns:Publish',
        Condition: { StringEquals: { 'aws:SourceAccount': '123456789012' } },
      }),
    );
    expect(statements).toContainEqual(
      expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
    );
    const withEmail = synthesizeStack({ alarmEmail: 'oncall@example.com' });
    withEmail.template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'oncall@example.com',
    });
  });
});

describe('least privilege and cdk-nag', () => {
  it('IAM statements name the stack\'s own resources; only X-Ray, log delivery, the ECR login and ECS task polling use "*"', () => {
    for (const [id, policy] of resourcesOf('AWS::IAM::Policy')) {
      for (const statement of policy.Properties.PolicyDocument.Statement) {
        const resources = [statement.Resource].flat();
        if (resources.includes('*')) {
          const actions = [statement.Action].flat() as string[];
          // None of these supports resource-level permissions (ecs:StopTask/DescribeTasks are
          // what ecs:runTask.sync polls the task with; ecr:GetAuthorizationToken the image login).
          const allowedWildcard = actions.every((action) =>
            /^xray:|^ecr:GetAuthorizationToken$|^ecs:(StopTask|DescribeTasks)$|^logs:(CreateLogDelivery|GetLogDelivery|UpdateLogDelivery|DeleteLogDelivery|ListLogDeliveries|PutResourcePolicy|DescribeResourcePolicies|DescribeLogGroups)$/.test(
              action,
            ),
          );
          expect({ id, actions, allowedWildcard }).toMatchObject({ allowedWildcard: true });
        }
        for (const resource of resources) {
          if (resource === '*') continue;
          expect(JSON.stringify(resource)).toMatch(/Fn::GetAtt|Ref|Fn::Join/);
        }
      }
    }
  });

  it('AwsSolutions checks pass with every acknowledgement reasoned, and do catch a violation', () => {
    // The main synth ran the checks; an unacknowledged error would have thrown.
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new Stack(app, 'Violating');
    new Bucket(stack, 'Insecure');
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    expect(() => app.synth()).toThrow(/AwsSolutions-S10|AwsSolutions-S1/);
  });
});

describe('layers', () => {
  it("function code plus layers stays under Lambda's 250 MB unzipped limit for every function", () => {
    const layerSizes = Object.fromEntries(
      resourcesOf('AWS::Lambda::LayerVersion').map(([id, layer]) => [
        id,
        directorySize(join(synthesized.outdir, layer.Metadata['aws:asset:path'])),
      ]),
    );
    for (const [id, fn] of resourcesOf('AWS::Lambda::Function')) {
      if (!fn.Metadata?.['aws:asset:path']) continue;
      const code = directorySize(join(synthesized.outdir, fn.Metadata['aws:asset:path']));
      const layers = (fn.Properties.Layers ?? []).map((layer: { Ref: string }) => layerSizes[layer.Ref] ?? 0);
      const total = code + layers.reduce((sum: number, bytes: number) => sum + bytes, 0);
      expect({ id, total: total < LAMBDA_UNZIPPED_LIMIT_BYTES }).toEqual({ id, total: true });
    }
  });
});
