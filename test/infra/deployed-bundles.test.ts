/**
 * The deployed bundles, run as Lambda would run them: the synthesized function assets and layer
 * assets of a real `cdk synth` (local esbuild bundling), the layers laid out as Lambda mounts
 * them, and each bundle's init plus one invocation in a plain Node process of its own.
 *
 * What is modelled and what is not:
 * - `<opt>` (a temporary directory) stands for `/opt`: `<opt>/nodejs/node_modules` is the native
 *   layer asset, `<opt>/model` the model layer asset. Lambda mounts layers by extracting them
 *   into /opt; here they are symbolic links to the assets (Node resolves packages through their
 *   real paths either way).
 * - The function's code is its asset directory (Lambda's /var/task), which has no node_modules:
 *   nothing of the project's own node_modules can be found from it.
 * - NODE_PATH is set as the Node.js runtime sets it (`/opt/nodejs/node_modules` among others),
 *   pointing at `<opt>`. The bundle is loaded with `import()` of its file URL, as the runtime
 *   loads an .mjs handler (test/support/lambda-node-runtime.mjs).
 * - Not modelled: this machine runs Node 20, Lambda nodejs22.x; Amazon Linux's GLIBC (checked
 *   separately by the layer build); the runtime's own /var/runtime modules; variables that say
 *   `/opt/model` are pointed at `<opt>/model` instead, since /opt cannot be written here; AWS
 *   services are the emulators this test starts.
 *
 * An ES `import` of `usearch` or `onnxruntime-node` from the bundle fails here exactly as on
 * Lambda (ESM resolution ignores NODE_PATH); the control case below shows that.
 */
import { execFile } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { ReceiveMessageCommand as ReceiveSqsMessage } from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dynamoDocumentClient, s3Client, sqsClient } from '../../functions/adapters/aws/aws-clients.js';
import { SearchTable } from '../../functions/adapters/aws/search-table.js';
import { apiGatewayEvent } from '../../infra/local/api-gateway-event.js';
import { type LocalAws, startLocalAws } from '../../infra/local/emulators.js';
import { type SynthesizedStack, synthesizeStack } from '../support/synth.js';

const RUNTIME_SHIM = fileURLToPath(new URL('../support/lambda-node-runtime.mjs', import.meta.url));

let synthesized: SynthesizedStack;
let aws: LocalAws;
let opt: string;
let scratch: string;
/** The snapshot step's output (the reindex state Build starts from). */
let snapshotState: unknown;

const resources = () => Object.entries(synthesized.json.Resources);
type TemplateResource = SynthesizedStack['json']['Resources'][string];
function assetOf(predicate: (resource: TemplateResource) => boolean): string {
  const found = resources().find(([, resource]) => predicate(resource));
  if (!found?.[1].Metadata?.['aws:asset:path']) throw new Error('asset not found in the template');
  return join(synthesized.outdir, found[1].Metadata['aws:asset:path']);
}
/** The S3 notifications that landed in the emulated ingest queue (as on AWS), as one SQS event. */
async function ingestEvent(count: number): Promise<SQSEvent> {
  const sqs = sqsClient(aws.connection);
  const messages: Array<{ MessageId?: string; ReceiptHandle?: string; Body?: string }> = [];
  for (let attempt = 0; attempt < 50 && messages.length < count; attempt += 1) {
    messages.push(
      ...((
        await sqs.send(
          new ReceiveSqsMessage({
            QueueUrl: aws.ingestQueueUrl,
            WaitTimeSeconds: 1,
            MaxNumberOfMessages: 10,
          }),
        )
      ).Messages ?? []),
    );
  }
  expect(messages).toHaveLength(count);
  return {
    Records: messages.map((message) => ({
      messageId: message.MessageId as string,
      receiptHandle: message.ReceiptHandle as string,
      body: message.Body as string,
      attributes: {
        ApproximateReceiveCount: '1',
        SentTimestamp: String(Date.now()),
        SenderId: 'test',
        ApproximateFirstReceiveTimestamp: String(Date.now()),
      },
      messageAttributes: {},
      md5OfBody: '',
      eventSource: 'aws:sqs',
      eventSourceARN: `arn:aws:sqs:us-east-1:000000000000:${aws.names.ingestQueue}`,
      awsRegion: 'us-east-1',
    })),
  };
}

