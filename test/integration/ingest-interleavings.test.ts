/**
 * Property: any interleaving of create, update and delete events for one document (concurrent,
 * redelivered, reordered, retried after a crash) ends in the state of its last write, with no
 * orphan chunks, and a query runtime tailing the change log meanwhile ends with that state too.
 *
 * Real parts: the ingest service, the table adapter on dynalite, s3rver, the tiny-bert embedder,
 * the query runtime's change-log tail. Every DynamoDB and S3 call of every task passes a gate of
 * the {@link Interleaver}, which releases one task at a time in an order fast-check chooses, and
 * crashes tasks at chosen steps (a crashed task does no more I/O; its message is redelivered).
 * Time is a clock the test advances (a dead encoder's lease, the orphan-chunk grace).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { DeleteObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dynamoDocumentClient, s3Client } from '../../functions/adapters/aws/aws-clients.js';
import { DocumentBucket } from '../../functions/adapters/aws/document-bucket.js';
import { IndexBucket } from '../../functions/adapters/aws/index-bucket.js';
import { ORPHAN_CHUNK_GRACE_MS, SearchTable } from '../../functions/adapters/aws/search-table.js';
import { OnnxEmbedder } from '../../functions/adapters/model/onnx-embedder.js';
import {
  IngestService,
  type S3ObjectEvent,
  SourceBusyError,
} from '../../functions/adapters/services/ingest-service.js';
import { SearchRuntime } from '../../functions/adapters/services/search-runtime.js';
import { chunkDocument } from '../../functions/core/chunking.js';
import { type LocalAws, startLocalAws } from '../../infra/local/emulators.js';
import { PerKeySequencers } from '../../infra/local/s3-fidelity.js';
import { gatedClient, Interleaver, SimulatedCrash } from '../support/interleaver.js';
import { TINY_BERT_BIENCODER_DIR } from '../support/shared-fixtures.js';

const LEASE_MS = 150_000;
/** Seeded: a failure prints its seed and path, and `FC_SEED=<seed>` replays it. */
const SEED = Number(process.env.FC_SEED ?? 20_261_202);
const RUNS = Number(process.env.FC_RUNS ?? 100);

let aws: LocalAws;
let embedder: OnnxEmbedder;
let workDirectory: string;
beforeAll(async () => {
  aws = await startLocalAws();
  embedder = await OnnxEmbedder.load(TINY_BERT_BIENCODER_DIR);
  workDirectory = mkdtempSync(join(tmpdir(), 'bisearch-interleavings-'));
});
afterAll(async () => {
  await aws?.stop();
  rmSync(workDirectory, { recursive: true, force: true });
});

/** Texts of the document's versions: one short, two of several chunks, the last one equal to the first. */
const VERSIONS = [
  'The amber heron nests by the lake.',
  Array.from({ length: 40 }, (_, i) => `cobalt lynx sentence ${i} runs through the pine forest.`).join(' '),
  Array.from({ length: 25 }, (_, i) => `Violet otter paragraph ${i} swims past the dam.`).join('\n\n'),
  'The amber heron nests by the lake.',
];

type Operation = { kind: 'put'; version: number } | { kind: 'delete' };

const operationArbitrary: fc.Arbitrary<Operation> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc
      .integer({ min: 0, max: VERSIONS.length - 1 })
      .map((version) => ({ kind: 'put' as const, version })),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'delete' as const }) },
);

const scenarioArbitrary = fc.record({
  operations: fc.array(operationArbitrary, { minLength: 1, maxLength: 5 }),
  /** Extra deliveries of each event (SQS at-least-once). */
  duplicates: fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 5, maxLength: 5 }),
  choices: fc.array(fc.nat({ max: 1_000 }), { minLength: 64, maxLength: 256 }),
  crashSteps: fc.uniqueArray(fc.integer({ min: 0, max: 120 }), { maxLength: 3 }),
});

let run = 0;

