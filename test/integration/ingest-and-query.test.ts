import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3Client, sqsClient } from '../../functions/adapters/aws/aws-clients.js';
import { CSV_COLUMNS_METADATA_KEY } from '../../functions/core/documents.js';
import { type HandlerStack, startHandlerStack } from '../support/local-stack.js';

let stack: HandlerStack;
beforeAll(async () => {
  stack = await startHandlerStack();
});
afterAll(() => stack?.stop());

const search = async (query: string, mode = 'lexical') => {
  const response = await stack.http('POST', '/search', { query, mode, k: 10 });
  expect(response.status).toBe(200);
  return response.body.results as Array<{
    docId: string;
    text: string;
    title?: string;
    metadata: Record<string, unknown>;
  }>;
};

describe('S3 upload → SQS → encode → searchable through the delta (emulators, real handlers)', () => {
  it('indexes a new Markdown document and reports it indexed', async () => {
    await stack.upload(
      'docs/help/reset-password.md',
      '# Reset your password\n\nClick "Forgot password" and follow the emerald-falcon link we e-mail you.',
    );
    await stack.drainIngest();
    const results = await search('emerald falcon link');
    expect(results[0]).toMatchObject({ docId: 'help/reset-password', title: 'Reset your password' });
    expect((await search('forgot password', 'dense'))[0]?.docId).toBe('help/reset-password');
    const status = await stack.http('GET', '/documents/help/reset-password');
    expect(status).toMatchObject({
      status: 200,
      body: { docId: 'help/reset-password', status: 'indexed', chunks: 1 },
    });
    const health = await stack.http('GET', '/health');
    expect(health.body).toMatchObject({
      status: 'ok',
      index: { version: null, deltaSize: 1 },
      model: { id: 'use-lite', dimensions: 512 },
    });
    expect(health.body.freshness.lagMs).toBeGreaterThanOrEqual(0);
  });

  it('an update replaces the old text, and a delete removes the document', async () => {
    await stack.upload(
      'docs/help/reset-password.md',
      '# Reset your password\n\nUse the violet-otter page in Settings instead.',
    );
    await stack.drainIngest();
    expect(await search('emerald falcon')).toEqual([]);
    expect((await search('violet otter'))[0]?.docId).toBe('help/reset-password');
    await stack.remove('docs/help/reset-password.md');
    await stack.drainIngest();
    expect(await search('violet otter')).toEqual([]);
    expect((await stack.http('GET', '/documents/help/reset-password')).body).toMatchObject({
      status: 'deleted',
      chunks: 0,
    });
  });

  it('redelivering the same batch changes nothing, and an older event arriving late is ignored', async () => {
    const sqs = sqsClient(stack.aws.connection);
    // Capture the notifications of two versions without processing them.
    await stack.upload('docs/replay.txt', 'The first version mentions amber-heron.');
    const first = await receiveOne(sqs, stack.aws.ingestQueueUrl);
    await stack.upload('docs/replay.txt', 'The second version mentions cobalt-lynx.');
    const second = await receiveOne(sqs, stack.aws.ingestQueueUrl);
    // Newer first, then a redelivery of it, then the older one.
    for (const body of [second, second, first]) {
      await sqs.send(new SendMessageCommand({ QueueUrl: stack.aws.ingestQueueUrl, MessageBody: body }));
      await stack.drainIngest();
    }
    expect((await search('cobalt lynx'))[0]?.docId).toBe('replay');
    expect(await search('amber heron')).toEqual([]);
    const sequence = await stack.table.latestSequence();
    await sqs.send(new SendMessageCommand({ QueueUrl: stack.aws.ingestQueueUrl, MessageBody: second }));
    await stack.drainIngest();
    expect(await stack.table.latestSequence()).toBe(sequence);
  });

  it('a malformed document fails alone with a reason; the other documents of the upload are searchable', async () => {
    const lines = [
      JSON.stringify({
        id: 'faq-1',
        title: 'Refunds',
        text: 'Refunds take saffron-mole days.',
        metadata: { category: 'billing' },
      }),
      '{"id": "broken", "text": ',
      JSON.stringify({ id: 'faq-2', title: 'Shipping', text: 'Parcels travel by quartz-badger.' }),
    ].join('\n');
    await stack.upload('docs/faq.jsonl', lines);
    await stack.upload('docs/bad.json', '{"id": "bad", "title": 7}');
    await stack.upload('docs/manual.pdf', '%PDF-1.4');
    await stack.drainIngest();
    expect((await search('saffron mole'))[0]).toMatchObject({
      docId: 'faq-1',
      metadata: { category: 'billing' },
    });
    expect((await search('quartz badger'))[0]?.docId).toBe('faq-2');
    const bad = await stack.http('GET', '/documents/bad');
    expect(bad.body).toMatchObject({ status: 'failed', error: { code: 'DOCUMENT_INVALID' } });
    expect(bad.body.error.message).toMatch(/docs\/bad\.json: .*text/);
    expect((await stack.http('GET', '/documents/manual')).body).toMatchObject({
      status: 'failed',
      error: { code: 'DOCUMENT_INVALID', message: 'docs/manual.pdf: not a readable PDF file' },
    });
    // Rewriting the file without a document deletes that document.
    await stack.upload('docs/faq.jsonl', lines.split('\n')[0] as string);
    await stack.drainIngest();
    expect(await search('quartz badger')).toEqual([]);
    expect((await stack.http('GET', '/documents/faq-2')).body.status).toBe('deleted');
  });
});

