import { createHash } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SingleBar } from 'cli-progress';
import { ModelUnavailableError } from '../../core/errors.js';
import { fileDigest } from '../index/snapshot-files.js';

/** A file of a published model and its expected size and sha256. */
export interface PinnedFile {
  /** Path inside the model repository, e.g. `onnx/model_quantized.onnx`. */
  readonly path: string;
  readonly bytes: number;
  readonly sha256: string;
}

/** A model on the Hugging Face Hub, pinned by the sha256 of every file we use. */
export interface PinnedModel {
  readonly repository: string;
  readonly revision: string;
  readonly files: readonly PinnedFile[];
}

/**
 * The production default: Xenova/all-MiniLM-L6-v2, quantized ONNX + tokenizer (384-d, mean
 * pooling, L2-normalised). Hashes from ../shared/models/README.md; a file whose hash differs is
 * refused, so a changed upstream file fails loudly instead of silently changing the embedding space.
 */
export const DEFAULT_MODEL: PinnedModel = {
  repository: 'Xenova/all-MiniLM-L6-v2',
  revision: 'main',
  files: [
    {
      path: 'onnx/model_quantized.onnx',
      bytes: 22_972_370,
      sha256: 'afdb6f1a0e45b715d0bb9b11772f032c399babd23bfc31fed1c170afc848bdb1',
    },
    {
      path: 'config.json',
      bytes: 650,
      sha256: '7135149f7cffa1a573466c6e4d8423ed73b62fd2332c575bf738a0d033f70df7',
    },
    {
      path: 'tokenizer.json',
      bytes: 711_661,
      sha256: 'da0e79933b9ed51798a3ae27893d3c5fa4a201126cef75586296df9b4d2c62a0',
    },
    {
      path: 'tokenizer_config.json',
      bytes: 366,
      sha256: '9261e7d79b44c8195c1cada2b453e55b00aeb81e907a6664974b4d7776172ab3',
    },
    {
      path: 'special_tokens_map.json',
      bytes: 125,
      sha256: 'b6d346be366a7d1d48332dbc9fdf3bf8960b5d879522b7799ddba59e76237ee3',
    },
  ],
};

export interface ModelResolutionOptions {
  /** Use exactly this directory (highest priority). */
  readonly modelDir?: string;
  /** Environment to read `BISEARCH_MODEL_DIR`, `BISEARCH_CACHE_DIR`, `BISEARCH_HF_ENDPOINT` from. Default `process.env`. */
  readonly env?: Record<string, string | undefined>;
  /** Offline model directories tried in order when present. Default: `../shared/models/use-lite` beside the checkout and the working directory. */
  readonly bundledCandidates?: readonly string[];
  /** The model to fetch when nothing local is found. Default {@link DEFAULT_MODEL}. */
  readonly download?: PinnedModel;
  /** Abort a download that sends nothing for this long. Default 20 s. */
  readonly stallTimeoutMs?: number;
  /** Show a progress bar (stderr). Default: when stderr is a terminal. */
  readonly progress?: boolean;
}

/** Where the chosen model came from. */
export interface ResolvedModel {
  readonly directory: string;
  readonly source: 'explicit' | 'environment' | 'bundled' | 'cache' | 'download';
}

const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Default offline candidates: the shared USE-lite model beside the checkout or the working directory. */
export function defaultBundledCandidates(): string[] {
  return [
    join(PROJECT_ROOT, '..', 'shared', 'models', 'use-lite'),
    resolve('..', 'shared', 'models', 'use-lite'),
  ];
}

/** Directory under which downloaded models are cached. */
export function modelCacheDirectory(env: Record<string, string | undefined> = process.env): string {
  return join(
    env.BISEARCH_CACHE_DIR ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'bisearch'),
    'models',
  );
}

/**
 * Find the model directory to use, in this order: `modelDir` option, `BISEARCH_MODEL_DIR`,
 * `../shared/models/use-lite` when present, a complete verified copy in the local cache, then a
 * download of the pinned default model from the Hugging Face Hub (sha256-verified, with a progress
 * bar). A download that cannot connect or stalls fails with {@link ModelUnavailableError} naming
 * `BISEARCH_MODEL_DIR`; it never hangs.
 */
