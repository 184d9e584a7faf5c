import { execFile } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBisearchClient } from '../../functions/client/index.js';
import { BisearchRetriever } from '../../functions/client/langchain.js';
import {
  documentAcceptedResponseSchema,
  documentListResponseSchema,
  documentStatusResponseSchema,
  errorResponseSchema,
  healthResponseSchema,
  searchResponseSchema,
} from '../../functions/core/api-contract.js';
import { buildOpenApiDocument, type OpenApiDocument } from '../../functions/core/openapi.js';
import { API_TYPES_FILE, generateApiTypes } from '../../infra/local/api-types.js';
import { bisearch, eventually, type LocalProcess, startLocalProcess } from '../support/local-process.js';

/** How long a change may take to become searchable on this machine (the design promises seconds). */
const FRESHNESS_BUDGET_MS = 15_000;

const dataDirectory = mkdtempSync(join(tmpdir(), 'bisearch-e2e-'));
const uploads = mkdtempSync(join(tmpdir(), 'bisearch-e2e-docs-'));
let stack: LocalProcess;

beforeAll(async () => {
  stack = await startLocalProcess(dataDirectory);
}, 240_000);
afterAll(async () => {
  await stack?.stop();
  rmSync(dataDirectory, { recursive: true, force: true });
  rmSync(uploads, { recursive: true, force: true });
});

