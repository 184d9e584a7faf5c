import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PinnedModel, resolveModelDirectory } from '../../functions/adapters/model/model-resolution.js';
import { OnnxEmbedder } from '../../functions/adapters/model/onnx-embedder.js';
import { ModelUnavailableError } from '../../functions/core/errors.js';
import { TINY_BERT_BIENCODER_DIR, USE_LITE_DIR } from '../support/shared-fixtures.js';

/** The tiny-bert fixture published the way the Hub lays out the production model. */
const FILES = [
  'model.onnx',
  'config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  '1_Pooling/config.json',
];
const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
const PINNED: PinnedModel = {
  repository: 'fixtures/tiny-bert',
  revision: 'main',
  files: FILES.map((path) => ({
    path,
    bytes: readFileSync(join(TINY_BERT_BIENCODER_DIR, path)).length,
    sha256: sha256(join(TINY_BERT_BIENCODER_DIR, path)),
  })),
};

describe('resolveModelDirectory', () => {
  let work: string;
  let server: Server;
  let endpoint: string;
  const requests: string[] = [];
  let corrupt = false;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'bisearch-models-'));
    // A local stand-in for the Hub (no model hub is reachable from tests): serves the fixture files.
    server = createServer((request, response) => {
      requests.push(request.url ?? '');
      const match = /^\/fixtures\/tiny-bert\/resolve\/main\/(.+)$/.exec(request.url ?? '');
      const path = match?.[1] ? join(TINY_BERT_BIENCODER_DIR, match[1]) : '';
      if (!path || !existsSync(path)) {
        response.writeHead(404).end();
        return;
      }
      const body = readFileSync(path);
      if (corrupt && match?.[1] === 'model.onnx') body[100] = (body[100] ?? 0) ^ 1;
      response.writeHead(200, { 'content-length': body.length }).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    rmSync(work, { recursive: true, force: true });
  });

  const env = (extra: Record<string, string> = {}) => ({
    BISEARCH_CACHE_DIR: join(work, 'cache'),
    BISEARCH_HF_ENDPOINT: endpoint,
    ...extra,
  });

  it('takes an explicit directory first, then BISEARCH_MODEL_DIR, then the bundled shared model', async () => {
    expect(
      await resolveModelDirectory({
        modelDir: TINY_BERT_BIENCODER_DIR,
        env: env({ BISEARCH_MODEL_DIR: USE_LITE_DIR }),
      }),
    ).toEqual({
      directory: TINY_BERT_BIENCODER_DIR,
      source: 'explicit',
    });
    expect(
      await resolveModelDirectory({ env: env({ BISEARCH_MODEL_DIR: TINY_BERT_BIENCODER_DIR }) }),
    ).toMatchObject({ source: 'environment' });
    expect(await resolveModelDirectory({ env: env() })).toEqual({
      directory: USE_LITE_DIR,
      source: 'bundled',
    });
  });

  it('names the variable when BISEARCH_MODEL_DIR is not a model directory', async () => {
    await expect(resolveModelDirectory({ env: env({ BISEARCH_MODEL_DIR: work }) })).rejects.toThrow(
      /BISEARCH_MODEL_DIR points to .* not a model directory/,
    );
  });

  it('downloads, verifies by sha256 and caches the pinned model when nothing local exists, then reuses the cache', async () => {
    const options = { env: env(), bundledCandidates: [], download: PINNED, progress: false };
    const downloaded = await resolveModelDirectory(options);
    expect(downloaded).toEqual({
      directory: join(work, 'cache', 'models', 'fixtures', 'tiny-bert'),
      source: 'download',
    });
    for (const file of PINNED.files) expect(sha256(join(downloaded.directory, file.path))).toBe(file.sha256);
    const embedder = await OnnxEmbedder.load(downloaded.directory);
    expect(embedder.space).toMatchObject({ dimensions: 32, pooling: 'mean' });
    await embedder.dispose();
    const before = requests.length;
    expect(await resolveModelDirectory(options)).toMatchObject({ source: 'cache' });
    expect(requests.length).toBe(before);
  });

  it('refuses a file whose sha256 differs and leaves no partial file behind', async () => {
    corrupt = true;
    try {
      const cacheDir = join(work, 'corrupt-cache');
      const error = await resolveModelDirectory({
        env: env({ BISEARCH_CACHE_DIR: cacheDir }),
        bundledCandidates: [],
        download: PINNED,
        progress: false,
      }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(ModelUnavailableError);
      expect((error as Error).message).toMatch(/model\.onnx: sha256 .* does not match the pinned/);
      expect((error as Error).message).toMatch(/BISEARCH_MODEL_DIR/);
      const directory = join(cacheDir, 'models', 'fixtures', 'tiny-bert');
      expect(existsSync(join(directory, 'model.onnx'))).toBe(false);
      expect(existsSync(join(directory, 'model.onnx.partial'))).toBe(false);
    } finally {
      corrupt = false;
    }
  });

  it('fails fast with a clear message naming BISEARCH_MODEL_DIR when the Hub cannot be reached', async () => {
    const started = Date.now();
    const error = await resolveModelDirectory({
      env: { BISEARCH_CACHE_DIR: join(work, 'offline'), BISEARCH_HF_ENDPOINT: 'http://127.0.0.1:9' },
      bundledCandidates: [],
      progress: false,
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ModelUnavailableError);
    expect((error as Error).message).toMatch(
      /cannot download http:\/\/127\.0\.0\.1:9\/Xenova\/all-MiniLM-L6-v2\/resolve\/main\/onnx\/model_quantized\.onnx/,
    );
    expect((error as Error).message).toMatch(/Set BISEARCH_MODEL_DIR/);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('gives up on a server that accepts the connection but never answers, instead of hanging', async () => {
    const silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const port = (silent.address() as AddressInfo).port;
      const error = await resolveModelDirectory({
        env: { BISEARCH_CACHE_DIR: join(work, 'silent'), BISEARCH_HF_ENDPOINT: `http://127.0.0.1:${port}` },
        bundledCandidates: [],
        stallTimeoutMs: 300,
        progress: false,
      }).catch((caught: unknown) => caught);
      expect((error as Error).message).toMatch(/no answer within 300 ms/);
    } finally {
      silent.closeAllConnections();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});
