/**
 * Large documents and sources fit the encode timeout: processing stops before its deadline with
 * what it did kept (written documents, saved vectors) and continues in a new invocation, with no
 * chunk embedded twice and nothing half-visible.
 *
 * Real parts: the ingest service, the table adapter on dynalite, s3rver, the tiny-bert embedder,
 * the encode handler and the SQS poller on fauxqs. Time is a clock the embedder advances by a
 * modelled 50 ms per passage (USE-lite's order of magnitude on Lambda), so a run of several
 * invocations takes seconds.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { DeleteMessageCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dynamoDocumentClient, s3Client, sqsClient } from '../../functions/adapters/aws/aws-clients.js';
import { DocumentBucket } from '../../functions/adapters/aws/document-bucket.js';
import { SearchTable } from '../../functions/adapters/aws/search-table.js';
import { OnnxEmbedder } from '../../functions/adapters/model/onnx-embedder.js';
import {
  ContinuationNeededError,
  type DocumentOutcome,
  IngestService,
} from '../../functions/adapters/services/ingest-service.js';
import { chunkDocument, embeddingInput } from '../../functions/core/chunking.js';
import type { TextEmbedder } from '../../functions/core/embedding-space.js';
import { ENCODE_CONTINUATION_ATTRIBUTE } from '../../functions/handlers/environment.js';
import { localLambdaContext } from '../../infra/local/api-gateway-event.js';
import { SqsPoller } from '../../infra/local/sqs-poller.js';
import { type HandlerStack, startHandlerStack } from '../support/local-stack.js';
import { TINY_BERT_BIENCODER_DIR } from '../support/shared-fixtures.js';

const MODELLED_MS_PER_PASSAGE = 50;

let stack: HandlerStack;
let tinyBert: OnnxEmbedder;
beforeAll(async () => {
  stack = await startHandlerStack();
  tinyBert = await OnnxEmbedder.load(TINY_BERT_BIENCODER_DIR);
});
afterAll(() => stack?.stop());

/** The real embedder, with a clock it advances as a slower model would take, and a count of passages. */
function modelledEmbedder(clock: { now: number }): TextEmbedder & { passages: string[] } {
  const passages: string[] = [];
  return {
    space: tinyBert.space,
    maxContentTokens: tinyBert.maxContentTokens,
    countTokens: (text: string) => tinyBert.countTokens(text),
    passages,
    embedDocuments: async (texts: readonly string[]) => {
      passages.push(...texts);
      clock.now += texts.length * MODELLED_MS_PER_PASSAGE;
      return tinyBert.embedDocuments(texts);
    },
    embedQuery: (text: string) => tinyBert.embedQuery(text),
  };
}

const sentences = (count: number, word: string) =>
  Array.from({ length: count }, (_, i) => `Sentence ${i} of the ${word} report names item ${i * 7}.`).join(
    ' ',
  );

/** Process one event the way the encode handler does: a fresh call per invocation until it finishes. */
async function processAcrossInvocations(
  ingest: IngestService,
  clock: { now: number },
  key: string,
  sequencer: string,
  budgetMs: number,
  afterEach?: (invocation: number) => Promise<void>,
): Promise<{ invocations: number; outcomes: DocumentOutcome[] }> {
  for (let invocation = 1; invocation <= 50; invocation += 1) {
    const deadline = clock.now + budgetMs;
    try {
      const outcomes = await ingest.process(
        { kind: 'created', bucket: stack.aws.names.documentsBucket, key, sequencer },
        { deadline },
      );
      expect(clock.now).toBeLessThanOrEqual(deadline);
      return { invocations: invocation, outcomes };
    } catch (error) {
      if (!(error instanceof ContinuationNeededError)) throw error;
      // The invocation stopped in time, with something done.
      expect(clock.now).toBeLessThanOrEqual(deadline);
      expect(error.documentsWritten + error.chunksSaved).toBeGreaterThan(0);
      await afterEach?.(invocation);
    }
  }
  throw new Error('did not finish in 50 invocations');
}

