import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Logger } from '@aws-lambda-powertools/logger';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { GetQueueAttributesCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { serve } from '@hono/node-server';
import type {
  APIGatewayProxyEventV2,
  APIGatewayProxyStructuredResultV2,
  SQSBatchResponse,
  SQSEvent,
} from 'aws-lambda';
import { Cron } from 'croner';
import { type Context, Hono } from 'hono';
import { z } from 'zod';
import { dynamoDocumentClient, s3Client, sqsClient } from '../../functions/adapters/aws/aws-clients.js';
import { DocumentBucket } from '../../functions/adapters/aws/document-bucket.js';
import { SearchTable } from '../../functions/adapters/aws/search-table.js';
import { resolveModelDirectory } from '../../functions/adapters/model/model-resolution.js';
import { encodeNotificationKey } from '../../functions/core/document-ids.js';
import { apiGatewayEvent } from './api-gateway-event.js';
import { expireItems } from './dynamodb-ttl.js';
import { type LocalAws, startLocalAws } from './emulators.js';
import {
  functionsFromTemplate,
  type LambdaFunctionSettings,
  type LambdaFunctionStats,
  LocalLambdaFunction,
} from './lambda-sandbox.js';
import { runLocalContainer } from './local-container.js';
import {
  type ContainerHandler,
  type ReindexExecution,
  runStateMachine,
  type StepHandler,
} from './reindex-runner.js';
import { SqsPoller } from './sqs-poller.js';
import type { LocalStateMachine } from './state-machine-definition.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const PROJECT_ROOT = join(HERE, '..', '..');
/** Structured logs of the local runtime itself (the handlers log with their own loggers). */
const localLogger = new Logger({ serviceName: 'bisearch-local' });

/** Body of `POST /_local/ingest-status`. */
const ingestStatusRequestSchema = z
  .object({
    objects: z
      .array(z.object({ key: z.string().min(1).max(1_024), etag: z.string().max(200) }).strict())
      .max(10_000),
  })
  .strict();

/** The local surface answers errors as the API does: `{"error": {"code", "message"}}`. */
function localError(c: Context, status: 400 | 404 | 500, code: string, message: string) {
  return c.json({ error: { code, message } }, status);
}

/** The sample corpus ingested on first start: help-centre articles with titles and metadata. */
export const SAMPLE_CORPUS = join(HERE, 'sample', 'help-centre.jsonl');
const SEARCH_PAGE = join(HERE, 'page', 'index.html');
/** File in the data directory that tells the CLI where a running local stack listens. */
export const STACK_FILE = 'stack.json';

export interface LocalStackOptions {
  /** All state lives here: DynamoDB (LevelDB), S3 objects, index versions, scratch space. */
  readonly dataDirectory: string;
  /** HTTP port; 0 picks a free one (written to `stack.json`). */
  readonly port: number;
  readonly host?: string;
  /** Reindex schedule (cron, local time); `null` turns it off. Default nightly at 03:00. */
  readonly reindexSchedule?: string | null;
  /** Ingest the sample corpus on first start (empty data directory). Default true. */
  readonly sampleCorpus?: boolean;
  /** Run the ingest poller (the encode "Lambda"). Default true. */
  readonly ingest?: boolean;
  readonly log?: (line: string) => void;
}

/** What `stack.json` holds while a local stack runs. */
export interface LocalStackInfo {
  readonly url: string;
  readonly pid: number;
  readonly dataDirectory: string;
  readonly startedAt: string;
  readonly environment: Record<string, string>;
  readonly ingestQueueUrl: string;
  readonly deadLetterQueueUrl: string;
}

/** What `GET /_local/status` and `bisearch status` report. */
export interface LocalStatus {
  readonly index: {
    version: string | null;
    vectors: number;
    builtAt: string | null;
    deltaSize: number;
    /** The served version's search ef and the recall its build measured (see GET /health). */
    expansionSearch?: number | null;
    recall?: { target: number; k: number; measured: number; reached: boolean; connectivity: number } | null;
  };
  readonly freshness: { lagMs: number; sequence: number };
  readonly documents: Record<'indexed' | 'failed' | 'deleted', number>;
  readonly ingestQueue: { waiting: number; inFlight: number };
  readonly deadLetters: number;
  readonly lastReindex: { at: string; outcome: 'succeeded' | 'failed'; detail?: string } | null;
  readonly reindexRunning: boolean;
  /** Each function that has run: its deployed limits and what its environments went through. */
  readonly functions: Record<
    string,
    LambdaFunctionStats & { memoryMb: number; timeoutSeconds: number; ephemeralStorageMb: number }
  >;
}

/** AWS clients the local stack uses itself, created once at start. */
interface LocalClients {
  readonly s3: S3Client;
  readonly sqs: SQSClient;
  readonly table: SearchTable;
  readonly documents: DocumentBucket;
}

/** The query function, invoked with an API Gateway v2 event. */
type ApiHandler = (event: APIGatewayProxyEventV2) => Promise<APIGatewayProxyStructuredResultV2>;

/**
 * bisearch on one machine: AWS-compatible emulators holding the stack's resources, the same
 * handlers as on AWS wired like AWS wires them (S3 events → SQS → encode poller; HTTP →
 * API Gateway v2 events → query handler), and the reindex state machine as synthesized by CDK,
 * run on a schedule and on demand. One per process: handlers read their environment at import.
 */
export class LocalStack {
  private reindexing: Promise<ReindexExecution & { executionName: string }> | undefined;
  private cron: Cron | undefined;
  /** Start-up work still running in the background (the first start's sample corpus). */
  startup: Promise<void> | undefined;
  private stopping = false;
  private ttl: ReturnType<typeof setInterval> | undefined;

  private constructor(
    readonly url: string,
    private readonly options: LocalStackOptions,
    private readonly aws: LocalAws,
    private readonly clients: LocalClients,
    private readonly poller: SqsPoller,
    private readonly query: ApiHandler,
    private readonly steps: Record<string, StepHandler>,
    private readonly containers: Record<string, ContainerHandler>,
    private readonly machine: LocalStateMachine,
    private readonly functions: ReadonlyMap<string, LocalLambdaFunction>,
    private readonly server: ReturnType<typeof serve>,
  ) {}

  static async start(options: LocalStackOptions): Promise<LocalStack> {
    const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
    const dataDirectory = options.dataDirectory;
    const firstStart = !existsSync(join(dataDirectory, 'dynamodb'));
    mkdirSync(dataDirectory, { recursive: true });
    const model = await resolveModelDirectory();
    // The CDK app itself gives the reindex state machine and every function's limits, so the
    // local run is the deployed definition. Synthesis runs while the emulators start.
    const synthesized = synthesizeLocalDefinition(model.directory, join(dataDirectory, 'work', 'cdk.out'));
    synthesized.catch(() => {});
    const aws = await startLocalAws({ dataDirectory });
    Object.assign(process.env, aws.environment, {
      BISEARCH_MODEL_DIR: model.directory,
      BISEARCH_POINTER_CHECK_MS: process.env.BISEARCH_POINTER_CHECK_MS ?? '1000',
      POWERTOOLS_LOG_LEVEL: process.env.POWERTOOLS_LOG_LEVEL ?? 'WARN',
      // EMF metrics go to CloudWatch on AWS; locally they would only flood the terminal.
      POWERTOOLS_METRICS_DISABLED: 'true',
    });
    log(`model ${model.directory} (${model.source})`);
    let definition: LocalDefinition;
    try {
      definition = await synthesized;
    } catch (error) {
      await aws.stop();
      throw error;
    }
    // Where reindex builds run, as the deployed step functions' environment says: the Build
    // function's /tmp, and the Fargate task when the template has one.
    const buildFunction = Object.values(definition.functions).find(
      (fn) => fn.handlerExport === 'buildHandler',
    );
    if (buildFunction) process.env.BISEARCH_BUILD_TMP_MB ??= String(buildFunction.ephemeralStorageMb);
    if (Object.values(definition.machine.tasks).some((binding) => binding.kind === 'container'))
      process.env.BISEARCH_FARGATE_BUILD ??= 'true';
    // Each function runs in its own execution environment with its deployed limits.
    const functions = new Map<string, LocalLambdaFunction>();
    for (const [logicalId, settings] of Object.entries(definition.functions))
      functions.set(
        logicalId,
        new LocalLambdaFunction({
          ...settings,
          tmpDirectory: join(dataDirectory, 'lambda', settings.name),
          log,
        }),
      );
    const functionFor = (handlerFile: string, handlerExport = 'handler') => {
      const logicalId = Object.keys(definition.functions).find((id) => {
        const fn = definition.functions[id];
        return fn?.handlerFile.endsWith(handlerFile) && fn.handlerExport === handlerExport;
      });
      const fn = logicalId && functions.get(logicalId);
      if (!fn) throw new Error(`the synthesized stack has no function ${handlerFile}#${handlerExport}`);
      return fn;
    };
    const encodeFunction = functionFor('functions/handlers/encode.ts');
    const queryFunction = functionFor('functions/handlers/query.ts');
    const encode = (event: SQSEvent) => encodeFunction.invoke(event) as Promise<SQSBatchResponse>;
    const query: ApiHandler = (event) =>
      queryFunction.invoke(event) as Promise<APIGatewayProxyStructuredResultV2>;
    const steps: Record<string, StepHandler> = {};
    const containers: Record<string, ContainerHandler> = {};
    for (const binding of Object.values(definition.machine.tasks)) {
      if (binding.kind === 'container') {
        // The Fargate build task: its entry point in a process of its own, as ECS runs the image.
        containers[binding.containerName] = (environment) =>
          runLocalContainer({
            handlerFile: resolvePath(PROJECT_ROOT, binding.handlerFile),
            environment,
            workDirectory: join(dataDirectory, 'containers', binding.containerName),
          });
        continue;
      }
      const fn = functions.get(binding.functionLogicalId);
      if (fn) steps[binding.handlerExport] = (input) => fn.invoke(input);
    }
    // One set of clients for everything the local stack itself does (the handlers have their own).
    const s3 = s3Client(aws.connection);
    const clients: LocalClients = {
      s3,
      sqs: sqsClient(aws.connection),
      table: new SearchTable(dynamoDocumentClient(aws.connection), aws.names.tableName),
      documents: new DocumentBucket(s3, aws.names.documentsBucket),
    };
    const poller = new SqsPoller({
      sqs: clients.sqs,
      queueUrl: aws.ingestQueueUrl,
      handler: encode,
    });

    const app = new Hono();
    let stack: LocalStack | undefined;
    app.get('/', (c) => c.html(readFileSync(SEARCH_PAGE, 'utf8')));
    app.get('/_local/status', async (c) => c.json(await (stack as LocalStack).status()));
    // Which uploads the encoder has processed (object ETag = source record ETag), with outcomes.
    app.post('/_local/ingest-status', async (c) => {
      let body: unknown;
      try {
        body = await c.req.json();
      } catch {
        return localError(c, 400, 'INVALID_JSON', 'the body is not valid JSON');
      }
      const request = ingestStatusRequestSchema.safeParse(body);
      if (!request.success) {
        const issue = request.error.issues[0];
        return localError(c, 400, 'INVALID_REQUEST', `${issue?.path.join('.') || 'body'}: ${issue?.message}`);
      }
      const { table } = clients;
      const answers = [];
      for (const object of request.data.objects) {
        const source = await table.sourceDocuments(object.key);
        const processed = source !== undefined && source.etag === object.etag;
        const documents = [];
        if (processed) {
          for (const docId of source.docIds) {
            const status = await table.documentStatus(docId);
            if (status && status.sourceKey === object.key)
              documents.push({
                docId,
                status: status.status,
                ...(status.error ? { error: status.error } : {}),
              });
          }
        }
        answers.push({
          key: object.key,
          processed,
          documents,
          // Lines and conflicts that are no document's status (positions and codes, no content).
          failures: processed
            ? source.failures.filter((failure) => !source.docIds.includes(failure.docId ?? ''))
            : [],
          failureCount: processed ? source.failureCount : 0,
        });
      }
      return c.json({ objects: answers });
    });
    app.post('/_local/reindex', async (c) => {
      const full = c.req.query('full') !== undefined;
      const buildOn = c.req.query('buildOn');
      if (buildOn !== undefined && buildOn !== 'lambda' && buildOn !== 'fargate')
        return localError(c, 400, 'INVALID_REQUEST', 'buildOn must be "lambda" or "fargate"');
      const running = (stack as LocalStack).reindex({
        ...(full ? { full } : {}),
        ...(buildOn ? { buildOn } : {}),
      });
      if (c.req.query('wait') === undefined) {
        running.catch(() => {});
        return c.json({ started: true }, 202);
      }
      const execution = await running;
      return c.json(execution, execution.status === 'SUCCEEDED' ? 200 : 500);
    });
    // Everything else is the HTTP API, answered by the query Lambda handler.
    app.all('*', async (c) => {
      const url = new URL(c.req.url);
      // API Gateway HTTP APIs hand Lambda the path URL-decoded (and refuse bad encoding).
      let path: string;
      try {
        path = decodeURIComponent(url.pathname);
      } catch {
        return localError(c, 400, 'INVALID_REQUEST', 'the path is not valid URL encoding');
      }
      const body = ['GET', 'HEAD'].includes(c.req.method) ? undefined : await c.req.text();
      const result = await query(
        apiGatewayEvent({
          method: c.req.method,
          path,
          query: url.search.slice(1),
          headers: Object.fromEntries(c.req.raw.headers),
          ...(body !== undefined ? { body } : {}),
        }),
      );
      return new Response(result.body ?? null, {
        status: result.statusCode ?? 200,
        headers: Object.fromEntries(
          Object.entries(result.headers ?? {}).map(([name, value]) => [name, String(value)]),
        ),
      });
    });
    app.onError((error, c) => {
      localLogger.error('local request failed', {
        path: new URL(c.req.url).pathname,
        errorType: (error as Error).name,
        error: (error as Error).message,
      });
      // A failed invocation (timeout, out of memory, a crash): API Gateway answers 500 too.
      return localError(c, 500, 'INTERNAL', 'internal error');
    });
    const host = options.host ?? '127.0.0.1';
    const { server, port } = await new Promise<{ server: ReturnType<typeof serve>; port: number }>(
      (resolve) => {
        const started = serve({ fetch: app.fetch, port: options.port, hostname: host }, (info: AddressInfo) =>
          resolve({ server: started, port: info.port }),
        );
      },
    );
    const url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;
    // The query function asks for a reindex through this route when its delta outgrows the bound.
    process.env.BISEARCH_LOCAL_REINDEX_URL = `${url}/_local/reindex`;
    // Query and encode start now (as a first request would), so a broken model or index shows
    // at start, not on the first search.
    try {
      await Promise.all([queryFunction.warm(), encodeFunction.warm()]);
    } catch (error) {
      await Promise.all([...functions.values()].map((fn) => fn.stop()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await aws.stop();
      throw new Error(`a function failed to initialise: ${(error as Error).message}`);
    }
    stack = new LocalStack(
      url,
      options,
      aws,
      clients,
      poller,
      query,
      steps,
      containers,
      definition.machine,
      functions,
      server,
    );

    // No encoder of an earlier run is alive: its leases (left by a crash) would only delay keys.
    const cleared = await clients.table.clearSourceLeases();
    if (cleared > 0) log(`released ${cleared} object leases left by the last run`);
    // Anything uploaded but not processed before the last stop (SQS here lives in memory) is queued again.
    const requeued = await stack.requeueUnprocessed();
    if (requeued > 0) log(`re-enqueued ${requeued} object events left unprocessed by the last run`);
    if (options.ingest ?? true) poller.start();
    // DynamoDB TTL, which dynalite lacks: expired items go, as on AWS (where it takes up to days).
    stack.ttl = setInterval(() => {
      expireItems(
        dynamoDocumentClient(aws.connection),
        aws.names.tableName,
        Math.floor(Date.now() / 1000),
      ).catch((error: Error) => localLogger.warn('TTL sweep failed', { error: error.message }));
    }, 60_000);
    stack.ttl.unref();
    const schedule = options.reindexSchedule === undefined ? '0 3 * * *' : options.reindexSchedule;
    if (schedule) {
      stack.cron = new Cron(schedule, () => {
        stack?.reindex().then(
          (execution) => log(`scheduled reindex ${execution.executionName}: ${execution.status}`),
          (error: Error) => log(`scheduled reindex failed to start: ${error.message}`),
        );
      });
    }
    const info: LocalStackInfo = {
      url,
      pid: process.pid,
      dataDirectory,
      startedAt: new Date().toISOString(),
      environment: aws.environment,
      ingestQueueUrl: aws.ingestQueueUrl,
      deadLetterQueueUrl: aws.deadLetterQueueUrl,
    };
    writeFileSync(join(dataDirectory, STACK_FILE), `${JSON.stringify(info, null, 2)}\n`);
    if (firstStart && (options.sampleCorpus ?? true)) {
      // Once the API answers, load must never stop the service: the sample corpus finishes in
      // the background, and a slow one is a warning.
      const starter = stack;
      stack.startup = stack.ingestSampleCorpus(log).catch((error: Error) => {
        log(
          `bisearch: warning: the sample corpus is not fully loaded yet (${error.message}); the service keeps running`,
        );
        starter.startup = undefined;
      });
    }
    return stack;
  }

  /** Upload the sample corpus (one JSON document per article), wait for it to be indexed, build the first index. */
  private async ingestSampleCorpus(log: (line: string) => void): Promise<void> {
    const { s3 } = this.clients;
    const lines = readFileSync(SAMPLE_CORPUS, 'utf8').split('\n').filter(Boolean);
    log(`first start: ingesting ${lines.length} sample help-centre articles…`);
    for (const line of lines) {
      const { id } = JSON.parse(line) as { id: string };
      await s3.send(
        new PutObjectCommand({
          Bucket: this.aws.names.documentsBucket,
          Key: DocumentBucket.keyForDocumentId(id),
          Body: line,
        }),
      );
    }
    // Uploads from users may arrive meanwhile; the first index is built however long they take.
    await this.waitForIngest(Number(process.env.BISEARCH_SAMPLE_INGEST_TIMEOUT_MS ?? 120_000)).catch(
      (error: Error) => log(`bisearch: warning: ${error.message}; building the first index anyway`),
    );
    if (this.stopping) return;
    const execution = await this.reindex();
    log(
      `first index built: ${execution.status === 'SUCCEEDED' ? (execution.output as { version?: string }).version : `failed (${execution.error?.message})`}`,
    );
  }

  /** Resolve once the ingest queue has no waiting or in-flight messages. */
  async waitForIngest(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let quietChecks = 0;
    while (quietChecks < 2) {
      if (this.stopping) throw new Error('the stack is stopping');
      if (Date.now() > deadline) throw new Error(`ingest did not finish within ${timeoutMs} ms`);
      const { waiting, inFlight } = await this.queueDepth(this.aws.ingestQueueUrl);
      quietChecks = waiting + inFlight === 0 ? quietChecks + 1 : 0;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  /**
   * Queue a synthetic S3 event for every object whose current version was never processed (no
   * source record or another ETag), and a removal for every processed object that is gone. The
   * fresh sequencer makes them newer than anything stored; an event that was in fact processed
   * is recognised as unchanged content.
   */
  private async requeueUnprocessed(): Promise<number> {
    const { names, ingestQueueUrl } = this.aws;
    const { table, documents, sqs } = this.clients;
    const sources = new Map<string, string>();
    for await (const source of table.sources()) sources.set(source.sourceKey, source.etag);
    const objects = await documents.list();
    const present = new Set(objects.map((object) => object.key));
    const events: Array<{ key: string; kind: 'ObjectCreated:Put' | 'ObjectRemoved:Delete' }> = [];
    for (const object of objects)
      if (sources.get(object.key) !== object.etag)
        events.push({ key: object.key, kind: 'ObjectCreated:Put' });
    for (const [key, etag] of sources)
      if (etag && !present.has(key)) events.push({ key, kind: 'ObjectRemoved:Delete' });
    for (const event of events) {
      const record = {
        eventVersion: '2.1',
        eventSource: 'aws:s3',
        awsRegion: 'us-east-1',
        eventTime: new Date().toISOString(),
        eventName: event.kind,
        s3: {
          bucket: { name: names.documentsBucket },
          object: {
            key: encodeNotificationKey(event.key),
            sequencer: this.aws.sequencers.next(event.key),
          },
        },
      };
      await sqs.send(
        new SendMessageCommand({
          QueueUrl: ingestQueueUrl,
          MessageBody: JSON.stringify({ Records: [record] }),
        }),
      );
    }
    return events.length;
  }

  /**
   * Run the reindex state machine now (one at a time: a second call joins the running one).
   * Incremental from the current version unless `full` (or the reindex decides it needs one);
   * `buildOn` overrides where Build and Validate run (`fargate`: the task's entry point, in a
   * process of its own).
   */
  reindex(
    options: { readonly full?: boolean; readonly buildOn?: 'lambda' | 'fargate' } = {},
  ): Promise<ReindexExecution & { executionName: string }> {
    this.reindexing ??= (async () => {
      try {
        const executionName = `local-${new Date().toISOString().replace(/[:.]/g, '-')}`;
        const execution = await runStateMachine(this.machine, this.steps, {
          executionName,
          containers: this.containers,
          input: {
            trigger: 'local',
            ...(options.full ? { full: true } : {}),
            ...(options.buildOn ? { buildOn: options.buildOn } : {}),
          },
          retryDelayMs: 1_000,
        });
        return { ...execution, executionName };
      } finally {
        this.reindexing = undefined;
      }
    })();
    return this.reindexing;
  }

  async status(): Promise<LocalStatus> {
    const { table } = this.clients;
    const health = JSON.parse(
      (await this.query(apiGatewayEvent({ method: 'GET', path: '/health' }))).body ?? '{}',
    );
    const documents = { indexed: 0, failed: 0, deleted: 0 };
    for await (const status of table.statuses())
      if (status.status in documents) documents[status.status as keyof typeof documents] += 1;
    const pointer = await table.readPointer();
    return {
      index: health.index,
      freshness: health.freshness,
      documents,
      ingestQueue: await this.queueDepth(this.aws.ingestQueueUrl),
      deadLetters: (await this.queueDepth(this.aws.deadLetterQueueUrl)).waiting,
      lastReindex: pointer.lastReindex ?? null,
      reindexRunning: this.reindexing !== undefined,
      functions: Object.fromEntries(
        [...this.functions.values()]
          .filter((fn) => fn.stats.inits > 0)
          .map((fn) => [
            fn.settings.name,
            {
              memoryMb: fn.settings.memoryMb,
              timeoutSeconds: fn.settings.timeoutSeconds,
              ephemeralStorageMb: fn.settings.ephemeralStorageMb,
              ...fn.stats,
              peakMemoryMb: Math.round(fn.stats.peakMemoryMb),
              peakStorageMb: Math.round(fn.stats.peakStorageMb * 10) / 10,
            },
          ]),
      ),
    };
  }

  private async queueDepth(queueUrl: string): Promise<{ waiting: number; inFlight: number }> {
    const attributes = (
      await this.clients.sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: queueUrl,
          AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
        }),
      )
    ).Attributes;
    return {
      waiting: Number(attributes?.ApproximateNumberOfMessages ?? 0),
      inFlight: Number(attributes?.ApproximateNumberOfMessagesNotVisible ?? 0),
    };
  }

  /** Stop everything: scheduler, poller (after its current batch), HTTP server, emulators. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.cron?.stop();
    clearInterval(this.ttl);
    await this.startup;
    await this.poller.stop();
    await this.reindexing?.catch(() => {});
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await Promise.all([...this.functions.values()].map((fn) => fn.stop()));
    await this.aws.stop();
    rmSync(join(this.options.dataDirectory, STACK_FILE), { force: true });
  }
}

/** What the local runner takes from the synthesized stack. */
interface LocalDefinition {
  readonly machine: LocalStateMachine;
  readonly functions: Record<string, LambdaFunctionSettings>;
}

/** Synthesize the CDK stack (no bundling): its reindex state machine and its functions' limits. */
async function synthesizeLocalDefinition(modelDirectory: string, outdir: string): Promise<LocalDefinition> {
  const [{ App }, { parseStackConfig }, { SearchStack }, { stateMachineFromTemplate }] = await Promise.all([
    import('aws-cdk-lib'),
    import('../config.js'),
    import('../search-stack.js'),
    import('./state-machine-definition.js'),
  ]);
  // Only the definition is needed: no bundling, and no copying of the layer assets into the output.
  const app = new App({
    outdir,
    context: { 'aws:cdk:bundling-stacks': [], 'aws:cdk:disable-asset-staging': true },
  });
  const stack = new SearchStack(app, 'Local', { config: parseStackConfig({}), modelDirectory });
  const template = app.synth().getStackByName(stack.stackName).template;
  return {
    machine: stateMachineFromTemplate(template),
    functions: functionsFromTemplate(template, PROJECT_ROOT),
  };
}