/** A function's code directory and handler export, by construct path (e.g. `Ingest/Encode`). */
function functionAt(path: string): { code: string; file: string; handlerExport: string } {
  const found = resources().find(
    ([, resource]) => resource.Metadata?.['aws:cdk:path'] === `Test/${path}/Resource`,
  );
  if (!found) throw new Error(`no function at ${path}`);
  const handler = String(found[1].Properties.Handler);
  const code = join(synthesized.outdir, found[1].Metadata['aws:asset:path']);
  return {
    code,
    file: join(code, `${handler.slice(0, handler.lastIndexOf('.'))}.mjs`),
    handlerExport: handler.slice(handler.lastIndexOf('.') + 1),
  };
}

/** The variables Lambda would give the process, with AWS pointed at the emulators. */
function lambdaEnvironment(): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    // As the Node.js runtime sets it, with <opt> for /opt and the code directory for /var/task.
    NODE_PATH: [join(opt, 'nodejs', 'node22', 'node_modules'), join(opt, 'nodejs', 'node_modules')].join(':'),
    ...aws.environment,
    BISEARCH_MODEL_DIR: join(opt, 'model'),
    BISEARCH_WORK_DIR: join(scratch, 'work'),
    BISEARCH_INTRA_OP_THREADS: '1',
    POWERTOOLS_LOG_LEVEL: 'ERROR',
    POWERTOOLS_METRICS_DISABLED: 'true',
  };
}

interface InvocationOutcome {
  ok: boolean;
  results?: unknown[];
  error?: { name?: string; code?: string; message: string };
}

/** Run a bundle's init and invoke `handlerExport` once per event, in a fresh Node process. */
function invokeBundle(
  fn: { code: string; file: string; handlerExport: string },
  events: unknown[],
): Promise<InvocationOutcome> {
  const eventsFile = join(scratch, `events-${fn.handlerExport}-${Date.now()}.json`);
  writeFileSync(eventsFile, JSON.stringify(events));
  // Asynchronous: the emulators answer from this process's event loop.
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [RUNTIME_SHIM, fn.file, fn.handlerExport, eventsFile],
      { cwd: fn.code, env: lambdaEnvironment(), timeout: 45_000, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const line = stdout.split('\n').find((candidate) => candidate.startsWith('BISEARCH_RESULT '));
        if (!line) {
          reject(
            new Error(`bundle ${fn.file} printed no result (${error?.message}): ${stderr.slice(-2000)}`),
          );
          return;
        }
        resolve(JSON.parse(line.slice('BISEARCH_RESULT '.length)) as InvocationOutcome);
      },
    );
  });
}

