/**
 * The change log under many concurrent encoders and the query runtime's catch-up with a backlog:
 * an atomic sequence counter (no read-then-write race on one hot key), holes in the log waited
 * for and then skipped, catch-up that never holds a request or an Init longer than its bound.
 * Real SearchTable and SearchRuntime on dynalite.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dynamoDocumentClient, s3Client } from '../../functions/adapters/aws/aws-clients.js';
import { IndexBucket } from '../../functions/adapters/aws/index-bucket.js';
import { autoReindexName, type ReindexTrigger } from '../../functions/adapters/aws/reindex-trigger.js';
import { SearchTable } from '../../functions/adapters/aws/search-table.js';
import { OnnxEmbedder } from '../../functions/adapters/model/onnx-embedder.js';
import {
  SearchRuntime,
  type SearchRuntimeOptions,
} from '../../functions/adapters/services/search-runtime.js';
import { type LocalAws, startLocalAws } from '../../infra/local/emulators.js';
import { TINY_BERT_BIENCODER_DIR } from '../support/shared-fixtures.js';
import { seedDocuments, syntheticVector, writeSyntheticDocument } from '../support/synthetic-documents.js';

let aws: LocalAws;
const started: LocalAws[] = [];
let embedder: OnnxEmbedder;
let workDirectory: string;
let tables = 0;
beforeAll(async () => {
  embedder = await OnnxEmbedder.load(TINY_BERT_BIENCODER_DIR);
  workDirectory = mkdtempSync(join(tmpdir(), 'bisearch-change-log-'));
});
afterAll(async () => {
  await embedder?.dispose();
  for (const own of started) await own.stop();
  rmSync(workDirectory, { recursive: true, force: true });
});

/** A fresh table (each test its own emulators and change log), optionally with modelled latency per call. */
async function freshTable(latencyMs = 0): Promise<SearchTable> {
  tables += 1;
  const own = await startLocalAws();
  started.push(own);
  aws = own;
  return new SearchTable(dynamoDocumentClient({ ...own.connection, latencyMs }), own.names.tableName);
}

/** The same table seen through a client with modelled latency per call. */
const slowTwin = (table: SearchTable, latencyMs = 25) =>
  new SearchTable(dynamoDocumentClient({ ...aws.connection, latencyMs }), table.tableName);

const startRuntime = (table: SearchTable, options: Partial<SearchRuntimeOptions> = {}) =>
  SearchRuntime.start({
    table,
    indexBucket: new IndexBucket(s3Client(aws.connection), aws.names.indexBucket),
    embedder,
    workDirectory: join(workDirectory, `runtime-${tables}`),
    maxStalenessMs: 0,
    ...options,
  });

const hits = async (runtime: SearchRuntime, word: string) =>
  (await runtime.search({ query: word, mode: 'lexical', k: 10 })).results.map((result) => result.docId);

describe('change log', () => {
  it('300 concurrent announcements take 300 distinct, gap-free sequences; none fails', async () => {
    const table = await freshTable();
    const sequences = await Promise.all(Array.from({ length: 300 }, (_, n) => table.announce(`doc-${n}`)));
    expect(new Set(sequences).size).toBe(300);
    expect(Math.min(...sequences)).toBe(1);
    expect(Math.max(...sequences)).toBe(300);
    expect(await table.latestSequence()).toBe(300);
    expect((await table.changesAfter(0)).map((entry) => entry.sequence)).toEqual(
      Array.from({ length: 300 }, (_, n) => n + 1),
    );
  });

  it('an entry beyond a hole is searchable at once; the position waits for the hole, takes it when it lands, skips it after the grace', async () => {
    const table = await freshTable();
    const raw = dynamoDocumentClient(aws.connection);
    const dims = embedder.space.dimensions;
    // A writer that has taken a sequence and not (yet) written its entry.
    const takeSequence = () => table.takeSequence();
    await seedDocuments(table, { prefix: 'first', count: 1, dimensions: dims });
    const runtime = await startRuntime(table, { changeLogGapGraceMs: 400 });
    // A writer takes sequence 2 and is slow to write its entry; another announces 3 meanwhile.
    const slow = await takeSequence();
    await writeSyntheticDocument(table, 'slow', 'The slowword document.', syntheticVector(9, dims));
    await seedDocuments(table, { prefix: 'fast', count: 1, dimensions: dims });
    expect(await hits(runtime, 'fastword0')).toEqual(['fast-0']);
    expect(runtime.health().freshness.sequence).toBe(1);
    // The slow entry lands: applied, and the position moves over both.
    await raw.send(
      new PutCommand({
        TableName: table.tableName,
        Item: {
          pk: 'LOG',
          sk: `SEQ#${String(slow).padStart(16, '0')}`,
          sequence: slow,
          docId: 'slow',
          at: new Date().toISOString(),
        },
      }),
    );
    expect(await hits(runtime, 'slowword')).toEqual(['slow']);
    expect(runtime.health().freshness.sequence).toBe(3);
    // A writer that died after taking sequence 4: the hole is waited for, then skipped.
    await takeSequence();
    await seedDocuments(table, { prefix: 'late', count: 1, dimensions: dims });
    expect(await hits(runtime, 'lateword0')).toEqual(['late-0']);
    expect(runtime.health().freshness.sequence).toBe(3);
    await new Promise((resolve) => setTimeout(resolve, 500));
    await runtime.tail();
    expect(runtime.health().freshness.sequence).toBe(5);
  });
});