const put = (key: string, body: string) =>
  s3Client(stack.aws.connection).send(
    new PutObjectCommand({ Bucket: stack.aws.names.documentsBucket, Key: key, Body: body }),
  );

describe('large documents and sources continue across invocations (dynalite, s3rver, tiny-bert)', () => {
  it('a document too large for one invocation is embedded across several, each chunk once, invisible until whole', async () => {
    const clock = { now: Date.parse('2026-12-03T12:00:00Z') };
    const embedder = modelledEmbedder(clock);
    const table = new SearchTable(dynamoDocumentClient(stack.aws.connection), stack.aws.names.tableName, {
      clock: () => clock.now,
    });
    const documents = new DocumentBucket(s3Client(stack.aws.connection), stack.aws.names.documentsBucket);
    const ingest = new IngestService(table, documents, embedder, { clock: () => clock.now });
    const text = sentences(5_000, 'topaz gecko');
    await put('docs/large/report.txt', text);
    const chunks = chunkDocument({ id: 'large/report', text, metadata: {} }, tinyBert, {
      maxTokens: tinyBert.maxContentTokens,
    });
    expect(chunks.length).toBeGreaterThan(600);

    const { invocations, outcomes } = await processAcrossInvocations(
      ingest,
      clock,
      'docs/large/report.txt',
      '0A',
      // 20 s of modelled embedding time per invocation: ~13 s of it for one group of 256 passages.
      20_000,
      async () => {
        // Between invocations nothing of the new version is visible, and progress is saved.
        expect(await table.documentStatus('large/report')).toBeUndefined();
        const saved = await dynamoDocumentClient(stack.aws.connection).send(
          new QueryCommand({
            TableName: stack.aws.names.tableName,
            KeyConditionExpression: 'pk = :pk',
            ExpressionAttributeValues: { ':pk': 'PROGRESS#large/report' },
          }),
        );
        expect(saved.Items?.length).toBeGreaterThan(0);
      },
    );
    expect(invocations).toBeGreaterThanOrEqual(3);
    expect(outcomes).toEqual([
      expect.objectContaining({ docId: 'large/report', outcome: 'indexed', chunks: chunks.length }),
    ]);
    // Every distinct chunk embedded exactly once across all invocations.
    const distinct = new Set(chunks.map((chunk) => chunk.contentHash));
    expect(embedder.passages.length).toBe(distinct.size);
    // The stored vectors are the model's (as a single uninterrupted run would have written them).
    const status = await table.documentStatus('large/report');
    expect(status).toMatchObject({ status: 'indexed', chunks: chunks.length });
    const stored = await table.chunksOf(status as NonNullable<typeof status>);
    expect(stored.map((chunk) => chunk.contentHash)).toEqual(chunks.map((chunk) => chunk.contentHash));
    const [expected] = await tinyBert.embedDocuments([
      embeddingInput(stored[123] as (typeof stored)[number]),
    ]);
    expect(Array.from(stored[123]?.vector ?? [])).toEqual(Array.from(expected ?? []));
    // Saved progress is gone once the document is written.
    const left = await dynamoDocumentClient(stack.aws.connection).send(
      new QueryCommand({
        TableName: stack.aws.names.tableName,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': 'PROGRESS#large/report' },
      }),
    );
    expect(left.Items ?? []).toEqual([]);
  });

  it('a JSON Lines source of many documents is written across invocations, each document once', async () => {
    const clock = { now: Date.parse('2026-12-03T13:00:00Z') };
    const embedder = modelledEmbedder(clock);
    const table = new SearchTable(dynamoDocumentClient(stack.aws.connection), stack.aws.names.tableName, {
      clock: () => clock.now,
    });
    const documents = new DocumentBucket(s3Client(stack.aws.connection), stack.aws.names.documentsBucket);
    const ingest = new IngestService(table, documents, embedder, { clock: () => clock.now });
    const lines = Array.from({ length: 30 }, (_, i) =>
      JSON.stringify({ id: `bulk-${i}`, text: sentences(60, `ledger ${i}`) }),
    );
    await put('docs/bulk/records.jsonl', lines.join('\n'));
    const { invocations, outcomes } = await processAcrossInvocations(
      ingest,
      clock,
      'docs/bulk/records.jsonl',
      '0B',
      8_000,
    );
    expect(invocations).toBeGreaterThanOrEqual(3);
    expect(outcomes).toHaveLength(30);
    for (let i = 0; i < 30; i += 1)
      expect(await table.documentStatus(`bulk-${i}`)).toMatchObject({ status: 'indexed' });
    // Documents finished by an earlier invocation were not embedded again.
    expect(new Set(embedder.passages).size).toBe(embedder.passages.length);
    const source = await table.sourceDocuments('docs/bulk/records.jsonl');
    expect(source?.docIds).toHaveLength(30);
    // No item grows with the source: one membership item per document, and a head without the list.
    const items = await dynamoDocumentClient(stack.aws.connection).send(
      new QueryCommand({
        TableName: stack.aws.names.tableName,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': 'SRC#docs/bulk/records.jsonl' },
      }),
    );
    const head = items.Items?.find((item) => item.sk === 'SOURCE');
    expect(head?.docIds).toBeUndefined();
    expect(JSON.stringify(head).length).toBeLessThan(2_000);
    expect(items.Items?.filter((item) => String(item.sk).startsWith('DOC#'))).toHaveLength(30);
  });

  it('the encode handler re-enqueues a record it has no time for, counted, and stops after the cap', async () => {
    const { handler } = await import('../../functions/handlers/encode.js');
    const sqs = sqsClient(stack.aws.connection);
    const shortOf = (remainingMs: number) => ({
      ...localLambdaContext('encode'),
      getRemainingTimeInMillis: () => remainingMs,
    });
    const seen: SQSEvent[] = [];
    const pollWith = (remainingMs: number) =>
      new SqsPoller({
        sqs,
        queueUrl: stack.aws.ingestQueueUrl,
        handler: (event) => {
          seen.push(event);
          return handler(event, shortOf(remainingMs) as never);
        },
      }).pollOnce(2);

    // The uploads of the tests above left their notifications: processed there, not here.
    for (;;) {
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: stack.aws.ingestQueueUrl,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 1,
        }),
      );
      if (Messages.length === 0) break;
      for (const message of Messages)
        await sqs.send(
          new DeleteMessageCommand({
            QueueUrl: stack.aws.ingestQueueUrl,
            ReceiptHandle: message.ReceiptHandle,
          }),
        );
    }
    await stack.upload('docs/late/note.txt', 'The quartz pelican arrives after the batch.');
    // An invocation with 15 s left does not start the record: it is sent again, counted.
    expect(await pollWith(15_000)).toEqual({ received: 1, failed: 0 });
    expect(await stack.table.documentStatus('late/note')).toBeUndefined();
    expect(await pollWith(15 * 60_000)).toEqual({ received: 1, failed: 0 });
    expect(seen[1]?.Records[0]?.messageAttributes[ENCODE_CONTINUATION_ATTRIBUTE]?.stringValue).toBe('1');
    expect(await stack.table.documentStatus('late/note')).toMatchObject({ status: 'indexed' });

    // A record continued 100 times is not continued again: it fails (and dead-letters after redrives).
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: stack.aws.ingestQueueUrl,
        MessageBody: seen[0]?.Records[0]?.body ?? '',
        MessageAttributes: { [ENCODE_CONTINUATION_ATTRIBUTE]: { DataType: 'Number', StringValue: '100' } },
      }),
    );
    expect(await pollWith(15_000)).toEqual({ received: 1, failed: 1 });
  });
});
