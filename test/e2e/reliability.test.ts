/**
 * The local stack (`npm start` as a child process) under the inputs that broke it: racing writes
 * of one id, hostile ids and paths, conflicting sources, empty documents, bad bodies, a seeded
 * HTTP fuzz run, crashes in the middle of encoding and of a reindex, and load during start-up.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectionFromEnvironment, s3Client } from '../../functions/adapters/aws/aws-clients.js';
import { bisearch, eventually, type LocalProcess, startLocalProcess } from '../support/local-process.js';

const BUDGET_MS = 30_000;
const FUZZ_SEED = Number(process.env.FUZZ_SEED ?? 20_261_202);
const FUZZ_REQUESTS = Number(process.env.FUZZ_REQUESTS ?? 2_000);

const parent = mkdtempSync(join(tmpdir(), 'bisearch-reliability-'));
const dataDirectory = join(parent, 'data');
const uploads = join(parent, 'uploads');
let stack: LocalProcess;

beforeAll(async () => {
  stack = await startLocalProcess(dataDirectory, { BISEARCH_SAMPLE_CORPUS: 'off' });
}, 240_000);
afterAll(async () => {
  await stack?.stop();
  rmSync(parent, { recursive: true, force: true });
});

// biome-ignore lint/suspicious/noExplicitAny: JSON answers are checked by assertions
type Json = any;
const request = async (method: string, path: string, body?: unknown, contentType = 'application/json') => {
  const response = await fetch(`${stack.url}${path}`, {
    method,
    ...(body === undefined
      ? {}
      : {
          body: typeof body === 'string' ? body : JSON.stringify(body),
          headers: { 'content-type': contentType },
        }),
  });
  const text = await response.text();
  let json: Json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, body: json, text };
};
const path = (docId: string) => `/documents/${docId.split('/').map(encodeURIComponent).join('/')}`;
/** Searchable within the freshness budget (a search reads the change log at most every 2 s). */
const searchable = (query: string, expected: string[]) =>
  eventually(
    async () => {
      const found = await searchIds(query);
      return JSON.stringify(found) === JSON.stringify(expected) ? found : undefined;
    },
    BUDGET_MS,
    `${query} → ${expected.join(', ') || 'nothing'}`,
  );
const searchIds = async (query: string, extra: Record<string, unknown> = {}) =>
  (
    (await request('POST', '/search', { query, mode: 'lexical', k: 20, ...extra })).body.results as Array<{
      docId: string;
      text: string;
    }>
  ).map((result) => result.docId);
/** Wait until a document's state is settled (not pending) and return it. */
const settled = (docId: string) =>
  eventually(
    async () => {
      const answer = await request('GET', path(docId));
      return answer.body?.status === 'pending' ? undefined : answer;
    },
    BUDGET_MS,
    `${docId} settled`,
  );
const write = (name: string, content: string) => {
  const file = join(uploads, name);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, content);
  return file;
};