/** Files made by other tools (test/fixtures/documents/README.md says which and how). */
const fixture = (name: string) =>
  new Uint8Array(readFileSync(fileURLToPath(new URL(`../fixtures/documents/${name}`, import.meta.url))));

describe('PDF, DOCX and CSV uploads through the encoder and the HTTP API', () => {
  it('a PDF is searchable with the page of each result; a scanned PDF fails with its reason', async () => {
    await stack.upload('docs/specs/mime.pdf', fixture('shared-mime-info-spec.pdf'));
    await stack.upload('docs/specs/scan.pdf', fixture('scanned-page.pdf'));
    await stack.drainIngest();
    const pdf = await stack.http('GET', '/documents/specs/mime');
    expect(pdf.body).toMatchObject({ status: 'indexed' });
    expect(pdf.body.chunks).toBeGreaterThan(17);
    // Page 9 of the specification (as `pdftotext -f 9 -l 9` shows) describes the magic file.
    // A chunk may run over a page break: it cites the first and the last page it draws from.
    const [hit] = await search('magic string MIME-Magic big-endian byte-swapped');
    expect(hit?.docId).toBe('specs/mime');
    expect(hit?.text).toContain('MIME-Magic');
    expect(hit?.metadata.pageEnd).toBe(9);
    expect(Number(hit?.metadata.page)).toBeLessThanOrEqual(9);
    const [gnome] = await search('previous systems used by GNOME KDE and ROX');
    expect(gnome?.metadata).toMatchObject({ page: 2, pageEnd: 2 });
    const pages = (await search('MIME type', 'dense'))
      .filter((result) => result.docId === 'specs/mime')
      .map((result) => result.metadata.page);
    expect(pages.length).toBeGreaterThan(0);
    expect(pages.every((page) => typeof page === 'number' && page >= 1 && page <= 17)).toBe(true);
    expect((await stack.http('GET', '/documents/specs/scan')).body).toMatchObject({
      status: 'failed',
      error: {
        code: 'DOCUMENT_NO_TEXT_LAYER',
        message: expect.stringMatching(/no text layer.*does not run OCR/),
      },
    });
  });

  it('a DOCX made by pandoc is searchable with its title', async () => {
    await stack.upload('docs/hr/travel-policy.docx', fixture('travel-policy.docx'));
    await stack.drainIngest();
    const [hit] = await search('mileage kilometre private car');
    expect(hit).toMatchObject({ docId: 'hr/travel-policy', title: 'Travel expense policy' });
    expect(hit?.text).toContain('thirty cents per kilometre');
  });

  it('a CSV gives one document per row with its other columns as metadata; bad rows fail alone', async () => {
    await stack.upload('docs/faq.csv', fixture('faq.csv'));
    await stack.drainIngest();
    const [refund] = await search('refund original payment method');
    expect(refund).toMatchObject({
      docId: 'pay-1',
      title: 'Refund timing',
      metadata: { category: 'payments', audience: 'customers, partners' },
    });
    const filtered = await stack.http('POST', '/search', {
      query: 'parcel',
      mode: 'lexical',
      filter: { category: 'shipping' },
    });
    expect(filtered.body.results.map((result: { docId: string }) => result.docId).sort()).toEqual([
      'ship-1',
      'ship-2',
    ]);
    // The row repeating ship-1's id failed alone: ship-1 is the first row's document.
    expect((await search('tracking number confirmation'))[0]?.title).toBe('Track a parcel');
    expect(await search('repeats the id')).toEqual([]);
    const source = await stack.table.sourceDocuments('docs/faq.csv');
    expect(source?.failures?.map((failure) => [failure.line, failure.code])).toEqual([
      [4, 'DOCUMENT_INVALID'],
      [6, 'DOCUMENT_ID_DUPLICATE'],
    ]);
    // One row's document cannot be deleted alone: the CSV holds the others too.
    expect((await stack.http('DELETE', '/documents/pay-1')).status).toBe(409);
  });

  it('the column roles of a CSV travel as its S3 metadata (bisearch-csv-columns)', async () => {
    await s3Client(stack.aws.connection).send(
      new PutObjectCommand({
        Bucket: stack.aws.names.documentsBucket,
        Key: 'docs/catalogue.csv',
        Body: 'sku,name,description,notes,shelf\nK-1,Kettle,Boils water in a jade-okapi minute.,Descale monthly.,B2\n',
        Metadata: {
          [CSV_COLUMNS_METADATA_KEY]: JSON.stringify({
            id: 'sku',
            title: 'name',
            text: ['description', 'notes'],
            metadata: ['shelf'],
          }),
        },
      }),
    );
    await stack.drainIngest();
    expect((await search('jade okapi'))[0]).toMatchObject({
      docId: 'K-1',
      title: 'Kettle',
      metadata: { shelf: 'B2' },
      text: 'Boils water in a jade-okapi minute.\n\nDescale monthly.',
    });
  });
});

