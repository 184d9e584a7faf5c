import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type CfnResource, RemovalPolicy, Stack, Stage, Validations } from 'aws-cdk-lib';
import {
  GatewayVpcEndpointAwsService,
  type ISecurityGroup,
  type IVpc,
  SecurityGroup,
  SubnetType,
  Vpc,
} from 'aws-cdk-lib/aws-ec2';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import {
  Cluster,
  type ContainerDefinition,
  ContainerImage,
  CpuArchitecture,
  FargateTaskDefinition,
  LogDrivers,
  OperatingSystemFamily,
} from 'aws-cdk-lib/aws-ecs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { buildSync } from 'esbuild';
import { buildNativeLayer, USEARCH_PACKAGES } from '../../layers/native-layer.js';
import { ESM_REQUIRE_BANNER, NATIVE_MODULES } from './bisearch-function.js';
import type { RuntimeLayers } from './layers.js';
import { acknowledgeBucketGrants } from './nag.js';
import type { SearchStorage } from './storage.js';
import { HANDLER_FILE_METADATA } from './template-metadata.js';

const PROJECT_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The container's entry point (functions/handlers/reindex-task.ts), as the local runner starts it. */
export const REINDEX_TASK_HANDLER_FILE = 'functions/handlers/reindex-task.ts';
/** Name of the task's one container (the state machine's overrides name it). */
export const REINDEX_TASK_CONTAINER = 'ReindexTask';

/**
 * Base image: the Lambda Node.js 22 image, i.e. Amazon Linux 2023 with the Lambdas' Node
 * version, so the usearch binary checked against Amazon Linux 2023's GLIBC for the native layer
 * is the one this image runs.
 */
export const REINDEX_TASK_BASE_IMAGE = 'public.ecr.aws/lambda/nodejs:22';

export interface ReindexTaskProps {
  readonly storage: SearchStorage;
  readonly layers: RuntimeLayers;
  /** The step Lambdas' environment (table, buckets, recall settings): the task's too. */
  readonly environment: Readonly<Record<string, string>>;
  /** vCPU units (1024 = 1 vCPU). Default 8192. */
  readonly cpu?: number;
  /** Memory (MiB); must suit `cpu` (Fargate's combinations). Default 61440 (60 GiB, 8 vCPU's most). */
  readonly memoryMiB?: number;
  /** Ephemeral storage (GiB, 21–200). Default 100. */
  readonly ephemeralStorageGiB?: number;
}

/**
 * The reindex's batch compute: an ECS Fargate task that runs Build and Validate (the step
 * Lambdas' code, functions/handlers/reindex-task.ts) for versions that would not fit a Lambda
 * with 2× margin. The state machine starts it with `ecs:runTask.sync` (see ReindexWorkflow).
 *
 * Secure, cheap defaults: a VPC of its own with public subnets only and no NAT gateway (no
 * standing cost), gateway endpoints for S3 and DynamoDB (free; the data never leaves the AWS
 * network), a security group with no inbound rules, a public IP only for pulling the image and
 * shipping logs; the task role can read and write only this stack's table and index bucket.
 * Nothing runs, and nothing is billed, between reindexes but the image in ECR.
 */
export class ReindexTask extends Construct {
  readonly vpc: IVpc;
  readonly cluster: Cluster;
  readonly taskDefinition: FargateTaskDefinition;
  readonly container: ContainerDefinition;
  readonly securityGroup: ISecurityGroup;
  readonly logGroup: LogGroup;