describe('racing writes of one id end in the last write (HTTP, local stack)', () => {
  it('two PUTs back to back (together; the second 30 ms after the first was answered; the same body twice) never lose the document', async () => {
    const ids: Array<{ id: string; token: string }> = [];
    for (const gap of [0, 30, -1]) {
      await Promise.all(
        Array.from({ length: 10 }, async (_, n) => {
          const id = `race/put-${gap}-${n}`;
          const token = gap === -1 ? `twin${n}word` : `second${gap}x${n}word`;
          const first = gap === -1 ? token : `first${gap}x${n}word`;
          const a = request('PUT', path(id), { text: `The ${first} version.` });
          // Only an answered PUT is ordered before the next one: requests in flight together may
          // reach S3 in either order (they are served concurrently, as by Lambda).
          if (gap > 0) {
            await a;
            await new Promise((resolve) => setTimeout(resolve, gap));
          }
          const b = request('PUT', path(id), { text: `The ${token} version.` });
          expect((await a).status).toBe(202);
          expect((await b).status).toBe(202);
          ids.push({ id, token });
        }),
      );
    }
    // Requests in flight together reach S3 in either order: the last write is what S3 holds now.
    const s3 = s3Client(connectionFromEnvironment(stack.info.environment));
    for (const { id, token } of ids) {
      const answer = await settled(id);
      expect(answer.body, `${id}: ${JSON.stringify(answer.body)}`).toMatchObject({
        status: 'indexed',
        chunks: 1,
      });
      const stored = await s3.send(
        new GetObjectCommand({ Bucket: stack.info.environment.DOCUMENTS_BUCKET, Key: `docs/${id}.json` }),
      );
      const lastText = (
        JSON.parse(await (stored.Body as { transformToString(): Promise<string> }).transformToString()) as {
          text: string;
        }
      ).text;
      const lastToken = /The (\S+) version/.exec(lastText)?.[1] as string;
      if (id.includes('-30-'))
        expect(lastToken, `sent after the first was answered, the second is last: ${id}`).toBe(token);
      await searchable(lastToken, [id]);
      const other = lastToken === token ? token.replace(/^second/, 'first') : token;
      if (other !== lastToken) await searchable(other, []);
    }
  }, 120_000);

  it('a PUT and a DELETE racing on one id end deleted, never pending', async () => {
    const ids = Array.from({ length: 10 }, (_, n) => `race/put-delete-${n}`);
    await Promise.all(
      ids.map(async (id, n) => {
        expect((await request('PUT', path(id), { text: `The racer${n}word draft.` })).status).toBe(202);
        expect((await request('DELETE', path(id))).status).toBe(202);
      }),
    );
    for (const [n, id] of ids.entries()) {
      // Put and deleted before either was processed: no document (404), then its tombstone.
      await eventually(
        async () => ((await request('GET', path(id))).body?.status === 'deleted' ? true : undefined),
        BUDGET_MS,
        `${id} deleted`,
      );
      await searchable(`racer${n}word`, []);
    }
  }, 120_000);
});

describe('ids and keys as S3 and API Gateway see them', () => {
  it('PUT ids with spaces, unicode, + and % are indexed; ? and # are refused with a reason', async () => {
    const ids = ['with space', 'ünïcødé/文档', 'plus+sign', '100%', 'pct%41'];
    for (const [n, id] of ids.entries()) {
      expect((await request('PUT', path(id), { text: `The glyph${n}word text.` })).status, id).toBe(202);
    }
    for (const [n, id] of ids.entries()) {
      expect((await settled(id)).body, id).toMatchObject({ docId: id, status: 'indexed' });
      await searchable(`glyph${n}word`, [id]);
    }
    for (const id of ['what?', 'hash#tag']) {
      const answer = await request('PUT', path(id), { text: 'x' });
      expect(answer.status, id).toBe(400);
      expect(answer.body.error.message).toMatch(/"\?" or "#"/);
    }
  }, 120_000);

  it('uploaded files whose names hold +, %, spaces or unicode are processed at once (ingest --wait)', async () => {
    const names = ['a+b.md', '50%off.txt', 'two words.txt', 'ça va.md'];
    const files = names.map((name, n) => write(`odd/${name}`, `The upload${n}word text.`));
    const result = await bisearch(
      dataDirectory,
      'ingest',
      '--root',
      join(uploads, 'odd'),
      ...files,
      '--wait',
    );
    expect(result.stdout).toMatch(/processed: 4 documents indexed, 0 failed/);
    for (const [n, name] of names.entries())
      await searchable(`upload${n}word`, [name.slice(0, name.lastIndexOf('.'))]);
  }, 120_000);

  it('no path can crash the stack or escape its data directory; bad encodings are 400, never 500', async () => {
    const long = 'x'.repeat(240);
    // 404: the decoded path normalises to no route at all (nothing is stored).
    const cases: Array<[string, number]> = [
      [`/documents/${long}`, 400],
      ['/documents/..%2F..%2F..%2F..%2Fescape-proof', 404],
      ['/documents/a%2F..%2F..%2Fescape-proof', 404],
      ['/documents/a/../../b', 404],
      ['/documents/%', 400],
      ['/documents/%zz', 400],
      ['/documents/%FF', 400],
      ['/documents/%C0%AF', 400],
    ];
    for (const [target, status] of cases) {
      const answer = await request('PUT', target, { text: 'hello' });
      expect({ target, status: answer.status }).toEqual({ target, status });
      expect(answer.body?.error?.code).toBeDefined();
    }
    expect(existsSync(join(parent, 'escape-proof.json'))).toBe(false);
    expect(readdirSync(parent).sort()).toEqual(['data', 'uploads']);
    // Decoded exactly once: %25 is a percent sign, and ids do not alias.
    expect((await request('PUT', '/documents/pct%2541', { text: 'The alias check.' })).status).toBe(202);
    expect((await settled('pct%41')).body.docId).toBe('pct%41');
    expect((await request('GET', '/health')).status).toBe(200);
  }, 60_000);
});