describe('S3 semantics the emulator lacks', () => {
  it('deleting a noncurrent version (ObjectRemoved:Delete with a versionId, the object still there) keeps the document', async () => {
    await stack.upload('docs/versioned.txt', 'The current version mentions garnet-ibex.');
    await stack.drainIngest();
    const sqs = sqsClient(stack.aws.connection);
    const record = {
      eventName: 'ObjectRemoved:Delete',
      s3: {
        bucket: { name: stack.aws.names.documentsBucket },
        object: {
          key: 'docs/versioned.txt',
          versionId: 'old-version',
          sequencer: stack.aws.sequencers.next('docs/versioned.txt'),
        },
      },
    };
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: stack.aws.ingestQueueUrl,
        MessageBody: JSON.stringify({ Records: [record] }),
      }),
    );
    await stack.drainIngest();
    expect((await search('garnet ibex'))[0]?.docId).toBe('versioned');
    expect((await stack.http('GET', '/documents/versioned')).body.status).toBe('indexed');
  });

  it('a PUT is atomic: racing PUTs and GETs of one key only ever read one whole body', async () => {
    const s3 = s3Client(stack.aws.connection);
    const Bucket = stack.aws.names.documentsBucket;
    const Key = 'scratch/atomic.json';
    // Bodies of different lengths: a torn read mixes one's length or ETag with another's bytes.
    const bodies = Array.from({ length: 8 }, (_, n) =>
      JSON.stringify({ id: `atomic-${n}`, text: `body ${n} `.repeat(200 * (n + 1)) }),
    );
    await s3.send(new PutObjectCommand({ Bucket, Key, Body: bodies[0] }));
    const reads: Array<{ body: string; etag: string | undefined }> = [];
    const get = async () => {
      const object = await s3.send(new GetObjectCommand({ Bucket, Key }));
      const body = await (object.Body as { transformToString(): Promise<string> }).transformToString();
      reads.push({ body, etag: object.ETag });
    };
    for (let round = 0; round < 5; round += 1)
      await Promise.all([
        ...bodies.map((Body) => s3.send(new PutObjectCommand({ Bucket, Key, Body }))),
        ...Array.from({ length: 8 }, get),
      ]);
    const etags = new Map(bodies.map((body) => [`"${createHash('md5').update(body).digest('hex')}"`, body]));
    expect(reads).toHaveLength(40);
    for (const read of reads) {
      expect(bodies).toContain(read.body);
      expect(etags.get(read.etag ?? '')).toBe(read.body);
    }
  });
});