describe('one document under any interleaving of its events (fast-check, real ingest service on dynalite and s3rver)', () => {
  it(`ends in the state of its last write with no orphan chunks, and the tailing query runtime agrees (${RUNS} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArbitrary, async (scenario) => {
        run += 1;
        await checkScenario(scenario, `run-${run}/doc`);
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
  }, 600_000);
});

/** A table of its own per run: the change log a fresh query runtime reads starts empty. */
async function freshTable(name: string): Promise<void> {
  await dynamoDocumentClient(aws.connection).send(
    new CreateTableCommand({
      TableName: name,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
    }),
  );
}

async function checkScenario(scenario: Scenario, docId: string): Promise<void> {
  const key = `docs/${docId}.json`;
  const tableName = `interleavings-${run}`;
  await freshTable(tableName);
  let now = 1_800_000_000_000;
  const clock = () => now;
  // The writer is picked more often, so S3 changes land between the reads of concurrent deliveries.
  const interleaver = new Interleaver(
    scenario.choices,
    new Set(scenario.crashSteps),
    5_000,
    (id) => id.startsWith('d'),
    (id) => (id === 'writer' ? 4 : 1),
  );
  // Which task holds the key's lease, to expire it when its holder died (time passing).
  let leaseHolder: string | undefined;
  // Messages that found the lease taken come back later (SQS visibility timeout): here, once it is free.
  const parked: S3ObjectEvent[] = [];
  const unpark = () => {
    for (const event of parked.splice(0)) deliver(event);
  };
  const dynamo = gatedClient(dynamoDocumentClient(aws.connection), interleaver, (command, task) => {
    const input = command.input as { Item?: { sk?: string }; Key?: { sk?: string } };
    if (command.constructor.name === 'PutCommand' && input.Item?.sk === 'LOCK') leaseHolder = task;
    if (command.constructor.name === 'DeleteCommand' && input.Key?.sk === 'LOCK' && leaseHolder === task) {
      leaseHolder = undefined;
      unpark();
    }
  });
  const s3 = gatedClient(s3Client(aws.connection), interleaver) as S3Client;
  const table = new SearchTable(dynamo, tableName, { clock });
  const service = new IngestService(table, new DocumentBucket(s3, aws.names.documentsBucket), embedder, {
    clock,
    leaseMs: LEASE_MS,
    leaseWaitMs: 0,
  });
  const runtime = await SearchRuntime.start({
    table,
    indexBucket: new IndexBucket(s3, aws.names.indexBucket),
    embedder,
    workDirectory,
    maxStalenessMs: 0,
  });
  const sequencers = new PerKeySequencers(() => now);
  let deliveries = 0;
  const deliver = (event: S3ObjectEvent): void => {
    const id = `d${deliveries++}`;
    void interleaver
      .spawn(id, () => service.process(event))
      .then(({ error }) => {
        if (error === undefined) return;
        if (!(error instanceof SimulatedCrash) && !(error instanceof SourceBusyError)) throw error;
        // A dead holder's lease runs out before SQS delivers the message again.
        if (leaseHolder !== undefined && interleaver.isDead(leaseHolder)) {
          now += LEASE_MS + 1;
          leaseHolder = undefined;
          unpark();
        }
        if (error instanceof SourceBusyError && leaseHolder !== undefined) parked.push(event);
        else deliver(event);
      });
  };
  const failures: unknown[] = [];
  // The writer: S3 operations in order, each followed by its notification(s).
  void interleaver.spawn('writer', async () => {
    for (const [index, operation] of scenario.operations.entries()) {
      if (operation.kind === 'put')
        await s3.send(
          new PutObjectCommand({
            Bucket: aws.names.documentsBucket,
            Key: key,
            Body: JSON.stringify({ id: docId, title: 'Field notes', text: VERSIONS[operation.version] }),
          }),
        );
      else await s3.send(new DeleteObjectCommand({ Bucket: aws.names.documentsBucket, Key: key }));
      now += 1;
      const event: S3ObjectEvent = {
        kind: operation.kind === 'put' ? 'created' : 'removed',
        bucket: aws.names.documentsBucket,
        key,
        sequencer: sequencers.next(key),
      };
      for (let copy = 0; copy <= (scenario.duplicates[index] ?? 0); copy += 1) deliver(event);
    }
  });
  // A query instance tailing the change log while all this happens.
  void interleaver
    .spawn('tailer', async () => {
      for (let round = 0; round < 4; round += 1) await runtime.tail();
    })
    .then(({ error }) => {
      if (error !== undefined) failures.push(error);
    });
  const t0 = performance.now();
  await interleaver.run();
  if (process.env.FC_DEBUG)
    process.stderr.write(
      `run ${run}: ${interleaver.trace.length} steps ${Math.round(performance.now() - t0)} ms\n`,
    );
  expect(failures).toEqual([]);

  const last = scenario.operations.at(-1) as Operation;
  const raw = dynamoDocumentClient(aws.connection);
  const status = await new SearchTable(raw, tableName).documentStatus(docId);
  const context = `${JSON.stringify(scenario.operations)} trace: ${interleaver.trace.join(' ')}`;
  const expectedTexts =
    last.kind === 'put'
      ? chunkDocument(
          { id: docId, title: 'Field notes', text: VERSIONS[last.version] as string, metadata: {} },
          embedder,
          { maxTokens: embedder.maxContentTokens },
        ).map((chunk) => chunk.text)
      : [];
  expect(status?.status, context).toBe(last.kind === 'put' ? 'indexed' : 'deleted');
  expect(status?.chunks, context).toBe(expectedTexts.length);

  // Chunk items: exactly the current version's, once the grace for crashed writes has passed.
  const chunkItems = async () =>
    (
      await raw.send(
        new QueryCommand({
          TableName: tableName,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :chunk)',
          ExpressionAttributeValues: { ':pk': `DOC#${docId}`, ':chunk': 'CHUNK#' },
          ConsistentRead: true,
        }),
      )
    ).Items ?? [];
  const current = (items: Array<Record<string, unknown>>) =>
    items.filter((item) => status?.writeId && String(item.sk).startsWith(`CHUNK#${status.writeId}#`));
  let items = await chunkItems();
  expect(
    current(items).map((item) => item.text),
    context,
  ).toEqual(expectedTexts);
  if (scenario.crashSteps.length === 0 || !interleaver.trace.some((step) => step.endsWith(':CRASH')))
    expect(items.length, `no crash, so no garbage: ${context}`).toBe(expectedTexts.length);
  now += ORPHAN_CHUNK_GRACE_MS + 1;
  await table.sweepOrphanChunks(docId, status?.writeId);
  items = await chunkItems();
  expect(items.length, context).toBe(expectedTexts.length);

  // The source record matches the object: nothing left pending.
  const source = await new SearchTable(raw, tableName).sourceHead(key);
  expect(source?.etag ?? '', context).toBe(
    last.kind === 'put'
      ? await new DocumentBucket(s3Client(aws.connection), aws.names.documentsBucket).head(key)
      : '',
  );

  // The runtime that tailed meanwhile, caught up, serves exactly the last write.
  await runtime.tail();
  expect(
    runtime.searchEngine.delta.chunksOf(docId).map((chunk) => chunk.text),
    context,
  ).toEqual(expectedTexts);
}

type Scenario = {
  operations: Operation[];
  duplicates: number[];
  choices: number[];
  crashSteps: number[];
};
