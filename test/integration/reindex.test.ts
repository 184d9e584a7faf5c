import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3Client } from '../../functions/adapters/aws/aws-clients.js';
import { IndexBucket } from '../../functions/adapters/aws/index-bucket.js';
import type { IndexVersionRecord } from '../../functions/adapters/aws/search-table.js';
import { verifySnapshotFiles } from '../../functions/adapters/index/snapshot-files.js';
import { OnnxEmbedder } from '../../functions/adapters/model/onnx-embedder.js';
import type { ReindexState } from '../../functions/adapters/services/reindex-steps.js';
import { SearchRuntime } from '../../functions/adapters/services/search-runtime.js';
import { healthResponseSchema, searchResponseSchema } from '../../functions/core/api-contract.js';
import { EmbeddingSpaceMismatchError } from '../../functions/core/errors.js';
import { MANIFEST_FILE, SNAPSHOT_FILES } from '../../functions/core/snapshot-manifest.js';
import { apiGatewayEvent } from '../../infra/local/api-gateway-event.js';
import {
  functionsFromTemplate,
  type LambdaFunctionSettings,
  LocalLambdaFunction,
} from '../../infra/local/lambda-sandbox.js';
import { runLocalContainer } from '../../infra/local/local-container.js';
import {
  type ContainerHandler,
  type ReindexExecution,
  runStateMachine,
  type StepHandler,
} from '../../infra/local/reindex-runner.js';
import {
  type LocalStateMachine,
  stateMachineFromTemplate,
} from '../../infra/local/state-machine-definition.js';
import { type HandlerStack, startHandlerStack } from '../support/local-stack.js';
import { TINY_BERT_BIENCODER_DIR, USE_LITE_DIR } from '../support/shared-fixtures.js';
import { synthesizeStack } from '../support/synth.js';

let stack: HandlerStack;
let template: ReturnType<typeof synthesizeStack>['json'];
let machine: LocalStateMachine;
let steps: Record<string, StepHandler>;
let indexBucket: IndexBucket;
let runs = 0;

beforeAll(async () => {
  // The definition is the one `cdk synth` produces, not a hand-written copy.
  template = synthesizeStack({}, { nag: false }).json;
  machine = stateMachineFromTemplate(template);
  // Every run may be incremental in this small corpus (the default re-exports at most 20%).
  stack = await startHandlerStack({
    BISEARCH_POINTER_CHECK_MS: '0',
    BISEARCH_INCREMENTAL_MAX_CHANGED_FRACTION: '1',
    BISEARCH_MAX_REMOVED_FRACTION: '1',
    // As the deployed step functions: Build's /tmp, and a Fargate task to move large builds to.
    BISEARCH_BUILD_TMP_MB: '4096',
    BISEARCH_FARGATE_BUILD: 'true',
  });
  steps = (await import('../../functions/handlers/reindex.js')) as unknown as Record<string, StepHandler>;
  indexBucket = new IndexBucket(s3Client(stack.aws.connection), stack.aws.names.indexBucket);
  await stack.upload('docs/a.md', '# Passwords\n\nReset a forgotten password with the crimson-kestrel link.');
  await stack.upload('docs/b.md', '# Invoices\n\nDownload invoices from the billing page as PDF.');
  await stack.upload('docs/c.md', '# Shipping\n\nParcels arrive within five business days.');
  await stack.drainIngest();
});
afterAll(() => stack?.stop());

/** The Fargate build task's entry point, in this process, with the container's environment. */
const taskInProcess: ContainerHandler = async (environment) => {
  const { runReindexTask } = await import('../../functions/handlers/reindex-task.js');
  return runReindexTask({ ...process.env, ...environment });
};

function reindex(
  overrides: Record<string, StepHandler> = {},
  input: Record<string, unknown> = { trigger: 'test' },
  containers: Record<string, ContainerHandler> = { ReindexTask: taskInProcess },
): Promise<ReindexExecution> {
  runs += 1;
  return runStateMachine(
    machine,
    { ...steps, ...overrides },
    { executionName: `run-${runs}`, input, retryDelayMs: 0, containers },
  );
}

/** A published version's chunk records (row order) and its files' checksums. */
async function versionContents(prefix: string) {
  const records: Array<{ chunkId: string; text: string }> = [];
  for await (const line of indexBucket.readLines(`${prefix}${SNAPSHOT_FILES.chunks}`))
    records.push(JSON.parse(line));
  const manifest = JSON.parse(await indexBucket.getText(`${prefix}${MANIFEST_FILE}`));
  return { records, files: manifest.files as Record<string, { sha256: string }>, counts: manifest.counts };
}

const search = async (query: string) =>
  (await stack.http('POST', '/search', { query, mode: 'lexical', k: 10 })).body;
const pointer = () => stack.table.readPointer();