describe('oversized uploads', () => {
  it('a document above 20 MB fails as too large (413 code) and its upload counts as processed', async () => {
    await stack.upload('docs/huge.txt', 'x'.repeat(20 * 1024 * 1024 + 1));
    await stack.drainIngest();
    expect((await stack.http('GET', '/documents/huge')).body).toMatchObject({
      status: 'failed',
      error: {
        code: 'DOCUMENT_TOO_LARGE',
        message: expect.stringMatching(/docs\/huge\.txt is 20971521 bytes; the limit is 20971520/),
      },
    });
    const source = await stack.table.sourceDocuments('docs/huge.txt');
    expect(source?.etag).toMatch(/^"[0-9a-f]{32}"$/);
  });
});

describe('encode batches', () => {
  it('a message that cannot be processed fails alone (partial batch response) and reaches the DLQ after 5 receives', async () => {
    await stack.upload('docs/partial.txt', 'The good record mentions lilac-tapir.');
    const sqs = sqsClient(stack.aws.connection);
    const good = await receiveOne(sqs, stack.aws.ingestQueueUrl);
    const response = await stack.encode({
      Records: [good, '{"Records": [not json'].map((body, index) => ({
        messageId: `m${index}`,
        receiptHandle: `r${index}`,
        body,
        attributes: {
          ApproximateReceiveCount: '1',
          SentTimestamp: '0',
          SenderId: 'test',
          ApproximateFirstReceiveTimestamp: '0',
        },
        messageAttributes: {},
        md5OfBody: '',
        eventSource: 'aws:sqs',
        eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:ingest',
        awsRegion: 'us-east-1',
      })),
    });
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: 'm1' }]);
    expect((await search('lilac tapir'))[0]?.docId).toBe('partial');

    // Through the queue: the poison message is received 5 times, then dead-lettered.
    await sqs.send(
      new SendMessageCommand({ QueueUrl: stack.aws.ingestQueueUrl, MessageBody: '{"Records": [not json' }),
    );
    const deadline = Date.now() + 30_000;
    let receives = 0;
    while (Date.now() < deadline) {
      const { received, failed } = await stack.poller.pollOnce(1);
      receives += received;
      expect(failed).toBe(received);
      const dead = await sqs.send(
        new ReceiveMessageCommand({ QueueUrl: stack.aws.deadLetterQueueUrl, WaitTimeSeconds: 0 }),
      );
      if (dead.Messages?.length) break;
    }
    expect(receives).toBe(5);
  });
});