beforeAll(async () => {
  synthesized = synthesizeStack({}, { bundle: true, nag: false });
  scratch = mkdtempSync(join(tmpdir(), 'bisearch-lambda-'));
  opt = join(scratch, 'opt');
  const nativeLayer = assetOf(
    (resource) =>
      resource.Type === 'AWS::Lambda::LayerVersion' &&
      String(resource.Properties.Description).includes('onnxruntime-node'),
  );
  const modelLayer = assetOf(
    (resource) =>
      resource.Type === 'AWS::Lambda::LayerVersion' &&
      String(resource.Properties.Description).includes('embedding model'),
  );
  mkdirSync(opt);
  symlinkSync(join(nativeLayer, 'nodejs'), join(opt, 'nodejs'));
  symlinkSync(join(modelLayer, 'model'), join(opt, 'model'));
  aws = await startLocalAws();
}, 120_000);
afterAll(async () => {
  await aws?.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('deployed bundles with the layers as Lambda mounts them', () => {
  it('control: from a function directory, ESM import of a layer package fails and require() finds it', async () => {
    const { code } = functionAt('Query/Query');
    const probe = join(code, 'resolution-probe.mjs');
    writeFileSync(
      probe,
      [
        "import { createRequire } from 'node:module';",
        "let esm = 'loaded';",
        "try { await import('usearch'); } catch (error) { esm = error.code; }",
        "const required = typeof createRequire(import.meta.url)('usearch').Index;",
        "process.stdout.write('\\nBISEARCH_RESULT ' + JSON.stringify({ ok: true, results: [esm, required] }) + '\\n');",
      ].join('\n'),
    );
    try {
      const outcome = await new Promise<InvocationOutcome>((resolve, reject) =>
        execFile(process.execPath, [probe], { cwd: code, env: lambdaEnvironment() }, (error, stdout) => {
          const line = stdout.split('\n').find((candidate) => candidate.startsWith('BISEARCH_RESULT '));
          if (line) resolve(JSON.parse(line.slice(16)));
          else reject(error ?? new Error('no result'));
        }),
      );
      expect(outcome.results).toEqual(['ERR_MODULE_NOT_FOUND', 'function']);
    } finally {
      rmSync(probe);
    }
  });

  it('encode: init loads the model from <opt>/model and onnxruntime from the layer; an SQS batch of an S3 event is embedded', async () => {
    await s3Client(aws.connection).send(
      new PutObjectCommand({
        Bucket: aws.names.documentsBucket,
        Key: 'docs/lambda.md',
        Body: '# Deployed\n\nThe amber-heron bundle runs from its layers.',
      }),
    );
    const event = await ingestEvent(1);
    const outcome = await invokeBundle(functionAt('Ingest/Encode'), [event]);
    expect(outcome).toMatchObject({ ok: true, results: [{ batchItemFailures: [] }] });
  }, 60_000);

  it('reindex: the snapshot step exports what encode wrote', async () => {
    const snapshot = functionAt('Reindex/SnapshotFunction');
    expect(snapshot.handlerExport).toBe('snapshotHandler');
    const outcome = await invokeBundle(snapshot, [{ executionName: 'deployed-bundle' }]);
    expect(outcome).toMatchObject({
      ok: true,
      results: [{ exportKey: 'exports/deployed-bundle/chunks.jsonl', chunks: 1, documents: 1 }],
    });
    snapshotState = outcome.results?.[0];
  }, 60_000);

  it('reindex task: the image context runs as its Dockerfile lays it out; Build and Validate succeed and CollectTaskResult reads the outcome', async () => {
    expect(snapshotState).toBeDefined();
    // The staged Docker context, as `cdk deploy` would hand it to docker build.
    const manifest = JSON.parse(readFileSync(join(synthesized.outdir, 'Test.assets.json'), 'utf8'));
    const images = Object.values(manifest.dockerImages ?? {}) as Array<{ source: { directory: string } }>;
    expect(images).toHaveLength(1);
    const context = join(synthesized.outdir, images[0]?.source.directory as string);
    const dockerfile = readFileSync(join(context, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^FROM public\.ecr\.aws\/lambda\/nodejs:22$/m);
    // Every COPY source exists; only usearch's family is in the image, for this architecture.
    const copies = [...dockerfile.matchAll(/^COPY (\S+) (\S+)$/gm)].map((match) => [match[1], match[2]]);
    expect(copies).toEqual([
      ['native/nodejs/', '/opt/nodejs/'],
      ['task/', '/var/task/'],
    ]);
    expect(readdirSync(join(context, 'native', 'nodejs', 'node_modules')).sort()).toEqual(
      ['bindings', 'file-uri-to-path', 'node-gyp-build', 'usearch'].sort(),
    );
    expect(dockerfile).toContain('ENV NODE_PATH=/opt/nodejs/node_modules');
    expect(dockerfile).toContain('ENTRYPOINT ["node", "/var/task/index.mjs"]');
    // `/opt/nodejs` and `/var/task` of the image are these directories.
    let output = '';
    const exitCode = await new Promise<number>((resolve) => {
      const child = execFile(
        process.execPath,
        [join(context, 'task', 'index.mjs')],
        {
          cwd: join(context, 'task'),
          env: {
            ...lambdaEnvironment(),
            NODE_PATH: join(context, 'native', 'nodejs', 'node_modules'),
            BISEARCH_WORK_DIR: join(scratch, 'task'),
            BISEARCH_TASK_INPUT: JSON.stringify(snapshotState),
          },
          timeout: 60_000,
          maxBuffer: 16 * 1024 * 1024,
        },
        (_error, stdout, stderr) => {
          output = `${stdout}${stderr}`;
        },
      );
      child.once('exit', (code) => resolve(code ?? 1));
    });
    expect(exitCode, output.slice(-3000)).toBe(0);
    const collected = await invokeBundle(functionAt('Reindex/CollectTaskResultFunction'), [snapshotState]);
    expect(collected).toMatchObject({
      ok: true,
      results: [{ executionName: 'deployed-bundle', version: expect.any(String), chunks: 1, graph: 'built' }],
    });
  }, 90_000);

  it('query: init loads model and usearch from the layers; GET /health answers 200 with a readable model id; GET /openapi.json the API description', async () => {
    const query = functionAt('Query/Query');
    const outcome = await invokeBundle(query, [
      apiGatewayEvent({ method: 'GET', path: '/health' }),
      apiGatewayEvent({ method: 'GET', path: '/openapi.json' }),
    ]);
    expect(outcome.ok, JSON.stringify(outcome.error)).toBe(true);
    const [response, openApi] = outcome.results as Array<{ statusCode: number; body: string }>;
    expect(openApi?.statusCode).toBe(200);
    expect(JSON.parse(openApi?.body ?? '{}')).toMatchObject({ openapi: '3.1.0', paths: { '/search': {} } });
    // The client and the LangChain retriever are for callers: none of it is in the Lambda bundle.
    const bundle = readFileSync(query.file, 'utf8');
    expect(bundle).not.toMatch(/@langchain|BisearchRetriever|openapi-fetch|createBisearchClient/);
    expect(response?.statusCode).toBe(200);
    const health = JSON.parse(response?.body ?? '{}');
    // The layer folder is `model`; the name the layer build recorded is what /health shows.
    expect(health.model).toMatchObject({ id: 'use-lite', dimensions: 512 });
    expect(health.model.fingerprint).toMatch(/^sha256:[0-9a-f]{64}$/);
  }, 60_000);

  it('encode: the bundled PDF, DOCX and CSV parsers run in plain Node from the bundle (no node_modules)', async () => {
    const s3 = s3Client(aws.connection);
    const uploads = {
      'docs/bundled/spec.pdf': 'shared-mime-info-spec.pdf',
      'docs/bundled/scan.pdf': 'scanned-page.pdf',
      'docs/bundled/policy.docx': 'travel-policy.docx',
      'docs/bundled/faq.csv': 'faq.csv',
    };
    for (const [key, name] of Object.entries(uploads)) {
      const body = readFileSync(fileURLToPath(new URL(`../fixtures/documents/${name}`, import.meta.url)));
      await s3.send(new PutObjectCommand({ Bucket: aws.names.documentsBucket, Key: key, Body: body }));
    }
    const outcome = await invokeBundle(functionAt('Ingest/Encode'), [await ingestEvent(4)]);
    expect(outcome).toMatchObject({ ok: true, results: [{ batchItemFailures: [] }] });
    const table = new SearchTable(dynamoDocumentClient(aws.connection), aws.names.tableName);
    const status = async (docId: string) => {
      const found = await table.documentStatus(docId);
      return [found?.status, found?.error?.code];
    };
    expect(await status('bundled/spec')).toEqual(['indexed', undefined]);
    expect(await status('bundled/scan')).toEqual(['failed', 'DOCUMENT_NO_TEXT_LAYER']);
    expect(await status('bundled/policy')).toEqual(['indexed', undefined]);
    expect(await status('pay-1')).toEqual(['indexed', undefined]);
    expect((await table.documentStatus('bundled/spec'))?.chunks).toBeGreaterThan(17);
  }, 120_000);
});
