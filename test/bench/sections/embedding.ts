/**
 * Embedding cost: model session creation; single-query latency; passages/s across batch sizes
 * and onnxruntime intra-op thread counts; length-sorted batches (bisearch) against naive batches
 * in input order; bisearch's path against the bare onnxruntime session on the same batches (our
 * overhead: tokenising, tensor building, pooling); and, on tiny-bert, against
 * `@huggingface/transformers` feature extraction over the same files.
 */
import { mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describeModelDirectory } from '../../../functions/adapters/model/model-directory.js';
import { type EncodedSequence, ModelTokenizer } from '../../../functions/adapters/model/model-tokenizer.js';
import { OnnxEmbedder } from '../../../functions/adapters/model/onnx-embedder.js';
import { openOnnxSession } from '../../../functions/adapters/model/onnx-session.js';
import { type Percentiles, percentile, percentiles, progress, sampleMs, timed } from '../lib/measure.js';

export interface ThroughputPoint {
  readonly batchSize: number;
  readonly threads: number;
  readonly passagesPerSecond: number;
}

export interface OverheadResult {
  readonly model: string;
  readonly passages: number;
  /** Median ms to embed all passages through OnnxEmbedder. */
  readonly bisearchMs: number;
  /** Median ms of `session.run` alone on the same batches (tokenised beforehand), same session. */
  readonly rawSessionMs: number;
  /** bisearchMs / rawSessionMs − 1. */
  readonly overhead: number;
  /**
   * Median ms to tokenise the passages alone, as inside bisearchMs: the passages repeat across
   * repetitions, so every word's pieces are already remembered (ModelTokenizer's word cache).
   */
  readonly tokenizeMs: number;
  /** The same with a new tokenizer each time: every word is split for the first time. */
  readonly tokenizeFirstSightMs: number;
  /** Our path from token ids on (`embedEncoded`: tensors, session, pooling) / rawSessionMs − 1. */
  readonly overheadWithoutTokenizing: number;
}

export interface EmbeddingResults {
  readonly model: string;
  readonly sessionCreateMs: { readonly embedderLoad: number; readonly rawSession: number };
  readonly singleQueryMs: Percentiles;
  readonly throughput: ThroughputPoint[];
  readonly lengthSorted: {
    readonly batchSize: number;
    readonly sortedPerSecond: number;
    readonly naivePerSecond: number;
    readonly speedup: number;
  };
  readonly overhead: OverheadResult[];
  readonly transformers:
    | {
        readonly model: string;
        readonly passages: number;
        readonly bisearchMs: number;
        readonly transformersMs: number;
        /** transformers.js time / bisearch time (> 1: bisearch is faster). */
        readonly ratio: number;
        readonly singleQueryMs: { readonly bisearch: number; readonly transformers: number };
        /** Largest absolute difference between the two libraries' vectors (same model, same texts). */
        readonly maxAbsDifference: number;
      }
    | { readonly unavailable: string };
}

/** Median of `repetitions` timings of `work` after one warm-up call. */
async function medianMs(repetitions: number, work: () => Promise<unknown>): Promise<number> {
  return percentile(await sampleMs(repetitions, work, 1), 50);
}

/** The length-sorted, dynamically padded batches bisearch builds, as plain feeds for a bare session. */
function paddedFeeds(
  session: ort.InferenceSession,
  rows: readonly EncodedSequence[],
  batchSize: number,
): Record<string, ort.Tensor>[] {
  const sorted = [...rows].sort((a, b) => a.ids.length - b.ids.length);
  const wantsTypeIds = session.inputNames.includes('token_type_ids');
  const feeds: Record<string, ort.Tensor>[] = [];
  for (let start = 0; start < sorted.length; start += batchSize) {
    const batch = sorted.slice(start, start + batchSize);
    const sequence = Math.max(...batch.map((row) => row.ids.length));
    const ids = new BigInt64Array(batch.length * sequence);
    const mask = new BigInt64Array(batch.length * sequence);
    batch.forEach((row, r) => {
      row.ids.forEach((id, s) => {
        ids[r * sequence + s] = BigInt(id);
        mask[r * sequence + s] = 1n;
      });
    });
    const dims = [batch.length, sequence];
    const feed: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', ids, dims),
      attention_mask: new ort.Tensor('int64', mask, dims),
    };
    if (wantsTypeIds) feed.token_type_ids = new ort.Tensor('int64', new BigInt64Array(ids.length), dims);
    feeds.push(feed);
  }
  return feeds;
}

/**
 * bisearch's path against the bare session, each measured directly: the whole path
 * (`embedDocuments`), tokenising alone, the path from token ids on (`embedEncoded`: tensors,
 * session, pooling) and `session.run` alone on the same batches. All four run on the embedder's
 * own session, interleaved within every repetition: a second session's idle intra-op threads
 * and another warm-up state made the bare figure differ by up to 1.7× on tiny-bert.
 */