export async function resolveModelDirectory(options: ModelResolutionOptions = {}): Promise<ResolvedModel> {
  const env = options.env ?? process.env;
  if (options.modelDir)
    return { directory: requireDirectory(options.modelDir, 'the modelDir option'), source: 'explicit' };
  if (env.BISEARCH_MODEL_DIR)
    return {
      directory: requireDirectory(env.BISEARCH_MODEL_DIR, 'BISEARCH_MODEL_DIR'),
      source: 'environment',
    };
  for (const candidate of options.bundledCandidates ?? defaultBundledCandidates()) {
    if (existsSync(join(candidate, 'tokenizer.json')))
      return { directory: resolve(candidate), source: 'bundled' };
  }
  const model = options.download ?? DEFAULT_MODEL;
  const directory = join(modelCacheDirectory(env), ...model.repository.split('/'));
  if (await isCompleteCopy(directory, model)) return { directory, source: 'cache' };
  await downloadPinnedModel(model, directory, {
    endpoint: env.BISEARCH_HF_ENDPOINT ?? 'https://huggingface.co',
    stallTimeoutMs: options.stallTimeoutMs ?? 20_000,
    progress: options.progress ?? Boolean(process.stderr.isTTY),
  });
  return { directory, source: 'download' };
}

function requireDirectory(directory: string, where: string): string {
  if (!existsSync(join(directory, 'tokenizer.json'))) {
    throw new ModelUnavailableError(
      `${where} points to ${directory}, which is not a model directory (no tokenizer.json)`,
    );
  }
  return resolve(directory);
}

async function isCompleteCopy(directory: string, model: PinnedModel): Promise<boolean> {
  for (const file of model.files) {
    const path = join(directory, file.path);
    if (!existsSync(path)) return false;
    const digest = await fileDigest(path);
    if (digest.sha256 !== file.sha256) return false;
  }
  return true;
}

/**
 * Download every pinned file into `directory`, each to a temporary name first, verified by size and
 * sha256 before it is renamed into place.
 */
export async function downloadPinnedModel(
  model: PinnedModel,
  directory: string,
  options: { endpoint: string; stallTimeoutMs: number; progress: boolean },
): Promise<void> {
  const total = model.files.reduce((sum, file) => sum + file.bytes, 0);
  const bar = options.progress
    ? new SingleBar({
        format: `Downloading ${model.repository} [{bar}] {percentage}% {value}/{total} bytes`,
        stream: process.stderr,
      })
    : undefined;
  bar?.start(total, 0);
  let received = 0;
  try {
    for (const file of model.files) {
      const url = `${options.endpoint.replace(/\/$/, '')}/${model.repository}/resolve/${model.revision}/${file.path}`;
      const target = join(directory, file.path);
      await mkdir(dirname(target), { recursive: true });
      const partial = `${target}.partial`;
      try {
        const sha256 = await fetchToFile(url, partial, options.stallTimeoutMs, (bytes) => {
          received += bytes;
          bar?.update(received);
        });
        if (sha256 !== file.sha256) {
          throw new ModelUnavailableError(
            `${url}: sha256 ${sha256} does not match the pinned ${file.sha256}; refusing the file. Set BISEARCH_MODEL_DIR to a verified model directory.`,
          );
        }
        await rename(partial, target);
      } finally {
        await rm(partial, { force: true });
      }
    }
  } finally {
    bar?.stop();
  }
}

async function fetchToFile(
  url: string,
  path: string,
  stallTimeoutMs: number,
  onBytes: (bytes: number) => void,
): Promise<string> {
  const controller = new AbortController();
  let stallTimer = setTimeout(() => controller.abort(), stallTimeoutMs);
  const resetStallTimer = () => {
    clearTimeout(stallTimer);
    stallTimer = setTimeout(() => controller.abort(), stallTimeoutMs);
  };
  const hint =
    'Set BISEARCH_MODEL_DIR to a local model directory (Hugging Face layout), or allow access to the Hub.';
  try {
    let response: Response;
    try {
      response = await fetch(url, { signal: controller.signal, redirect: 'follow' });
    } catch (cause) {
      const reason = controller.signal.aborted
        ? `no answer within ${stallTimeoutMs} ms`
        : describeFetchError(cause);
      throw new ModelUnavailableError(`cannot download ${url}: ${reason}. ${hint}`, { cause });
    }
    if (!response.ok || !response.body) {
      throw new ModelUnavailableError(`cannot download ${url}: HTTP ${response.status}. ${hint}`);
    }
    const hash = createHash('sha256');
    const out = createWriteStream(path);
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        resetStallTimer();
        hash.update(chunk);
        onBytes(chunk.length);
        if (!out.write(chunk))
          await new Promise<void>((resolveDrain) => out.once('drain', () => resolveDrain()));
      }
    } catch (cause) {
      if (cause instanceof ModelUnavailableError) throw cause;
      throw new ModelUnavailableError(
        `download of ${url} failed: ${controller.signal.aborted ? `stalled for ${stallTimeoutMs} ms` : describeFetchError(cause)}. ${hint}`,
        { cause },
      );
    } finally {
      await new Promise<void>((resolveClose, rejectClose) =>
        out.end((error?: Error | null) => (error ? rejectClose(error) : resolveClose())),
      );
    }
    return hash.digest('hex');
  } finally {
    clearTimeout(stallTimer);
  }
}

function describeFetchError(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error as Error).message ?? String(error);
}