/** Replace one object of an uploaded version (bytes in, bytes out). */
async function tamper(
  prefix: string,
  file: string,
  change: (bytes: Uint8Array) => Uint8Array,
): Promise<void> {
  const s3 = s3Client(stack.aws.connection);
  const object = await s3.send(
    new GetObjectCommand({ Bucket: stack.aws.names.indexBucket, Key: `${prefix}${file}` }),
  );
  const bytes = await (object.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray();
  await s3.send(
    new PutObjectCommand({
      Bucket: stack.aws.names.indexBucket,
      Key: `${prefix}${file}`,
      Body: change(bytes),
    }),
  );
}

/** A build step that corrupts what it uploaded, as a bad disk or a bug would. */
const buildThen = (damage: (state: ReindexState) => Promise<void>): StepHandler =>
  (async (input: ReindexState) => {
    const output = (await steps.buildHandler?.(input as never)) as ReindexState;
    await damage(output);
    return output;
  }) as StepHandler;

describe('reindex state machine as synthesized, with the real step handlers on emulators', () => {
  let firstVersion: string;

  it('snapshots, builds, validates, swaps and prunes; the query Lambda then serves the new version with the same results', async () => {
    const before = await search('crimson kestrel password');
    expect(before.index.version).toBeNull();
    expect(before.index.deltaSize).toBe(3);
    const execution = await reindex();
    expect(execution).toMatchObject({
      status: 'SUCCEEDED',
      states: ['Snapshot', 'BuildCompute', 'Build', 'Validate', 'Swap', 'Prune'],
    });
    const { current } = await pointer();
    expect(current).toMatchObject({ watermark: await stack.table.latestSequence(), vectors: 3 });
    firstVersion = current?.version as string;
    const after = await search('crimson kestrel password');
    expect(after.index).toMatchObject({ version: firstVersion, deltaSize: 0, lagMs: expect.any(Number) });
    expect(after.results.map((result: { docId: string }) => result.docId)).toEqual(
      before.results.map((result: { docId: string }) => result.docId),
    );
    expect((execution.output as ReindexState).recall).toBeGreaterThanOrEqual(0.95);
    // Build chose the search ef for the recall target (three rows: the smallest ef, 64, suffices);
    // the query Lambda opens the version with it and /health reports it.
    expect(execution.output).toMatchObject({ recallTarget: 0.98, expansionSearch: 64 });
    expect((await stack.http('GET', '/health')).body.index).toMatchObject({
      version: firstVersion,
      expansionSearch: 64,
      recall: { target: 0.98, k: 10, measured: 1, reached: true, connectivity: 16 },
    });
    // Changes after the watermark flow into the delta on top of the new version.
    await stack.upload('docs/d.md', '# Gift cards\n\nRedeem the obsidian-marten code at checkout.');
    await stack.drainIngest();
    expect(await search('obsidian marten')).toMatchObject({
      index: { version: firstVersion, deltaSize: 1 },
      results: [{ docId: 'd' }],
    });
  });

  it('a corrupt snapshot (flipped bytes) fails validation once, the pointer stays, the bad version is removed', async () => {
    let uploaded = '';
    const execution = await reindex({
      buildHandler: buildThen(async (state) => {
        uploaded = state.version as string;
        await tamper(state.prefix as string, 'index.usearch', (bytes) => {
          const copy = Uint8Array.from(bytes);
          copy[copy.length >> 1] = (copy[copy.length >> 1] ?? 0) ^ 0xff;
          return copy;
        });
      }),
    });
    expect(execution.status).toBe('FAILED');
    expect(execution.error?.name).toBe('ReindexFailed');
    expect(execution.stateErrors).toContainEqual(
      expect.objectContaining({
        state: 'Validate',
        error: 'SnapshotValidationFailed',
        cause: expect.stringMatching(/checksum mismatch for index\.usearch/),
      }),
    );
    expect(execution.retries).not.toContain('Validate');
    expect(execution.states).not.toContain('Swap');
    expect(execution.states.slice(-2)).toEqual(['RecordFailure', 'ReindexFailed']);
    const after = await pointer();
    expect(after.current?.version).toBe(firstVersion);
    expect(after.lastReindex).toMatchObject({
      outcome: 'failed',
      detail: expect.stringMatching(/SnapshotValidationFailed/),
    });
    expect(await indexBucket.listVersions()).not.toContain(uploaded);
    expect((await search('crimson kestrel')).index.version).toBe(firstVersion);
  });

  it('a dimension mismatch fails validation and the old pointer stays', async () => {
    const execution = await reindex({
      buildHandler: buildThen(async (state) => {
        await tamper(state.prefix as string, 'manifest.json', (bytes) => {
          const manifest = JSON.parse(Buffer.from(bytes).toString('utf8'));
          manifest.embedding.dimensions = 384;
          return Buffer.from(JSON.stringify(manifest));
        });
      }),
    });
    expect(execution.status).toBe('FAILED');
    expect(execution.stateErrors).toContainEqual(
      expect.objectContaining({
        state: 'Validate',
        error: 'SnapshotValidationFailed',
        cause: expect.stringMatching(/dimensions/),
      }),
    );
    expect((await pointer()).current?.version).toBe(firstVersion);
  });

  it('a rerun after a failure succeeds, retries a transient error, and absorbs the delta into the new version', async () => {
    let throttled = false;
    const execution = await reindex({
      snapshotHandler: (async (input: never) => {
        if (!throttled) {
          throttled = true;
          throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
        }
        return steps.snapshotHandler?.(input);
      }) as StepHandler,
    });
    expect(execution.status).toBe('SUCCEEDED');
    expect(execution.retries).toEqual(['Snapshot']);
    const { current, previous } = await pointer();
    expect(current?.version).not.toBe(firstVersion);
    expect(previous?.version).toBe(firstVersion);
    expect(await search('obsidian marten')).toMatchObject({
      index: { version: current?.version, deltaSize: 0 },
      results: [{ docId: 'd' }],
    });
  });

  it('of two concurrent executions only one swaps; the other hits PointerConflict, is not retried, cleans up and ends superseded (not failed)', async () => {
    // The slow execution freezes its snapshot, then waits while the fast one runs to completion.
    let snapshotTaken: () => void = () => {};
    const slowSnapshotted = new Promise<void>((resolve) => {
      snapshotTaken = resolve;
    });
    let releaseSlow: () => void = () => {};
    const fastDone = new Promise<void>((resolve) => {
      releaseSlow = resolve;
    });
    const slow = reindex({
      snapshotHandler: (async (input: never) => {
        const output = await steps.snapshotHandler?.(input);
        snapshotTaken();
        await fastDone;
        return output;
      }) as StepHandler,
    });
    await slowSnapshotted;
    const fast = await reindex();
    releaseSlow();
    const slowResult = await slow;
    expect(fast.status).toBe('SUCCEEDED');
    // A lost race is not a failure: it ends in its own Succeed state (ExecutionsFailed stays a
    // real signal), cleans up, and leaves the winner's outcome recorded.
    expect(slowResult.status).toBe('SUCCEEDED');
    expect(slowResult.stateErrors).toContainEqual(
      expect.objectContaining({ state: 'Swap', error: 'PointerConflict' }),
    );
    expect(slowResult.retries).not.toContain('Swap');
    expect(slowResult.states.slice(-2)).toEqual(['RecordSuperseded', 'SupersededByConcurrentReindex']);
    expect(slowResult.states).not.toContain('RecordFailure');
    expect(slowResult.output).toMatchObject({ Error: 'PointerConflict' });
    const after = await pointer();
    expect(after.current?.version).toBe((fast.output as ReindexState).version);
    expect(after.lastReindex?.outcome).not.toBe('failed');
  });

  it('a Snapshot that fails with a non-transient error is not retried, and its failure removes only its own export', async () => {
    const s3 = s3Client(stack.aws.connection);
    const keys = async (prefix: string) =>
      (
        await s3.send(new ListObjectsV2Command({ Bucket: stack.aws.names.indexBucket, Prefix: prefix }))
      ).Contents?.map((object) => object.Key) ?? [];
    // Another run's export (e.g. a run still in progress) must survive this run's cleanup.
    await indexBucket.putText('exports/other-run/chunks.jsonl', '{}\n');
    let attempts = 0;
    let exportKey = '';
    const execution = await reindex({
      snapshotHandler: (async (input: never) => {
        attempts += 1;
        // The export is written, then /tmp runs out: retrying would hit the same wall.
        const output = (await steps.snapshotHandler?.(input)) as ReindexState | undefined;
        exportKey = output?.exportKey ?? '';
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      }) as StepHandler,
    });
    const executionName = `run-${runs}`;
    // Incremental here (a version is current): the changes since it.
    expect(exportKey).toBe(`exports/${executionName}/changes.jsonl`);
    expect(execution.status).toBe('FAILED');
    expect(attempts).toBe(1);
    expect(execution.retries).toEqual([]);
    expect(execution.states).toEqual(['Snapshot', 'RecordFailure', 'ReindexFailed']);
    expect(await keys(`exports/${executionName}/`)).toEqual([]);
    expect(await keys('exports/other-run/')).toEqual(['exports/other-run/chunks.jsonl']);
    expect((await pointer()).lastReindex).toMatchObject({
      outcome: 'failed',
      detail: expect.stringMatching(/ENOSPC/),
    });
  });

  it('the query Lambda refuses a swapped-in version that fails verification and keeps serving the current one', async () => {
    const serving = (await pointer()).current;
    const before = await search('crimson kestrel');
    expect(before.index.version).toBe(serving?.version);
    // A version that passed validation but was damaged in S3 afterwards.
    const damaged = `99991231T000000Z-damaged`;
    const prefix = IndexBucket.versionPrefix(damaged);
    const s3 = s3Client(stack.aws.connection);
    for (const file of [...Object.values(SNAPSHOT_FILES), MANIFEST_FILE]) {
      const object = await s3.send(
        new GetObjectCommand({ Bucket: stack.aws.names.indexBucket, Key: `${serving?.prefix}${file}` }),
      );
      const bytes = Uint8Array.from(
        await (object.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
      );
      if (file === 'vectors.f32') bytes[0] = (bytes[0] ?? 0) ^ 0xff;
      await s3.send(
        new PutObjectCommand({ Bucket: stack.aws.names.indexBucket, Key: `${prefix}${file}`, Body: bytes }),
      );
    }
    await stack.table.swapPointer(
      { ...(serving as NonNullable<typeof serving>), version: damaged, prefix },
      serving,
    );
    const after = await search('crimson kestrel');
    expect(after.index.version).toBe(serving?.version);
    expect(after.results).toEqual(before.results);
    expect((await stack.http('GET', '/health')).body).toMatchObject({
      status: 'degraded',
      index: { version: serving?.version },
    });
    // Roll back (the previous version is kept for this) and the runtime is healthy again.
    await stack.table.swapPointer(serving as NonNullable<typeof serving>, {
      ...(serving as NonNullable<typeof serving>),
      version: damaged,
      prefix,
    });
    await indexBucket.deletePrefix(prefix);
  });

  it('a download hashes every file while its ranges arrive, and a damaged file leaves no manifest behind', async () => {
    const serving = (await pointer()).current as NonNullable<Awaited<ReturnType<typeof pointer>>['current']>;
    const work = mkdtempSync(join(tmpdir(), 'bisearch-download-'));
    try {
      // Tiny parts, few in flight: ranges finish out of order and must be hashed in order.
      const options = { partBytes: 500, concurrency: 3 };
      const manifest = await indexBucket.downloadSnapshot(serving.prefix, join(work, 'good'), options);
      expect(manifest.version).toBe(serving.version);
      expect(manifest.files[SNAPSHOT_FILES.vectors]?.bytes).toBeGreaterThan(10 * options.partBytes);
      // What the download verified is what is on disk.
      await verifySnapshotFiles(join(work, 'good'), manifest);

      const damaged = IndexBucket.versionPrefix('99991231T000000Z-download');
      await indexBucket.uploadSnapshot(join(work, 'good'), '99991231T000000Z-download');
      await tamper(damaged, SNAPSHOT_FILES.vectors, (bytes) => {
        const copy = Uint8Array.from(bytes);
        copy[copy.length - 1] = (copy[copy.length - 1] ?? 0) ^ 0x01;
        return copy;
      });
      await expect(indexBucket.downloadSnapshot(damaged, join(work, 'bad'), options)).rejects.toThrow(
        /checksum mismatch for vectors\.f32/,
      );
      expect(existsSync(join(work, 'bad', MANIFEST_FILE))).toBe(false);
      await indexBucket.deletePrefix(damaged);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });

  it('a query runtime starting cold fetches and opens the snapshot while its model loads; a model of another space fails the start', async () => {
    const serving = (await pointer()).current as NonNullable<Awaited<ReturnType<typeof pointer>>['current']>;
    const work = mkdtempSync(join(tmpdir(), 'bisearch-start-'));
    const useLite = await OnnxEmbedder.load(USE_LITE_DIR);
    const tinyBert = await OnnxEmbedder.load(TINY_BERT_BIENCODER_DIR);
    const start = (embedder: Promise<OnnxEmbedder>, directory: string) =>
      SearchRuntime.start({
        table: stack.table,
        indexBucket,
        workDirectory: join(work, directory),
        embedder,
      });
    try {
      // The model finishes loading only once the snapshot is on disk: a start that waited for the
      // model before fetching would never get there.
      const downloaded = join(work, 'overlap', serving.version, MANIFEST_FILE);
      const modelLoaded = new Promise<OnnxEmbedder>((resolve) => {
        const watch = setInterval(() => {
          if (!existsSync(downloaded)) return;
          clearInterval(watch);
          resolve(useLite);
        }, 5);
      });
      const runtime = await start(modelLoaded, 'overlap');
      expect(runtime.health().index.version).toBe(serving.version);
      // What the runtime reports is what the API contract publishes (strict: no undeclared keys).
      expect(healthResponseSchema.parse(runtime.health()).index.recall).not.toBeUndefined();
      const answer = await runtime.search({ query: 'crimson kestrel', mode: 'lexical', k: 3 });
      searchResponseSchema.parse(answer);
      expect(answer.results[0]?.docId).toBe('a');

      await expect(start(Promise.resolve(tinyBert), 'other-space')).rejects.toBeInstanceOf(
        EmbeddingSpaceMismatchError,
      );
      const broken = Promise.reject(new Error('model.onnx is not a model'));
      await expect(start(broken, 'broken-model')).rejects.toThrow(/model\.onnx is not a model/);
    } finally {
      await useLite.dispose();
      await tinyBert.dispose();
      rmSync(work, { recursive: true, force: true });
    }
  }, 20_000);

  it('a query runtime holds at most two versions in /tmp, also while a new one downloads', async () => {
    const work = mkdtempSync(join(tmpdir(), 'bisearch-two-versions-'));
    const embedder = await OnnxEmbedder.load(USE_LITE_DIR);
    const present: number[] = [];
    const counting = Object.create(indexBucket) as IndexBucket;
    counting.downloadSnapshot = async (prefix: string, directory: string) => {
      present.push(readdirSync(work).length);
      return indexBucket.downloadSnapshot(prefix, directory);
    };
    try {
      const runtime = await SearchRuntime.start({
        table: stack.table,
        indexBucket: counting,
        workDirectory: work,
        embedder,
        maxStalenessMs: 0,
        pointerCheckIntervalMs: 0,
      });
      for (let swap = 0; swap < 3; swap += 1) {
        expect((await reindex()).status).toBe('SUCCEEDED');
        await runtime.search({ query: 'crimson kestrel', mode: 'lexical', k: 1 });
        expect(runtime.health().index.version).toBe((await pointer()).current?.version);
        expect(readdirSync(work).length).toBeLessThanOrEqual(2);
      }
      // When each new version started to arrive, at most the serving one was on disk.
      expect(present.length).toBeGreaterThanOrEqual(3);
      expect(Math.max(...present)).toBeLessThanOrEqual(1);
    } finally {
      await embedder.dispose();
      rmSync(work, { recursive: true, force: true });
    }
  }, 60_000);

  it('prune keeps the newest versions plus current and previous', async () => {
    for (let i = 0; i < 3; i += 1) expect((await reindex()).status).toBe('SUCCEEDED');
    const versions = await indexBucket.listVersions();
    const { current, previous } = await pointer();
    expect(versions.length).toBeLessThanOrEqual(3);
    expect(versions).toContain(current?.version);
    expect(versions).toContain(previous?.version);
  });

  it('incremental: exports only the documents changed since the current version and merges them into its rows; the result equals a full rebuild', async () => {
    const base = (await pointer()).current as IndexVersionRecord;
    const before = await versionContents(base.prefix);
    expect(before.records.map((record) => record.chunkId)).toEqual(expect.arrayContaining(['b#0', 'c#0']));
    // Since the base: f is added, b changes, c is deleted.
    await stack.upload('docs/f.md', '# Warranty\n\nThe amber-osprey warranty covers two years.');
    await stack.upload(
      'docs/b.md',
      '# Invoices\n\nDownload invoices and credit notes from the billing page.',
    );
    await stack.remove('docs/c.md');
    await stack.drainIngest();
    const incremental = await reindex();
    expect(incremental.status).toBe('SUCCEEDED');
    const expectedIds = [
      ...before.records.map((record) => record.chunkId).filter((id) => id !== 'c#0'),
      'f#0',
    ].sort();
    expect(incremental.output).toMatchObject({
      mode: 'incremental',
      base: { version: base.version, watermark: base.watermark },
      changedDocuments: 3,
      chunks: expectedIds.length,
      // The base's graph, updated: b and c removed, b and f added.
      graph: 'updated',
    });
    const merged = await versionContents((await pointer()).current?.prefix as string);
    expect(merged.records.map((record) => record.chunkId)).toEqual(expectedIds);
    expect(merged.records.find((record) => record.chunkId === 'b#0')?.text).toContain('credit notes');
    expect((await search('amber osprey')).results[0]).toMatchObject({ docId: 'f' });
    expect((await search('credit notes')).results[0]).toMatchObject({ docId: 'b' });
    expect((await search('parcels shipping')).results).toEqual([]);

    // Forced full rebuild of the same state: the same rows, byte for byte.
    const full = await reindex({}, { trigger: 'test', full: true });
    expect(full.output).toMatchObject({
      mode: 'full',
      fullReason: 'requested',
      chunks: expectedIds.length,
      graph: 'built',
    });
    const rebuilt = await versionContents((await pointer()).current?.prefix as string);
    expect(rebuilt.records).toEqual(merged.records);
    for (const file of [SNAPSHOT_FILES.chunks, SNAPSHOT_FILES.vectors, SNAPSHOT_FILES.lexical])
      expect(rebuilt.files[file]?.sha256).toBe(merged.files[file]?.sha256);
  });

  it('incremental runs fall back to full rebuilds: too many changes, a change log that may have expired, a hole in it; a damaged base fails Build', async () => {
    const { ReindexSteps } = await import('../../functions/adapters/services/reindex-steps.js');
    const current = (await pointer()).current as IndexVersionRecord;
    let now = Date.parse(current.builtAt);
    const stepsWith = (incremental: { maxChangedFraction: number }) =>
      new ReindexSteps({
        table: stack.table,
        indexBucket,
        workDirectory: mkdtempSync(join(tmpdir(), 'bisearch-incremental-')),
        incremental,
        clock: () => now,
      });
    await stack.upload('docs/e.md', '# Returns\n\nReturn an item within thirty days.');
    await stack.drainIngest();
    // One changed document of the version's n: incremental at a share of 1/n, full below it.
    const { documents } = (await versionContents(current.prefix)).counts as { documents: number };
    expect(
      await stepsWith({ maxChangedFraction: 1 / documents }).snapshot({ executionName: 'plan-1' }),
    ).toMatchObject({ mode: 'incremental', changedDocuments: 1 });
    expect(
      await stepsWith({ maxChangedFraction: 0.99 / documents }).snapshot({ executionName: 'plan-2' }),
    ).toMatchObject({
      mode: 'full',
      fullReason: `more than 0 of version ${current.version}'s ${documents} documents changed`,
      documents: documents + 1,
    });
    // Six days and a bit later the change log may have expired past the watermark (TTL 7 days).
    now += 6 * 24 * 3600 * 1000 + 1;
    expect(await stepsWith({ maxChangedFraction: 1 }).snapshot({ executionName: 'plan-3' })).toMatchObject({
      mode: 'full',
      fullReason: `version ${current.version} is older than the change log's retention`,
    });
    now = Date.parse(current.builtAt);
    // A base whose vectors were damaged after publication: Build fails, nothing is uploaded.
    const steps = stepsWith({ maxChangedFraction: 1 });
    const planned = await steps.snapshot({ executionName: 'plan-4' });
    await tamper(current.prefix, SNAPSHOT_FILES.vectors, (bytes) => {
      const copy = Uint8Array.from(bytes);
      copy[5] = (copy[5] as number) ^ 0xff;
      return copy;
    });
    try {
      await expect(steps.build(planned)).rejects.toThrow(/differ from its manifest/);
    } finally {
      await tamper(current.prefix, SNAPSHOT_FILES.vectors, (bytes) => {
        const copy = Uint8Array.from(bytes);
        copy[5] = (copy[5] as number) ^ 0xff;
        return copy;
      });
    }
    // A sequence taken whose entry never comes (its writer died): that change is unknown.
    const lost = await stack.table.takeSequence();
    const afterHole = new ReindexSteps({
      table: stack.table,
      indexBucket,
      workDirectory: mkdtempSync(join(tmpdir(), 'bisearch-incremental-')),
      incremental: { maxChangedFraction: 1 },
      changeLogHoleGraceMs: 50,
      clock: () => now,
    });
    expect(await afterHole.snapshot({ executionName: 'plan-hole' })).toMatchObject({
      mode: 'full',
      fullReason: expect.stringContaining(
        `no entry for 1 sequence(s) since version ${current.version} (first ${lost})`,
      ),
    });
  });
});

describe('Build and Validate on the Fargate task (ecs:runTask.sync) for versions too large for a Lambda', () => {
  const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));
  /** The container as the local stack runs it: its entry point's source in a process of its own. */
  const taskProcess: ContainerHandler = (environment) => {
    const binding = Object.values(machine.tasks).find((task) => task.kind === 'container');
    if (binding?.kind !== 'container') throw new Error('the template has no container task');
    return runLocalContainer({
      handlerFile: join(PROJECT_ROOT, binding.handlerFile),
      environment,
      workDirectory: mkdtempSync(join(tmpdir(), 'bisearch-task-')),
    });
  };

  it('Snapshot moves a version past the Lambda bounds to Fargate, says why, and fails clearly where no task is deployed', async () => {
    const { ReindexSteps } = await import('../../functions/adapters/services/reindex-steps.js');
    const stepsWith = (buildCompute: ConstructorParameters<typeof ReindexSteps>[0]['buildCompute']) =>
      new ReindexSteps({
        table: stack.table,
        indexBucket,
        workDirectory: mkdtempSync(join(tmpdir(), 'bisearch-compute-')),
        incremental: false,
        ...(buildCompute ? { buildCompute } : {}),
      });
    const { chunks } = (await stepsWith(undefined).snapshot({ executionName: 'compute-0' })) as {
      chunks: number;
    };
    expect(await stepsWith(undefined).snapshot({ executionName: 'compute-1' })).toMatchObject({
      buildCompute: 'lambda',
    });
    expect(
      await stepsWith({ lambdaTmpMb: 4096, fargateAvailable: true }).snapshot({ executionName: 'compute-2' }),
    ).toMatchObject({ buildCompute: 'lambda', buildComputeReason: 'fits a Lambda with 2× margin' });
    expect(
      await stepsWith({ lambdaTmpMb: 4096, lambdaMaxChunks: chunks - 1, fargateAvailable: true }).snapshot({
        executionName: 'compute-3',
      }),
    ).toMatchObject({
      buildCompute: 'fargate',
      buildComputeReason: `${chunks} chunks is more than a Lambda build takes (${chunks - 1})`,
    });
    await expect(
      stepsWith({ lambdaTmpMb: 4096, lambdaMaxChunks: chunks - 1, fargateAvailable: false }).snapshot({
        executionName: 'compute-4',
      }),
    ).rejects.toMatchObject({
      name: 'BuildComputeUnavailable',
      message: expect.stringContaining('fargateBuild'),
    });
    await expect(
      stepsWith(undefined).snapshot({ executionName: 'compute-5', request: { buildOn: 'fargate' } }),
    ).rejects.toMatchObject({ name: 'BuildComputeUnavailable' });
    for (const name of ['compute-0', 'compute-1', 'compute-2', 'compute-3'])
      await indexBucket.deletePrefix(`exports/${name}/`);
  });

  it('the state machine runs the task as a process of its own; its version equals a Lambda build and serves', async () => {
    const inputs: string[] = [];
    const onFargate = await reindex(
      {},
      { trigger: 'test', full: true, buildOn: 'fargate' },
      {
        ReindexTask: (environment) => {
          inputs.push(environment.BISEARCH_TASK_INPUT ?? '');
          return taskProcess(environment);
        },
      },
    );
    // ECS allows 8,192 characters of container overrides in all: the state stays far below.
    expect(inputs).toHaveLength(1);
    expect(JSON.parse(inputs[0] as string)).toMatchObject({
      buildCompute: 'fargate',
      exportKey: expect.any(String),
    });
    expect((inputs[0] as string).length).toBeLessThan(4_096);
    expect(onFargate.status).toBe('SUCCEEDED');
    expect(onFargate.states).toEqual([
      'Snapshot',
      'BuildCompute',
      'BuildOnFargate',
      'CollectTaskResult',
      'Swap',
      'Prune',
    ]);
    expect(onFargate.output).toMatchObject({
      mode: 'full',
      buildCompute: 'fargate',
      buildComputeReason: 'requested',
      graph: 'built',
      recall: expect.any(Number),
    });
    const current = (await pointer()).current as IndexVersionRecord;
    expect(current.version).toBe((onFargate.output as ReindexState).version);
    const built = await versionContents(current.prefix);
    expect(await search('crimson kestrel')).toMatchObject({
      results: [expect.objectContaining({ docId: 'a' })],
    });
    // The same corpus built by the Lambdas: the same files, byte for byte.
    const inLambdas = await reindex({}, { trigger: 'test', full: true });
    expect(inLambdas.states).toEqual(['Snapshot', 'BuildCompute', 'Build', 'Validate', 'Swap', 'Prune']);
    expect(inLambdas.output).toMatchObject({ buildCompute: 'lambda' });
    const rebuilt = await versionContents((await pointer()).current?.prefix as string);
    for (const file of [SNAPSHOT_FILES.chunks, SNAPSHOT_FILES.vectors, SNAPSHOT_FILES.lexical])
      expect(rebuilt.files[file]?.sha256).toBe(built.files[file]?.sha256);
  });

  it('a step failing in the task fails the execution under its own name; a task that dies fails it too; nothing is retried, the pointer stays', async () => {
    const before = await pointer();
    const versionsBefore = await indexBucket.listVersions();
    // Validate refuses the version (the export's count is not the version's): the task removes it.
    const miscounted = await reindex(
      {},
      { trigger: 'test', full: true, buildOn: 'fargate' },
      {
        ReindexTask: (environment) =>
          taskInProcess({
            ...environment,
            BISEARCH_TASK_INPUT: JSON.stringify({
              ...JSON.parse(environment.BISEARCH_TASK_INPUT ?? '{}'),
              chunks: 999,
            }),
          }),
      },
    );
    expect(miscounted.status).toBe('FAILED');
    expect(miscounted.stateErrors[0]).toMatchObject({
      state: 'CollectTaskResult',
      error: 'SnapshotValidationFailed',
    });
    expect(miscounted.states.slice(-2)).toEqual(['RecordFailure', 'ReindexFailed']);
    expect(await indexBucket.listVersions()).toEqual(versionsBefore);

    // Killed (exit 137, as on running out of memory) before writing anything.
    const killed = await reindex(
      {},
      { trigger: 'test', full: true, buildOn: 'fargate' },
      { ReindexTask: async () => 137 },
    );
    expect(killed.stateErrors[0]).toMatchObject({ state: 'BuildOnFargate', error: 'States.TaskFailed' });
    // Stopped with exit 0 but no result (e.g. stopped from the console): ReindexTaskLost.
    const silent = await reindex(
      {},
      { trigger: 'test', full: true, buildOn: 'fargate' },
      { ReindexTask: async () => 0 },
    );
    expect(silent.stateErrors[0]).toMatchObject({ state: 'CollectTaskResult', error: 'ReindexTaskLost' });
    for (const execution of [miscounted, killed, silent]) {
      expect(execution.status).toBe('FAILED');
      expect(execution.retries).toEqual([]);
    }
    expect((await pointer()).current).toEqual(before.current);
    expect((await pointer()).lastReindex).toMatchObject({ outcome: 'failed' });
  });
});

describe('the deployed functions under Lambda’s limits (each in its own environment, as the local stack runs them)', () => {
  const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));
  const scratch = mkdtempSync(join(tmpdir(), 'bisearch-deployed-limits-'));
  const started: LocalLambdaFunction[] = [];
  afterAll(async () => {
    await Promise.all(started.map((fn) => fn.stop()));
    rmSync(scratch, { recursive: true, force: true });
  });
  const deployedSettings = (handlerExport: string, file = 'reindex.ts'): LambdaFunctionSettings => {
    const settings = Object.values(functionsFromTemplate(template, PROJECT_ROOT)).find(
      (fn) => fn.handlerFile.endsWith(`functions/handlers/${file}`) && fn.handlerExport === handlerExport,
    );
    if (!settings) throw new Error(`no deployed function ${file}#${handlerExport}`);
    return settings;
  };
  const deployed = (
    handlerExport: string,
    overrides: Partial<LambdaFunctionSettings> & { environment?: Record<string, string> } = {},
    file = 'reindex.ts',
  ) => {
    const settings = deployedSettings(handlerExport, file);
    const fn = new LocalLambdaFunction({
      ...settings,
      ...overrides,
      tmpDirectory: join(scratch, `${settings.name}-${started.length}`),
    });
    started.push(fn);
    return fn;
  };
  /** Every Task state bound to its deployed function; `overrides` changes one export's limits. */
  const sandboxedSteps = (
    overrides: Record<string, Partial<LambdaFunctionSettings> & { environment?: Record<string, string> }>,
  ): Record<string, StepHandler> =>
    Object.fromEntries(
      Object.values(machine.tasks).flatMap((binding) => {
        if (binding.kind !== 'lambda') return [];
        const fn = deployed(binding.handlerExport, overrides[binding.handlerExport] ?? {});
        return [[binding.handlerExport, ((input: unknown) => fn.invoke(input)) as StepHandler]];
      }),
    );

  it('the template gives each function its limits: query 29 s with 4 GB of /tmp, build 10 GB for 15 min', () => {
    expect(deployedSettings('handler', 'query.ts')).toMatchObject({
      memoryMb: 3008,
      timeoutSeconds: 29,
      ephemeralStorageMb: 4096,
    });
    expect(deployedSettings('handler', 'encode.ts')).toMatchObject({ timeoutSeconds: 120 });
    expect(deployedSettings('buildHandler')).toMatchObject({ memoryMb: 10_240, timeoutSeconds: 900 });
    for (const binding of Object.values(machine.tasks))
      expect(
        existsSync(
          binding.kind === 'lambda'
            ? deployedSettings(binding.handlerExport).handlerFile
            : join(PROJECT_ROOT, binding.handlerFile),
        ),
      ).toBe(true);
  });

  it('a Snapshot over its memory size fails as Runtime.OutOfMemory: not retried, recorded, the pointer stays', async () => {
    const before = await pointer();
    const execution = await reindex(sandboxedSteps({ snapshotHandler: { memoryMb: 64 } }));
    expect(execution.status).toBe('FAILED');
    expect(execution.stateErrors[0]).toMatchObject({ state: 'Snapshot', error: 'Runtime.OutOfMemory' });
    expect(execution.retries).toEqual([]);
    expect(execution.states).toContain('RecordFailure');
    expect((await pointer()).current).toEqual(before.current);
    expect((await pointer()).lastReindex).toMatchObject({ outcome: 'failed' });
  }, 60_000);

  it('a step that outlives its timeout fails as Sandbox.Timedout and is not retried', async () => {
    const before = await pointer();
    const execution = await reindex(
      sandboxedSteps({
        snapshotHandler: { timeoutSeconds: 0.2, environment: { BISEARCH_SIMULATED_LATENCY_MS: '300' } },
      }),
    );
    expect(execution.status).toBe('FAILED');
    expect(execution.stateErrors[0]).toMatchObject({ state: 'Snapshot', error: 'Sandbox.Timedout' });
    expect(execution.retries).toEqual([]);
    expect((await pointer()).current).toEqual(before.current);
  }, 60_000);

  it('the whole reindex succeeds with the deployed limits, every step in its own environment', async () => {
    const execution = await reindex(sandboxedSteps({}));
    expect(execution.status).toBe('SUCCEEDED');
  }, 60_000);

  it('a query function whose /tmp cannot hold the snapshot fails its Init with ENOSPC; with the deployed size it serves', async () => {
    if (!(await pointer()).current) expect((await reindex()).status).toBe('SUCCEEDED');
    const cramped = deployed('handler', { ephemeralStorageMb: 0.001 }, 'query.ts');
    await expect(cramped.warm()).rejects.toThrow(/^ENOSPC: no space left on device/);
    const query = deployed('handler', {}, 'query.ts');
    const response = (await query.invoke(
      apiGatewayEvent({
        method: 'POST',
        path: '/search',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: 'crimson kestrel', mode: 'lexical', k: 3 }),
      }),
    )) as { statusCode: number; body: string };
    expect(response.statusCode).toBe(200);
    expect(JSON.parse(response.body).results[0]?.docId).toBe('a');
    expect(query.stats.peakStorageMb).toBeGreaterThan(0);
  }, 60_000);
});