describe('what users see', () => {
  it('an empty document is a failure with a code, never a blank result', async () => {
    const files = [
      write('empty/blank.txt', ''),
      write('empty/script.html', '<html><script>var x = 1;</script></html>'),
    ];
    const result = await bisearch(
      dataDirectory,
      'ingest',
      '--root',
      join(uploads, 'empty'),
      ...files,
      '--wait',
    ).catch((error: { stdout: string }) => error);
    expect(result.stdout).toMatch(/failed blank: docs\/blank\.txt: the document has no text/);
    for (const id of ['blank', 'script'])
      expect((await request('GET', path(id))).body).toMatchObject({
        status: 'failed',
        error: { code: 'DOCUMENT_EMPTY' },
      });
    for (const query of ['a', '!!!???', '文档'])
      for (const mode of ['dense', 'hybrid']) {
        const results = (await request('POST', '/search', { query, mode, k: 100 })).body.results as Array<{
          text: string;
        }>;
        expect(
          results.every((result) => result.text.trim() !== ''),
          `${mode} ${query}`,
        ).toBe(true);
      }
  }, 60_000);

  it('two sources of one id are a conflict naming both, never a silent merge', async () => {
    const md = write('conflict/shared.md', '# Shared\n\nThe markdown tangelo copy.');
    expect(
      (await bisearch(dataDirectory, 'ingest', '--root', join(uploads, 'conflict'), md, '--wait')).stdout,
    ).toMatch(/1 documents indexed, 0 failed/);
    const put = await request('PUT', path('shared'), { text: 'The api copy.' });
    expect(put.status).toBe(409);
    expect(put.body.error.message).toMatch(/docs\/shared\.md/);
    const txt = write('conflict/shared.txt', 'The text copy.');
    const result = await bisearch(
      dataDirectory,
      'ingest',
      '--root',
      join(uploads, 'conflict'),
      txt,
      '--wait',
    ).catch((error: { stdout: string; code: number }) => error);
    expect(result.stdout).toMatch(/docs\/shared\.txt and docs\/shared\.md both define document shared/);
    await searchable('tangelo', ['shared']);
  }, 60_000);

  it('a skipped JSON Lines line is reported by ingest --wait, and its content never reaches the logs', async () => {
    const file = write(
      'lines/mixed.jsonl',
      [
        JSON.stringify({ id: 'line-ok', text: 'The quince line.' }),
        '{"id": "secretive", "text": "topsecretpassphrase',
      ].join('\n'),
    );
    const result = await bisearch(
      dataDirectory,
      'ingest',
      '--root',
      join(uploads, 'lines'),
      file,
      '--wait',
    ).catch((error: { stdout: string; code: number }) => error);
    expect(result.stdout).toMatch(/processed: 1 documents indexed, 1 failed/);
    expect(result.stdout).toMatch(/failed docs\/mixed\.jsonl:2: invalid JSON/);
    expect(stack.output()).not.toMatch(/topsecretpassphrase/);
  }, 60_000);

  it('ingest --wait names the uploads it gave up on, after --timeout', async () => {
    const file = write('slow/late.md', 'The slowpoke text.');
    const result = await bisearch(
      dataDirectory,
      'ingest',
      '--root',
      join(uploads, 'slow'),
      file,
      '--wait',
      '--timeout',
      '0.001',
    ).catch((error: { stdout: string; stderr: string; code: number }) => error);
    expect(result.stdout).toMatch(
      /not processed within 0\.001 s \(1 of 1\):\n {2}.*late\.md \(docs\/late\.md\)/,
    );
    expect((result as { code?: number }).code).toBe(1);
  }, 60_000);

  it('bad bodies to the local ingest-status route and unsafe filter keys are 400s', async () => {
    for (const body of ['{', '{}', '{"objects": 5}', '{"objects": [{"key": 1}]}'])
      expect((await request('POST', '/_local/ingest-status', body)).status, body).toBe(400);
    const unsafe = await request('POST', '/search', '{"query": "x", "filter": {"__proto__": {"a": 1}}}');
    expect(unsafe.status).toBe(400);
    expect(unsafe.body.error.message).toMatch(/__proto__/);
  });
});

