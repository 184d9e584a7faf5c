/**
 * A fresh query process, as a Lambda cold start sees it: load the model and, at the same time,
 * open a snapshot that is already on local disk; answer one query; optionally answer more and
 * report memory. Bundled by esbuild before it runs (like the Lambda), so TypeScript compilation
 * is not part of the figure.
 *
 * Prints one JSON line: milliseconds since process start at each step, and RSS / heap in MiB.
 */
import { parseArgs } from 'node:util';
import { FileSnapshot } from '../../../functions/adapters/index/snapshot-files.js';
import { OnnxEmbedder } from '../../../functions/adapters/model/onnx-embedder.js';
import { SearchEngine } from '../../../functions/core/search-engine.js';

const { values } = parseArgs({
  options: {
    snapshot: { type: 'string' },
    'model-dir': { type: 'string' },
    'index-mode': { type: 'string', default: 'view' },
    verify: { type: 'boolean', default: false },
    query: { type: 'string', multiple: true, default: [] },
  },
});
const importsMs = performance.now();
// As SearchRuntime.start does: the snapshot opens while the model loads (its files are read on
// libuv's thread pool while this thread creates the onnxruntime session). Each step's time is
// when it finished.
let modelMs = 0;
let snapshotMs = 0;
const [embedder, snapshot] = await Promise.all([
  OnnxEmbedder.load(values['model-dir'] as string).then((loaded) => {
    modelMs = performance.now();
    return loaded;
  }),
  FileSnapshot.open(values.snapshot as string, {
    indexMode: values['index-mode'] as 'view' | 'load',
    verifyChecksums: values.verify,
  }).then((opened) => {
    snapshotMs = performance.now();
    return opened;
  }),
]);
const engine = new SearchEngine(snapshot, embedder);
const engineMs = performance.now();
const [first, ...rest] = values.query;
await engine.search({ query: first ?? 'probe', k: 10 });
const firstAnswerMs = performance.now();
for (const query of rest) await engine.search({ query, k: 10 });
const memory = process.memoryUsage();
process.stdout.write(
  `${JSON.stringify({
    importsMs,
    modelMs,
    snapshotMs,
    engineMs,
    firstAnswerMs,
    queries: values.query.length,
    rssMiB: memory.rss / 2 ** 20,
    heapUsedMiB: memory.heapUsed / 2 ** 20,
    externalMiB: (memory.external + memory.arrayBuffers) / 2 ** 20,
  })}\n`,
);
await embedder.dispose();