async function overheadOf(
  modelDirectory: string,
  passages: string[],
  repetitions: number,
): Promise<OverheadResult> {
  const embedder = await OnnxEmbedder.load(modelDirectory, { batchSize: 32 });
  // Bench-only introspection: the embedder keeps its session private.
  const { session } = embedder as unknown as { session: ort.InferenceSession };
  const prefix = embedder.description.documentPrefix;
  const tokenize = () => passages.map((text) => embedder.tokenizer.encode(prefix + text));
  const rows = tokenize();
  const feeds = paddedFeeds(session, rows, 32);
  const variants = {
    bisearch: () => embedder.embedDocuments(passages),
    tokenize: async () => tokenize(),
    fromIds: () => embedder.embedEncoded(rows),
    raw: async () => {
      for (const feed of feeds) await session.run(feed);
    },
  };
  const samples: Record<keyof typeof variants, number[]> = {
    bisearch: [],
    tokenize: [],
    fromIds: [],
    raw: [],
  };
  for (let run = -1; run < repetitions; run += 1) {
    for (const [name, work] of Object.entries(variants) as [
      keyof typeof variants,
      () => Promise<unknown>,
    ][]) {
      const [, ms] = await timed(work);
      if (run >= 0) samples[name].push(ms); // run -1 warms every variant up
    }
  }
  const firstSight: number[] = [];
  for (let run = 0; run < repetitions; run += 1) {
    const fresh = new ModelTokenizer(
      embedder.description.tokenizerJson,
      embedder.description.tokenizerConfig,
      embedder.description.maxTokens,
    );
    firstSight.push((await timed(async () => passages.map((text) => fresh.encode(prefix + text))))[1]);
  }
  await embedder.dispose();
  const median = (name: keyof typeof variants) => percentile(samples[name], 50);
  const raw = median('raw');
  return {
    model: embedder.space.modelId,
    passages: passages.length,
    bisearchMs: median('bisearch'),
    rawSessionMs: raw,
    overhead: median('bisearch') / raw - 1,
    tokenizeMs: median('tokenize'),
    tokenizeFirstSightMs: percentile(firstSight, 50),
    overheadWithoutTokenizing: median('fromIds') / raw - 1,
  };
}