describe(`seeded HTTP fuzzing (${FUZZ_REQUESTS} requests, seed ${FUZZ_SEED})`, () => {
  it('no input produces a 5xx, drops a connection or shows a stack trace or a path', async () => {
    const segment = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 20 }).map(encodeURIComponent),
      fc.constantFrom(
        '%',
        '%zz',
        '%FF',
        '%C0%AF',
        '..',
        '.',
        '%2e%2e',
        '%00',
        '%2F',
        'x'.repeat(300),
        '+',
        '%20',
        '?',
        '#',
      ),
      fc.stringMatching(/^[a-z0-9-]{1,12}$/),
    );
    const target = fc.oneof(
      fc.array(segment, { minLength: 1, maxLength: 4 }).map((parts) => `/documents/${parts.join('/')}`),
      fc.constantFrom(
        '/search',
        '/health',
        '/_local/status',
        '/_local/ingest-status',
        '/',
        '/nowhere',
        '/documents',
      ),
    );
    const body = fc.oneof(
      fc.jsonValue().map((value) => JSON.stringify(value)),
      fc
        .record({
          query: fc.oneof(fc.string({ maxLength: 50 }), fc.integer(), fc.constant('')),
          k: fc.oneof(fc.integer({ min: -5, max: 500 }), fc.constant('10')),
          mode: fc.constantFrom('hybrid', 'dense', 'lexical', 'other'),
          filter: fc.oneof(
            fc.constant(undefined),
            fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue(), { maxKeys: 3 }),
          ),
        })
        .map((value) => JSON.stringify(value)),
      fc
        .record({
          title: fc.option(fc.string({ maxLength: 30 })),
          text: fc.oneof(fc.string({ maxLength: 200 }), fc.integer()),
        })
        .map((value) => JSON.stringify(value)),
      fc.string({ unit: 'binary', maxLength: 100 }),
      fc.constant('{"query": "'),
    );
    const requestArbitrary = fc.record({
      method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH'),
      target,
      body,
      contentType: fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', ''),
    });
    const requests = fc.sample(requestArbitrary, { seed: FUZZ_SEED, numRuns: FUZZ_REQUESTS });
    const bad: string[] = [];
    for (let start = 0; start < requests.length; start += 8) {
      await Promise.all(
        requests.slice(start, start + 8).map(async (generated) => {
          const withBody = !['GET', 'HEAD'].includes(generated.method);
          let answer: { status: number; text: string };
          try {
            const response = await fetch(`${stack.url}${generated.target}`, {
              method: generated.method,
              ...(withBody
                ? {
                    body: generated.body,
                    headers: generated.contentType ? { 'content-type': generated.contentType } : {},
                  }
                : {}),
            });
            answer = { status: response.status, text: await response.text() };
          } catch (error) {
            bad.push(
              `${generated.method} ${generated.target}: connection failed (${(error as Error).message})`,
            );
            return;
          }
          if (answer.status >= 500)
            bad.push(
              `${generated.method} ${generated.target}: ${answer.status} ${answer.text.slice(0, 200)}`,
            );
          if (
            /\bat .*\.(ts|js|mjs):\d+|\/work\/|node_modules/.test(answer.text) ||
            answer.text.includes(parent)
          )
            bad.push(`${generated.method} ${generated.target}: internals in the body`);
        }),
      );
    }
    expect(bad).toEqual([]);
    expect((await request('GET', '/health')).status).toBe(200);
  }, 300_000);
});