const api = async (method: string, path: string, body?: unknown) => {
  const response = await fetch(`${stack.url}${path}`, {
    method,
    ...(body === undefined
      ? {}
      : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  // biome-ignore lint/suspicious/noExplicitAny: JSON answers are checked by assertions
  return { status: response.status, body: (await response.json()) as any };
};
const docIds = async (query: string, mode = 'lexical') =>
  ((await api('POST', '/search', { query, mode, k: 10 })).body.results as Array<{ docId: string }>).map(
    (result) => result.docId,
  );
const status = async () => JSON.parse((await bisearch(dataDirectory, 'status', '--json')).stdout);
const write = (name: string, content: string) => {
  const path = join(uploads, name);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, content);
  return path;
};

describe('npm start: the whole system on one machine', () => {
  it('first start ingests the sample corpus and builds the first index', async () => {
    expect(stack.output()).toMatch(/first start: ingesting 98 sample help-centre articles/);
    // The API answers at once; the sample corpus and the first index finish in the background.
    const current = await eventually(
      async () => {
        const now = await status();
        return now.index.version ? now : undefined;
      },
      120_000,
      'first index built',
    );
    expect(current.index).toMatchObject({ vectors: 98, deltaSize: 0 });
    // The first index's search ef was chosen for the recall target, and status says so.
    expect(current.index).toMatchObject({
      expansionSearch: expect.any(Number),
      recall: { target: 0.98, k: 10, reached: true },
    });
    expect(current.index.recall.measured).toBeGreaterThanOrEqual(0.98);
    expect((await bisearch(dataDirectory, 'status')).stdout).toMatch(
      /^ann recall {5}\d\.\d{4} recall@10 on held-out queries, target 0\.98 \(ef \d+, connectivity 16\)$/m,
    );
    expect(current.index.version).toMatch(/^\d{8}T\d{9}Z-[0-9a-f]{8}$/);
    expect(current.documents).toEqual({ indexed: 98, failed: 0, deleted: 0 });
    expect((await docIds('refund annual subscription', 'hybrid'))[0]).toBe('help/refund-policy');
    const cli = await bisearch(
      dataDirectory,
      'search',
      'reset my password',
      '--k',
      '3',
      '--filter',
      'category=account',
    );
    expect(cli.stdout).toMatch(/^1\. Reset your password {2}\[help\/reset-password\]/);
  });

  it('bisearch search --filter matches typed metadata: level=2 the number, level=\'"2"\' the string', async () => {
    expect(
      (
        await api('PUT', '/documents/typed/level-two', {
          text: 'The quokkatyped guide.',
          metadata: { level: 2 },
        })
      ).status,
    ).toBe(202);
    expect(
      (
        await api('PUT', '/documents/typed/level-text', {
          text: 'The quokkatyped memo.',
          metadata: { level: '2' },
        })
      ).status,
    ).toBe(202);
    await eventually(
      async () => ((await docIds('quokkatyped')).length === 2 ? true : undefined),
      60_000,
      'both typed documents searchable',
    );
    const ids = async (...filter: string[]) =>
      (
        JSON.parse(
          (await bisearch(dataDirectory, 'search', 'quokkatyped', '--mode', 'lexical', '--json', ...filter))
            .stdout,
        ).results as Array<{ docId: string }>
      ).map((result) => result.docId);
    expect(await ids('--filter', 'level=2')).toEqual(['typed/level-two']);
    expect(await ids('--filter', 'level="2"')).toEqual(['typed/level-text']);
    expect((await ids('--filter-json', '{"level": [2, "2"]}')).sort()).toEqual([
      'typed/level-text',
      'typed/level-two',
    ]);
  });

  it('an uploaded document is searchable within seconds, an update replaces it, a delete removes it; GET /documents follows each state', async () => {
    const path = write('notes/quasar.md', '# Quasar notes\n\nThe quasar-pelican migrates at dawn.');
    const ingest = await bisearch(dataDirectory, 'ingest', '--root', join(uploads, 'notes'), path);
    expect(ingest.stdout).toMatch(/uploaded 1, skipped 0 \(unsupported type\), failed 0/);
    await eventually(
      async () => ((await docIds('pelican migrates dawn')).includes('quasar') ? true : undefined),
      FRESHNESS_BUDGET_MS,
      'upload searchable',
    );
    expect((await api('GET', '/documents/quasar')).body).toMatchObject({ status: 'indexed', chunks: 1 });

    write('notes/quasar.md', '# Quasar notes\n\nThe nebula-heron replaced the old bird.');
    await bisearch(dataDirectory, 'ingest', '--root', join(uploads, 'notes'), path);
    await eventually(
      async () => ((await docIds('nebula heron replaced')).includes('quasar') ? true : undefined),
      FRESHNESS_BUDGET_MS,
      'update searchable',
    );
    expect(await docIds('pelican migrates dawn')).not.toContain('quasar');

    expect((await api('DELETE', '/documents/quasar')).status).toBe(202);
    expect((await api('GET', '/documents/quasar')).body.status).toBe('pending');
    await eventually(
      async () => ((await docIds('nebula heron replaced')).includes('quasar') ? undefined : true),
      FRESHNESS_BUDGET_MS,
      'delete applied',
    );
    await eventually(
      async () => ((await api('GET', '/documents/quasar')).body.status === 'deleted' ? true : undefined),
      FRESHNESS_BUDGET_MS,
      'status deleted',
    );
  });

  it('a malformed document fails with a reason; the other documents of the same upload are searchable', async () => {
    write('batch/good.txt', 'The obsidian-lynx guide explains everything.');
    write('batch/broken.json', '{"id": "broken", "text": ');
    const ingest = await bisearch(
      dataDirectory,
      'ingest',
      '--root',
      join(uploads, 'batch'),
      join(uploads, 'batch'),
      '--wait',
    ).catch((error: { stdout: string; code: number }) => error);
    expect(ingest.stdout).toMatch(/uploaded 2/);
    expect(ingest.stdout).toMatch(
      /processed: 1 documents indexed, 1 failed\n {2}failed broken: docs\/broken\.json: invalid JSON/,
    );
    expect((ingest as { code?: number }).code).toBe(1);
    // Searchable within the staleness bound (2 s), not necessarily at once.
    await eventually(
      async () => ((await docIds('obsidian lynx'))[0] === 'good' ? true : undefined),
      10_000,
      'good searchable',
    );
    const broken = (await api('GET', '/documents/broken')).body;
    expect(broken).toMatchObject({
      status: 'failed',
      error: { code: 'DOCUMENT_INVALID', message: expect.stringMatching(/docs\/broken\.json: invalid JSON/) },
    });
    expect((await status()).documents.failed).toBe(1);
    // bisearch documents pages through GET /documents.
    const listed = JSON.parse(
      (await bisearch(dataDirectory, 'documents', '--status', 'failed', '--json')).stdout,
    );
    expect(listed).toEqual([expect.objectContaining({ docId: 'broken', status: 'failed', chunks: 0 })]);
    const lines = (await bisearch(dataDirectory, 'documents', '--page-size', '7')).stdout.trim().split('\n');
    const { indexed, failed, deleted } = (await status()).documents;
    expect(lines.length).toBe(indexed + failed + deleted);
    expect(lines.find((line) => line.endsWith(' good'))).toMatch(/^indexed +1 chunks/);
    // Piped into a reader that stops early (a page per document: writes go on after it left).
    const piped = await promisify(execFile)(
      'bash',
      ['-o', 'pipefail', '-c', `node infra/local/bin/bisearch.mjs documents --page-size 1 | head -n 1`],
      { cwd: process.cwd(), env: { ...process.env, BISEARCH_DATA_DIR: dataDirectory } },
    );
    expect(piped.stdout.trim().split('\n')).toHaveLength(1);
    expect(piped.stderr).not.toMatch(/EPIPE/);
  });

  it('GET /openapi.json is the contract; the client types regenerate from it unchanged; every route answers as documented', async () => {
    const live = (await (await fetch(`${stack.url}/openapi.json`)).json()) as OpenApiDocument;
    expect(live).toEqual(buildOpenApiDocument());
    expect(await generateApiTypes(live)).toBe(readFileSync(API_TYPES_FILE, 'utf8'));
    // Strict response schemas: an undocumented field, or a missing one, fails the parse.
    const client = createBisearchClient({ baseUrl: stack.url });
    const search = await client.POST('/search', { body: { query: 'refund annual subscription', k: 3 } });
    expect(search.response.status).toBe(200);
    expect(searchResponseSchema.parse(search.data).results[0]?.docId).toBe('help/refund-policy');
    healthResponseSchema.parse((await client.GET('/health')).data);
    const put = await client.PUT('/documents/{docId}', {
      params: { path: { docId: 'contract/heron' } },
      body: { title: 'Heron', text: 'The contract-heron waits.', metadata: { page: 3 } },
    });
    expect(put.response.status).toBe(202);
    documentAcceptedResponseSchema.parse(put.data);
    const one = await client.GET('/documents/{docId}', { params: { path: { docId: 'contract/heron' } } });
    expect(documentStatusResponseSchema.parse(one.data).docId).toBe('contract/heron');
    const page = await client.GET('/documents', { params: { query: { limit: 2 } } });
    const listed = documentListResponseSchema.parse(page.data);
    expect(listed.documents).toHaveLength(2);
    expect(listed.nextCursor).toEqual(expect.any(String));
    const missing = await client.GET('/documents/{docId}', { params: { path: { docId: 'contract/none' } } });
    expect(missing.response.status).toBe(404);
    expect(errorResponseSchema.parse(missing.error).error.code).toBe('NOT_FOUND');
    const invalid = await client.POST('/search', { body: { query: 'x', k: 0 } });
    expect(invalid.response.status).toBe(400);
    expect(errorResponseSchema.parse(invalid.error).error.code).toBe('INVALID_REQUEST');
    await eventually(
      async () =>
        (await client.GET('/documents/{docId}', { params: { path: { docId: 'contract/heron' } } })).data
          ?.status === 'indexed'
          ? true
          : undefined,
      FRESHNESS_BUDGET_MS,
      'contract document indexed',
    );
    const removed = await client.DELETE('/documents/{docId}', {
      params: { path: { docId: 'contract/heron' } },
    });
    expect(removed.response.status).toBe(202);
    documentAcceptedResponseSchema.parse(removed.data);
  });

  it('the LangChain retriever returns Documents from POST /search: chunk text, docId, scores, PDF pages; signed requests go through', async () => {
    const pdfs = join(uploads, 'pdfs');
    mkdirSync(pdfs, { recursive: true });
    copyFileSync(
      fileURLToPath(new URL('../fixtures/documents/shared-mime-info-spec.pdf', import.meta.url)),
      join(pdfs, 'mime-spec.pdf'),
    );
    await bisearch(dataDirectory, 'ingest', '--root', pdfs, pdfs, '--wait');
    const retriever = new BisearchRetriever({ url: stack.url, k: 3 });
    const documents = await retriever.invoke('refund annual subscription');
    expect(documents).toHaveLength(3);
    const [first] = documents;
    expect(first?.metadata).toMatchObject({
      docId: 'help/refund-policy',
      chunkId: expect.any(String),
      score: expect.any(Number),
      scores: { fused: expect.any(Number) },
      category: expect.any(String),
    });
    expect(first?.id).toBe(first?.metadata.chunkId);
    const api = (
      await createBisearchClient({ baseUrl: stack.url }).POST('/search', {
        body: { query: 'refund annual subscription', k: 3 },
      })
    ).data;
    expect(documents.map((document) => document.pageContent)).toEqual(
      api?.results.map((result) => result.text),
    );
    // A PDF chunk cites its pages; the retriever's filter and mode reach the API.
    const pdf = new BisearchRetriever({ url: stack.url, k: 2, mode: 'lexical', filter: { pageEnd: 9 } });
    const [hit] = await pdf.invoke('magic string MIME-Magic big-endian byte-swapped');
    expect(hit?.metadata).toMatchObject({ docId: 'mime-spec', pageEnd: 9, page: expect.any(Number) });
    expect(hit?.pageContent).toContain('MIME-Magic');
    // SigV4-signed (the local stack does not check signatures, as API Gateway would): the signed
    // request, body included, reaches the API intact.
    const signed = new BisearchRetriever({
      url: stack.url,
      k: 1,
      signing: {
        region: 'us-east-1',
        credentials: {
          accessKeyId: 'AKIDEXAMPLE',
          secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
        },
      },
    });
    expect((await signed.invoke('refund annual subscription'))[0]?.metadata.docId).toBe('help/refund-policy');
  });

  it('the search page shows results for a typed query and the index status (headless Chromium)', async () => {
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-quic',
      ],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
      await page.goto(stack.url);
      await page.getByLabel('Query').fill('how do I download an invoice');
      await page.getByLabel('Mode').selectOption('hybrid');
      await page.getByRole('button', { name: 'Search' }).click();
      const first = page.locator('article.result').first();
      await first.waitFor({ timeout: 15_000 });
      expect(await first.getAttribute('data-doc-id')).toBe('help/download-invoice');
      const marks = (await first.locator('mark').allTextContents()).map((text) => text.toLowerCase());
      expect(marks.some((text) => text.startsWith('invoice'))).toBe(true);
      expect(await first.locator('.meta').textContent()).toContain('category: billing');
      expect(await page.getByTestId('version').textContent()).toBe((await status()).index.version);
      // The result count and a metadata filter are controls of the page.
      await page.getByLabel('Results').selectOption('5');
      await page.getByLabel('Filter').fill('category=account');
      await page.getByRole('button', { name: 'Search' }).click();
      // Evaluated in the page (a string: this file is type-checked without the DOM library).
      await page.waitForFunction(
        "document.querySelector('#results p.message')?.textContent?.includes('results in')",
      );
      const filtered = page.locator('article.result');
      expect(await filtered.count()).toBeLessThanOrEqual(5);
      expect(await filtered.count()).toBeGreaterThan(0);
      for (const meta of await filtered.locator('.meta').allTextContents())
        expect(meta).toContain('category: account');
      // Every card has a title and a snippet, never a blank card.
      for (const title of await filtered.locator('h2 span:first-child').allTextContents())
        expect(title.trim()).not.toBe('');
      expect(await page.locator('link[rel=icon]').count()).toBe(1);
      expect(await page.getByLabel('Query').getAttribute('placeholder')).toBe('Search your documents…');
      const artifacts = join(import.meta.dirname, 'artifacts');
      mkdirSync(artifacts, { recursive: true });
      await page.screenshot({ path: join(artifacts, 'search-page.png'), fullPage: true });
      expect(existsSync(join(artifacts, 'search-page.png'))).toBe(true);
    } finally {
      await browser.close();
    }
  });

  it('a reindex advances the version, the same queries return the same documents, and the delta empties', async () => {
    const before = await status();
    expect(before.index.deltaSize).toBeGreaterThan(0);
    const queries = ['obsidian lynx', 'refund annual subscription', 'track my parcel'];
    const results = await Promise.all(queries.map((query) => docIds(query)));
    const reindex = await bisearch(dataDirectory, 'reindex', '--wait');
    expect(reindex.stdout).toMatch(/succeeded: version \d{8}T/);
    const after = await status();
    expect(after.index.version).not.toBe(before.index.version);
    expect(after.index.version > before.index.version).toBe(true);
    expect(after.index.deltaSize).toBe(0);
    expect(after.lastReindex).toMatchObject({ outcome: 'succeeded' });
    expect(await Promise.all(queries.map((query) => docIds(query)))).toEqual(results);
    // The same on the Fargate build task (its entry point in a process of its own).
    const onFargate = await bisearch(dataDirectory, 'reindex', '--wait', '--full', '--build-on', 'fargate');
    expect(onFargate.stdout).toMatch(
      /succeeded: version \d{8}T.*\(full: requested; built on the Fargate task\)/,
    );
    expect(await Promise.all(queries.map((query) => docIds(query)))).toEqual(results);
    await expect(bisearch(dataDirectory, 'reindex', '--build-on', 'ec2')).rejects.toMatchObject({
      stderr: expect.stringMatching(/ec2.*lambda, fargate/s),
    });
  });

  it('stop and restart: documents and the index version are still there', async () => {
    const before = await status();
    expect(await stack.stop('SIGINT')).toBe(0);
    expect(existsSync(join(dataDirectory, 'stack.json'))).toBe(false);
    stack = await startLocalProcess(dataDirectory);
    expect(stack.output()).not.toMatch(/first start/);
    const after = await status();
    expect(after.index.version).toBe(before.index.version);
    expect(after.documents).toEqual(before.documents);
    expect((await docIds('obsidian lynx'))[0]).toBe('good');
  }, 240_000);

  it('a crash with an upload still queued loses nothing: the upload is re-enqueued on the next start', async () => {
    await stack.stop('SIGINT');
    stack = await startLocalProcess(dataDirectory, { BISEARCH_INGEST: 'off' });
    await bisearch(
      dataDirectory,
      'ingest',
      '--root',
      uploads,
      write('late.txt', 'The zircon-walrus arrived during the crash.'),
    );
    expect(await docIds('zircon walrus')).toEqual([]);
    expect(await stack.stop('SIGKILL')).toBeNull();
    stack = await startLocalProcess(dataDirectory);
    expect(stack.output()).toMatch(/re-enqueued 1 object events/);
    await eventually(
      async () => ((await docIds('zircon walrus')).includes('late') ? true : undefined),
      FRESHNESS_BUDGET_MS,
      'recovered upload searchable',
    );
  }, 240_000);
});