  constructor(scope: Construct, id: string, props: ReindexTaskProps) {
    super(scope, id);
    const { storage } = props;
    this.vpc = new Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'public', subnetType: SubnetType.PUBLIC, cidrMask: 24 }],
      gatewayEndpoints: {
        S3: { service: GatewayVpcEndpointAwsService.S3 },
        DynamoDB: { service: GatewayVpcEndpointAwsService.DYNAMODB },
      },
      // The default security group is never used here; restricting it costs a custom resource.
      restrictDefaultSecurityGroup: false,
    });
    this.vpc.addFlowLog('FlowLogs');
    this.securityGroup = new SecurityGroup(this, 'SecurityGroup', {
      vpc: this.vpc,
      description: 'bisearch reindex task: no inbound traffic',
      allowAllOutbound: true,
    });
    this.cluster = new Cluster(this, 'Cluster', { vpc: this.vpc });
    this.taskDefinition = new FargateTaskDefinition(this, 'TaskDefinition', {
      cpu: props.cpu ?? 8192,
      memoryLimitMiB: props.memoryMiB ?? 61440,
      ephemeralStorageGiB: props.ephemeralStorageGiB ?? 100,
      runtimePlatform: {
        cpuArchitecture:
          props.layers.architecture === 'arm64' ? CpuArchitecture.ARM64 : CpuArchitecture.X86_64,
        operatingSystemFamily: OperatingSystemFamily.LINUX,
      },
    });
    this.logGroup = new LogGroup(this, 'Logs', {
      retention: RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const context = imageContext(this, props.layers.architecture);
    this.container = this.taskDefinition.addContainer(REINDEX_TASK_CONTAINER, {
      image: ContainerImage.fromAsset(context, {
        platform: props.layers.architecture === 'arm64' ? Platform.LINUX_ARM64 : Platform.LINUX_AMD64,
      }),
      logging: LogDrivers.awsLogs({ streamPrefix: 'reindex', logGroup: this.logGroup }),
      environment: {
        ...props.environment,
        BISEARCH_WORK_DIR: '/tmp/bisearch',
        NODE_OPTIONS: `--max-old-space-size=${Math.floor((props.memoryMiB ?? 61440) * 0.75)}`,
      },
    });
    storage.table.grantReadWriteData(this.taskDefinition.taskRole);
    storage.indexBucket.grantReadWrite(this.taskDefinition.taskRole);
    storage.indexBucket.grantDelete(this.taskDefinition.taskRole);
    // The local runner starts the container's entry point from its source, as it does functions.
    (this.taskDefinition.node.defaultChild as CfnResource).addMetadata(
      HANDLER_FILE_METADATA,
      REINDEX_TASK_HANDLER_FILE,
    );
    acknowledgeBucketGrants(this.taskDefinition, storage.indexBucket, [
      's3:GetObject*',
      's3:GetBucket*',
      's3:List*',
      's3:DeleteObject*',
      's3:Abort*',
    ]);
    Validations.of(this.taskDefinition).acknowledge({
      id: 'AwsSolutions-ECS2',
      reason: 'The environment holds resource names and tuning settings, no secrets.',
    });
    Validations.of(this.cluster).acknowledge({
      id: 'AwsSolutions-ECS4',
      reason:
        'One task a night at most: Container Insights would bill for it daily; the task logs and the state machine record each run.',
    });
  }
}

/**
 * Write the image's build context at synth (in the synth's output directory): a Dockerfile, usearch's Linux binaries of the
 * architecture (as the native layer ships them, GLIBC-checked), and the entry point bundled by
 * the local esbuild with the Lambdas' settings. Bundling is skipped where the stack skips it
 * (`cdk synth` with `aws:cdk:bundling-stacks` excluding it): only the Dockerfile is written then.
 */
function imageContext(scope: Construct, architecture: RuntimeLayers['architecture']): string {
  // In this synth's output directory: concurrent synths (tests) never share it.
  const outdir = Stage.of(scope)?.outdir ?? join(PROJECT_ROOT, 'cdk.out');
  const directory = join(outdir, `reindex-task-context-${architecture}`);
  rmSync(directory, { recursive: true, force: true });
  mkdirSync(join(directory, 'task'), { recursive: true });
  writeFileSync(join(directory, 'Dockerfile'), REINDEX_TASK_DOCKERFILE);
  if (Stack.of(scope).bundlingRequired) {
    buildNativeLayer(architecture, join(directory, 'native'), PROJECT_ROOT, USEARCH_PACKAGES);
    buildSync({
      entryPoints: [join(PROJECT_ROOT, REINDEX_TASK_HANDLER_FILE)],
      outfile: join(directory, 'task', 'index.mjs'),
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node22',
      mainFields: ['module', 'main'],
      external: NATIVE_MODULES,
      minify: true,
      keepNames: true,
      banner: { js: ESM_REQUIRE_BANNER },
      logLevel: 'error',
    });
  } else {
    mkdirSync(join(directory, 'native', 'nodejs'), { recursive: true });
    writeFileSync(join(directory, 'task', 'index.mjs'), '// bundling skipped at synth\n');
  }
  return directory;
}

/** The task image: the base image, usearch where Lambda layers put it, the bundled entry point. */
export const REINDEX_TASK_DOCKERFILE = `# bisearch reindex build task (written by cdk synth; see infra/constructs/reindex-task.ts)
FROM ${REINDEX_TASK_BASE_IMAGE}
COPY native/nodejs/ /opt/nodejs/
COPY task/ /var/task/
# As on Lambda: the native modules resolve through NODE_PATH (the bundle require()s them).
ENV NODE_PATH=/opt/nodejs/node_modules
WORKDIR /var/task
USER 1000:1000
ENTRYPOINT ["node", "/var/task/index.mjs"]
`;