describe('crashes (SIGKILL) lose nothing and resurrect nothing', () => {
  it('killed during an encode batch and during a reindex build: every accepted document is searchable after restart, deleted ones stay deleted', async () => {
    // Accepted, then killed while the encoder works through them.
    const ids = Array.from({ length: 30 }, (_, n) => `crash/doc-${n}`);
    for (const [n, id] of ids.entries())
      expect((await request('PUT', path(id), { text: `The crashproof${n}word document.` })).status).toBe(202);
    await eventually(
      async () => ((await searchIds('crashproof0word')).length > 0 ? true : undefined),
      BUDGET_MS,
      'encoding under way',
    );
    expect(await stack.stop('SIGKILL')).toBeNull();
    stack = await startLocalProcess(dataDirectory, { BISEARCH_SAMPLE_CORPUS: 'off' });
    for (const [n, id] of ids.entries())
      await eventually(
        async () => ((await searchIds(`crashproof${n}word`)).includes(id) ? true : undefined),
        BUDGET_MS,
        `${id} searchable`,
      );

    // Deleted, then killed in the middle of a reindex.
    const deleted = ids.slice(0, 5);
    for (const id of deleted) expect((await request('DELETE', path(id))).status).toBe(202);
    for (const id of deleted) expect((await settled(id)).body.status).toBe('deleted');
    await fetch(`${stack.url}/_local/reindex`, { method: 'POST' });
    await eventually(
      async () => ((await request('GET', '/_local/status')).body.reindexRunning ? true : undefined),
      BUDGET_MS,
      'reindex running',
    );
    expect(await stack.stop('SIGKILL')).toBeNull();
    stack = await startLocalProcess(dataDirectory, { BISEARCH_SAMPLE_CORPUS: 'off' });
    const rebuilt = await bisearch(dataDirectory, 'reindex', '--wait');
    expect(rebuilt.stdout).toMatch(/succeeded/);
    for (const [n, id] of ids.entries()) {
      const found = await searchIds(`crashproof${n}word`);
      expect(found, id).toEqual(deleted.includes(id) ? [] : [id]);
    }
  }, 300_000);
});

describe('start-up under load', () => {
  it('a slow first sample ingest is a warning, not an exit: the stack keeps serving and builds its first index', async () => {
    const directory = join(parent, 'startup');
    const busy = await startLocalProcess(directory, { BISEARCH_SAMPLE_INGEST_TIMEOUT_MS: '1000' });
    try {
      const answers = await Promise.all(
        Array.from({ length: 200 }, (_, n) =>
          fetch(`${busy.url}/documents/load-${n}`, {
            method: 'PUT',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ text: `Load document ${n} about parcels and refunds.` }),
          }).then((response) => response.status),
        ),
      );
      expect(answers.every((code) => code === 202)).toBe(true);
      await eventually(
        async () =>
          ((await fetch(`${busy.url}/_local/status`).then((r) => r.json())) as Json).index.version
            ? true
            : undefined,
        180_000,
        'first index built under load',
      );
      expect(busy.output()).toMatch(/warning: ingest did not finish within 1000 ms/);
      expect((await fetch(`${busy.url}/health`)).status).toBe(200);
    } finally {
      await busy.stop();
    }
  }, 300_000);
});

describe('a bounded delta', () => {
  it('a bulk upload past BISEARCH_DELTA_REINDEX_CHUNKS builds an index by itself, once, with no reindex asked for', async () => {
    const directory = join(parent, 'bounded-delta');
    const bulk = await startLocalProcess(directory, {
      BISEARCH_SAMPLE_CORPUS: 'off',
      BISEARCH_DELTA_REINDEX_CHUNKS: '8',
    });
    try {
      const status = async () => (await fetch(`${bulk.url}/_local/status`).then((r) => r.json())) as Json;
      expect((await status()).index.version).toBeNull();
      for (let n = 0; n < 10; n += 1) {
        const answer = await fetch(`${bulk.url}/documents/bulk-${n}`, {
          method: 'PUT',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ text: `Bulk document ${n} about the garnetbulk${n} shelf.` }),
        });
        expect(answer.status).toBe(202);
      }
      const version = await eventually(
        async () => {
          await fetch(`${bulk.url}/search`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ query: 'garnetbulk9', mode: 'lexical' }),
          });
          return (await status()).index.version ?? undefined;
        },
        120_000,
        'an index built because the delta outgrew its bound',
      );
      const health = (await fetch(`${bulk.url}/health`).then((r) => r.json())) as Json;
      expect(health.autoReindex).toMatchObject({ deltaChunks: 8, outcome: 'started' });
      const after = await status();
      expect(after.lastReindex).toMatchObject({ outcome: 'succeeded', detail: version });
      // The new index holds the bulk, so the delta is back under its bound: no second run.
      await eventually(
        async () => ((await status()).index.deltaSize < 8 ? true : undefined),
        60_000,
        'the delta emptied by the new index',
      );
      expect(bulk.output().match(/first index built|scheduled reindex/g) ?? []).toEqual([]);
    } finally {
      await bulk.stop();
    }
  }, 300_000);
});