describe('bounded catch-up', () => {
  it('a search waits at most maxCatchUpWaitMs for a long backlog, answers with its lag, and the backlog lands behind it', async () => {
    const table = await freshTable(0);
    const dims = embedder.space.dimensions;
    const slowTable = slowTwin(table);
    const runtime = await startRuntime(slowTable, {
      maxCatchUpWaitMs: 200,
      changeLogPageSize: 20,
      readParallelism: 2,
    });
    await seedDocuments(table, { prefix: 'backlog', count: 200, dimensions: dims, concurrency: 16 });
    const started = Date.now();
    const answer = await runtime.search({ query: 'backlogword199', mode: 'lexical', k: 10 });
    const waited = Date.now() - started;
    // 200 documents at 25 ms per call, two at a time, take seconds; the request does not.
    expect(waited).toBeLessThan(1_500);
    expect(answer.index.lagMs).toBeGreaterThanOrEqual(0);
    expect(runtime.health().freshness.catchingUp).toBe(true);
    const deadline = Date.now() + 60_000;
    while (runtime.health().freshness.catchingUp && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 100));
    expect(runtime.health().freshness.sequence).toBe(200);
    expect(await hits(runtime, 'backlogword199')).toEqual(['backlog-199']);
    expect(await hits(runtime, 'backlogword0')).toEqual(['backlog-0']);
  }, 90_000);

  it('past half the staleness bound a search starts catch-up in the background without waiting for it', async () => {
    const table = await freshTable(0);
    const dims = embedder.space.dimensions;
    const slowTable = slowTwin(table);
    const runtime = await startRuntime(slowTable, {
      maxStalenessMs: 1_000,
      changeLogPageSize: 20,
      readParallelism: 1,
    });
    await seedDocuments(table, { prefix: 'steady', count: 40, dimensions: dims, concurrency: 8 });
    await new Promise((resolve) => setTimeout(resolve, 600 - runtime.lagMs()));
    // Lag between 500 and 1,000 ms: within the bound, so the search answers at once…
    const started = Date.now();
    const first = await runtime.search({ query: 'steadyword39', mode: 'lexical', k: 1 });
    expect(Date.now() - started).toBeLessThan(150);
    expect(first.results).toEqual([]);
    expect(runtime.health().freshness.catchingUp).toBe(true);
    // …and the catch-up it started lands behind it.
    const deadline = Date.now() + 30_000;
    while (runtime.health().freshness.catchingUp && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await hits(runtime, 'steadyword39')).toEqual(['steady-39']);
  }, 60_000);

  it('Init does not wait for the backlog: start returns after initCatchUpWaitMs and serves', async () => {
    const table = await freshTable(0);
    const dims = embedder.space.dimensions;
    await seedDocuments(table, { prefix: 'cold', count: 150, dimensions: dims, concurrency: 16 });
    const slowTable = slowTwin(table);
    const started = Date.now();
    const runtime = await startRuntime(slowTable, {
      initCatchUpWaitMs: 200,
      maxCatchUpWaitMs: 100,
      changeLogPageSize: 20,
      readParallelism: 1,
    });
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(runtime.health().freshness.sequence).toBeLessThan(150);
    const deadline = Date.now() + 60_000;
    while (runtime.health().freshness.sequence < 150 && Date.now() < deadline) {
      await runtime.search({ query: 'coldword1', mode: 'lexical', k: 1 });
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(await hits(runtime, 'coldword149')).toEqual(['cold-149']);
  }, 90_000);
});

describe('a bounded delta', () => {
  it('past its bound the delta asks for one reindex per version and retry period, and /health says so', async () => {
    const table = await freshTable(0);
    const requests: Array<{ deltaChunks: number; version: string | null }> = [];
    const trigger: ReindexTrigger = {
      start: async (reason) => {
        requests.push(reason);
        return 'started';
      },
    };
    const runtime = await startRuntime(table, { autoReindex: { trigger, deltaChunks: 5, retryMs: 300 } });
    expect(runtime.health().autoReindex).toEqual({ deltaChunks: 5, requestedAt: null, outcome: null });
    await seedDocuments(table, { prefix: 'under', count: 4, dimensions: embedder.space.dimensions });
    await runtime.tail();
    expect(requests).toEqual([]);
    await seedDocuments(table, { prefix: 'over', count: 3, dimensions: embedder.space.dimensions });
    await runtime.tail();
    await runtime.tail();
    expect(requests).toEqual([{ deltaChunks: 7, version: null }]);
    expect(runtime.health().autoReindex).toMatchObject({ deltaChunks: 5, outcome: 'started' });
    // Still over the bound once the retry period has passed (the run failed): asked again.
    await new Promise((resolve) => setTimeout(resolve, 350));
    await runtime.tail();
    expect(requests).toHaveLength(2);
  });

  it('every instance names the run alike for one version and hour, so Step Functions starts it once', () => {
    const at = Date.parse('2026-12-03T11:20:00Z');
    const reason = { deltaChunks: 9, version: '20261203T030000000Z-abc' };
    expect(autoReindexName(reason, at)).toBe(
      autoReindexName({ ...reason, deltaChunks: 50 }, at + 30 * 60_000),
    );
    expect(autoReindexName(reason, at)).not.toBe(autoReindexName(reason, at + 60 * 60_000));
    expect(autoReindexName({ ...reason, version: null }, at)).toMatch(/^auto-none-\d{10}$/);
    expect(autoReindexName(reason, at)).toMatch(/^[A-Za-z0-9-_]{1,80}$/);
  });
});