/** A transformers.js-layout copy (symlinks) of an HF-layout model directory: it wants `onnx/model.onnx`. */
function transformersLayout(modelDirectory: string, workDirectory: string): { root: string; name: string } {
  const root = join(resolve(workDirectory), 'transformers-models');
  const name = 'tiny-bert-biencoder';
  const target = join(root, name);
  rmSync(target, { recursive: true, force: true });
  mkdirSync(join(target, 'onnx'), { recursive: true });
  for (const file of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'])
    symlinkSync(join(resolve(modelDirectory), file), join(target, file));
  symlinkSync(join(resolve(modelDirectory), 'model.onnx'), join(target, 'onnx', 'model.onnx'));
  return { root, name };
}

async function compareTransformers(
  tinyBertDirectory: string,
  texts: string[],
  queries: string[],
  workDirectory: string,
  repetitions: number,
): Promise<EmbeddingResults['transformers']> {
  let transformers: typeof import('@huggingface/transformers');
  try {
    transformers = await import('@huggingface/transformers');
  } catch (error) {
    return { unavailable: (error as Error).message };
  }
  const { root, name } = transformersLayout(tinyBertDirectory, workDirectory);
  transformers.env.localModelPath = `${root}/`;
  transformers.env.allowRemoteModels = false;
  const extractor = await transformers.pipeline('feature-extraction', name, { dtype: 'fp32', device: 'cpu' });
  const embedder = await OnnxEmbedder.load(tinyBertDirectory, { batchSize: 32 });
  // Both get the same texts 32 at a time, in input order (transformers.js pads a call's texts together).
  const batches: string[][] = [];
  for (let start = 0; start < texts.length; start += 32) batches.push(texts.slice(start, start + 32));
  const theirs = async () => {
    const vectors: number[][] = [];
    for (const batch of batches)
      vectors.push(
        ...((await extractor(batch, { pooling: 'mean', normalize: true })).tolist() as number[][]),
      );
    return vectors;
  };
  const ours = async () => {
    const vectors: Float32Array[] = [];
    for (const batch of batches) vectors.push(...(await embedder.embedDocuments(batch)));
    return vectors;
  };
  const [theirVectors] = await timed(theirs);
  const [ourVectors] = await timed(ours);
  let maxAbsDifference = 0;
  ourVectors.forEach((vector, row) => {
    vector.forEach((value, i) => {
      maxAbsDifference = Math.max(maxAbsDifference, Math.abs(value - (theirVectors[row]?.[i] ?? Number.NaN)));
    });
  });
  // Alternate the two so both see the same machine noise.
  const ourTimes: number[] = [];
  const theirTimes: number[] = [];
  for (let run = 0; run < repetitions; run += 1) {
    ourTimes.push((await timed(ours))[1]);
    theirTimes.push((await timed(theirs))[1]);
  }
  const ourSingle = await sampleMs(queries.length, (i) => embedder.embedQuery(queries[i] as string), 5);
  const theirSingle = await sampleMs(
    queries.length,
    (i) => extractor(queries[i] as string, { pooling: 'mean', normalize: true }),
    5,
  );
  await embedder.dispose();
  await extractor.dispose();
  const bisearchMs = percentile(ourTimes, 50);
  const transformersMs = percentile(theirTimes, 50);
  return {
    model: 'tiny-bert-biencoder',
    passages: texts.length,
    bisearchMs,
    transformersMs,
    ratio: transformersMs / bisearchMs,
    singleQueryMs: { bisearch: percentile(ourSingle, 50), transformers: percentile(theirSingle, 50) },
    maxAbsDifference,
  };
}

export async function benchEmbedding(options: {
  readonly modelDirectory: string;
  readonly tinyBertDirectory: string;
  readonly passages: readonly string[];
  readonly queries: readonly string[];
  readonly batchSizes: readonly number[];
  readonly threadCounts: readonly number[];
  readonly repetitions: number;
  readonly workDirectory: string;
}): Promise<EmbeddingResults> {
  const passages = [...options.passages];
  const description = describeModelDirectory(options.modelDirectory);
  progress(`embedding: session creation and single-query latency (${description.modelId})`);
  const embedderLoad = await medianMs(options.repetitions, async () => {
    const embedder = await OnnxEmbedder.load(options.modelDirectory);
    await embedder.dispose();
  });
  const rawSession = await medianMs(options.repetitions, async () => {
    const session = await openOnnxSession(description.onnxPath);
    await session.release();
  });
  const embedder = await OnnxEmbedder.load(options.modelDirectory);
  const singleQueryMs = percentiles(
    await sampleMs(options.queries.length, (i) => embedder.embedQuery(options.queries[i] as string), 5),
  );
  await embedder.dispose();

  const throughput: ThroughputPoint[] = [];
  for (const threads of options.threadCounts) {
    for (const batchSize of options.batchSizes) {
      const batched = await OnnxEmbedder.load(options.modelDirectory, { batchSize, intraOpThreads: threads });
      const ms = await medianMs(options.repetitions, () => batched.embedDocuments(passages));
      throughput.push({ batchSize, threads, passagesPerSecond: passages.length / (ms / 1000) });
      progress(
        `embedding: batch ${batchSize}, ${threads} thread(s): ${throughput.at(-1)?.passagesPerSecond.toFixed(1)} passages/s`,
      );
      await batched.dispose();
    }
  }

  // Naive batching = the same batch size, but batches cut in input order (one call per batch, so
  // nothing is reordered); bisearch sorts the whole call by length first.
  const sortedEmbedder = await OnnxEmbedder.load(options.modelDirectory, { batchSize: 32 });
  const sortedMs = await medianMs(options.repetitions, () => sortedEmbedder.embedDocuments(passages));
  const naiveMs = await medianMs(options.repetitions, async () => {
    for (let start = 0; start < passages.length; start += 32)
      await sortedEmbedder.embedDocuments(passages.slice(start, start + 32));
  });
  await sortedEmbedder.dispose();

  progress('embedding: overhead over the bare onnxruntime session');
  const tinyBert = await OnnxEmbedder.load(options.tinyBertDirectory);
  // Texts that fit tiny-bert's 128-token window, so truncation cannot differ between libraries.
  const shortPassages = passages.filter((text) => tinyBert.tokenizer.encode(text).ids.length < 128);
  await tinyBert.dispose();
  const overhead = [
    // More repetitions than elsewhere: the tiny model's whole run is tens of milliseconds.
    await overheadOf(options.modelDirectory, passages, options.repetitions * 3),
    await overheadOf(options.tinyBertDirectory, shortPassages, options.repetitions * 3),
  ];
  progress('embedding: tiny-bert through bisearch and @huggingface/transformers');
  const transformers = await compareTransformers(
    options.tinyBertDirectory,
    shortPassages,
    [...options.queries],
    options.workDirectory,
    options.repetitions,
  );
  return {
    model: description.modelId,
    sessionCreateMs: { embedderLoad, rawSession },
    singleQueryMs,
    throughput,
    lengthSorted: {
      batchSize: 32,
      sortedPerSecond: passages.length / (sortedMs / 1000),
      naivePerSecond: passages.length / (naiveMs / 1000),
      speedup: naiveMs / sortedMs,
    },
    overhead,
    transformers,
  };
}
