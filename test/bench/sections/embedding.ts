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
import { describeModelDirectory } from '../../../functions/adapters/model-directory.js';
import type { EncodedSequence } from '../../../functions/adapters/model-tokenizer.js';
import { OnnxEmbedder } from '../../../functions/adapters/onnx-embedder.js';
import { loadOnnxModel, openOnnxSession } from '../../../functions/adapters/onnx-session.js';
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
  /** Median ms of `session.run` alone on the same batches (tokenised beforehand). */
  readonly rawSessionMs: number;
  /** bisearchMs / rawSessionMs − 1. */
  readonly overhead: number;
  /** Median ms to tokenise the passages alone (the part of bisearchMs that is not tensors, session or pooling). */
  readonly tokenizeMs: number;
  /** (bisearchMs − tokenizeMs) / rawSessionMs − 1: tensor building, output reading and pooling. */
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

/** The bare session on the same length-sorted, dynamically padded batches bisearch builds. */
async function rawSessionMs(
  modelDirectory: string,
  rows: EncodedSequence[],
  batchSize: number,
  repetitions: number,
) {
  const { session } = await loadOnnxModel(modelDirectory);
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
  const ms = await medianMs(repetitions, async () => {
    for (const feed of feeds) await session.run(feed);
  });
  await session.release();
  return ms;
}

async function overheadOf(
  modelDirectory: string,
  passages: string[],
  repetitions: number,
): Promise<OverheadResult> {
  const embedder = await OnnxEmbedder.load(modelDirectory, { batchSize: 32 });
  const bisearchMs = await medianMs(repetitions, () => embedder.embedDocuments(passages));
  const prefix = embedder.description.documentPrefix;
  const tokenize = () => passages.map((text) => embedder.tokenizer.encode(prefix + text));
  const tokenizeMs = await medianMs(repetitions, async () => tokenize());
  const rows = tokenize();
  await embedder.dispose();
  const raw = await rawSessionMs(modelDirectory, rows, 32, repetitions);
  return {
    model: embedder.space.modelId,
    passages: passages.length,
    bisearchMs,
    rawSessionMs: raw,
    overhead: bisearchMs / raw - 1,
    tokenizeMs,
    overheadWithoutTokenizing: (bisearchMs - tokenizeMs) / raw - 1,
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
    await overheadOf(options.modelDirectory, passages, options.repetitions),
    await overheadOf(options.tinyBertDirectory, shortPassages, options.repetitions),
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