describe('HTTP API of the query Lambda', () => {
  it('PUT stores a document for the normal ingest path, GET follows its state, DELETE removes it', async () => {
    const put = await stack.http('PUT', '/documents/guides%2Fsso', {
      title: 'Single sign-on',
      text: 'Connect the tangerine-walrus identity provider.',
      metadata: { product: 'sso' },
    });
    expect(put).toEqual({ status: 202, body: { docId: 'guides/sso', status: 'pending' } });
    expect((await stack.http('GET', '/documents/guides%2Fsso')).body.status).toBe('pending');
    await stack.drainIngest();
    expect((await stack.http('GET', '/documents/guides/sso')).body).toMatchObject({
      status: 'indexed',
      chunks: 1,
    });
    const filtered = await stack.http('POST', '/search', {
      query: 'tangerine walrus',
      filter: { product: 'sso' },
    });
    expect(filtered.body.results[0]).toMatchObject({ docId: 'guides/sso', title: 'Single sign-on' });
    expect(filtered.body.timingsMs).toMatchObject({
      embed: expect.any(Number),
      search: expect.any(Number),
      total: expect.any(Number),
    });
    expect((await stack.http('DELETE', '/documents/guides/sso')).status).toBe(202);
    await stack.drainIngest();
    expect((await stack.http('GET', '/documents/guides/sso')).body.status).toBe('deleted');
    expect(await search('tangerine walrus')).toEqual([]);
  });

  it('GET /documents lists every document once, page by page with a stable cursor, and filters by state', async () => {
    for (let n = 0; n < 7; n += 1)
      await stack.upload(`docs/listing/item-${n}.txt`, `Listing item ${n} text.`);
    await stack.upload('docs/listing/broken.json', '{"id": "listing/broken", "text": ');
    await stack.drainIngest();
    const everything = new Map<string, { status: string; chunks: number }>();
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await stack.http('GET', `/documents?limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.status).toBe(200);
      expect(page.body.documents.length).toBeLessThanOrEqual(3);
      for (const document of page.body.documents) {
        expect(everything.has(document.docId), `${document.docId} listed twice`).toBe(false);
        everything.set(document.docId, document);
      }
      cursor = page.body.nextCursor;
      pages += 1;
    } while (cursor);
    expect(pages).toBeGreaterThan(2);
    for (let n = 0; n < 7; n += 1)
      expect(everything.get(`listing/item-${n}`)).toMatchObject({ status: 'indexed', chunks: 1 });
    expect(everything.get('listing/broken')).toMatchObject({
      status: 'failed',
      error: { code: 'DOCUMENT_INVALID' },
    });
    // Everything the table holds, and nothing else.
    const statuses = [];
    for await (const status of stack.table.statuses()) statuses.push(status.docId);
    expect([...everything.keys()].sort()).toEqual(statuses.sort());

    const failed = await stack.http('GET', '/documents?status=failed&limit=1000');
    expect(failed.body.documents.map((document: { docId: string }) => document.docId)).toContain(
      'listing/broken',
    );
    expect(failed.body.documents.every((document: { status: string }) => document.status === 'failed')).toBe(
      true,
    );
    for (const bad of [
      'limit=0',
      'limit=1001',
      'limit=x',
      'status=pending',
      'cursor=bm90LWEtY3Vyc29y',
      'other=1',
    ])
      expect((await stack.http('GET', `/documents?${bad}`)).status, bad).toBe(400);
  });

  it('a listing page stops early at its time budget and says where to go on', async () => {
    for (let n = 0; n < 3; n += 1) await stack.upload(`docs/budget/item-${n}.txt`, `Budget item ${n}.`);
    await stack.drainIngest();
    const all = [];
    for await (const status of stack.table.statuses()) all.push(status.docId);
    const listed: string[] = [];
    let after: { pk: string; sk: string } | undefined;
    let pages = 0;
    do {
      // A budget already spent: every page ends after one Scan call of 2 items.
      const page = await stack.table.listStatuses({
        limit: 1_000,
        budgetMs: -1,
        scanPageItems: 2,
        ...(after ? { after } : {}),
      });
      listed.push(...page.statuses.map((status) => status.docId));
      after = page.next;
      pages += 1;
    } while (after);
    expect(pages).toBeGreaterThan(1);
    expect(listed.sort()).toEqual(all.sort());
  });

  it('answers bad requests with {"error": {code, message}} and the right status, never a stack trace', async () => {
    const cases: Array<[string, string, unknown, Record<string, string>, number, string]> = [
      ['POST', '/search', '{not json', {}, 400, 'INVALID_JSON'],
      ['POST', '/search', { query: '' }, {}, 400, 'INVALID_REQUEST'],
      ['POST', '/search', { query: 'x', k: 500 }, {}, 400, 'INVALID_REQUEST'],
      ['POST', '/search', { query: 'x' }, { 'content-type': 'text/plain' }, 415, 'UNSUPPORTED_MEDIA_TYPE'],
      ['POST', '/search', { query: 'x'.repeat(200_000) }, {}, 413, 'PAYLOAD_TOO_LARGE'],
      ['POST', '/search', { query: 'x'.repeat(40_000) }, {}, 400, 'INVALID_REQUEST'],
      ['PUT', '/documents/x', { text: 5 }, {}, 400, 'INVALID_REQUEST'],
      ['GET', '/documents/never-uploaded', undefined, {}, 404, 'NOT_FOUND'],
      ['GET', '/nowhere', undefined, {}, 404, 'NOT_FOUND'],
      ['DELETE', '/documents/faq-1', undefined, {}, 409, 'CONFLICT'],
    ];
    for (const [method, path, body, headers, status, code] of cases) {
      const response = await stack.http(method, path, body, headers);
      expect({ path, status: response.status, code: response.body?.error?.code }).toEqual({
        path,
        status,
        code,
      });
      expect(JSON.stringify(response.body)).not.toMatch(/\bat .*\.(ts|js):\d+/);
    }
  });
});

async function receiveOne(sqs: ReturnType<typeof sqsClient>, queueUrl: string): Promise<string> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const response = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, WaitTimeSeconds: 1, VisibilityTimeout: 60 }),
    );
    const message = response.Messages?.[0];
    if (message?.Body) return message.Body;
  }
  throw new Error('no message arrived');
}
