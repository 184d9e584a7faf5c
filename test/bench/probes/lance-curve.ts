/**
 * LanceDB alone at one size of the peers benchmark, with the section's own code (corpus, exact
 * truth, `measureSystem`, `LANCE_SETTINGS`): build the table (steps timed), then the dense curve,
 * full-text, hybrid and filtered passes at the cheapest setting reaching recall@10 0.95. For a
 * LanceDB setting added after a published peers run, measured without re-running every system.
 *
 * Usage: lance-curve.ts <chunks> <directory> <out.json> [--build-only | --reuse] [--without-flat]
 * --build-only times the build's steps alone (each logged to stderr as it ends), e.g. at 1M;
 * --reuse queries the table a build-only run left; --without-flat skips the flat scan.
 * The results-peers-lance-*.json files beside RESULTS.md came from these runs.
 */
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadBaseCorpus } from '../lib/derived-corpus.js';
import { progress } from '../lib/measure.js';
import { buildLance, directoryBytes, openLance } from '../lib/peer-systems.js';
import { LANCE_SETTINGS, measureSystem, peerCorpus, peerTruth } from '../sections/peers.js';

const [chunks, directory, out] = [
  Number(process.argv[2]),
  process.argv[3] as string,
  process.argv[4] as string,
];
const base = await loadBaseCorpus({
  dataset: resolve('../shared/datasets/scifact'),
  cacheDirectory: resolve('.bisearch/eval/embeddings'),
  documents: Number.POSITIVE_INFINITY,
  queries: 300,
});
await base.embedder.dispose();
const corpus = peerCorpus(base.chunks, chunks);
const { truth, filteredTruth } = peerTruth(corpus, base.queries);
const steps: Record<string, number> = {};
const started = performance.now();
// --reuse: query a table an earlier --build-only run left in `directory` (its build is not re-timed).
const reuse = process.argv.includes('--reuse') && existsSync(directory);
if (!reuse) {
  rmSync(directory, { recursive: true, force: true });
  await buildLance(directory, corpus.chunks, corpus.flags, (step, ms) => {
    steps[step] = ms;
    progress(`lance-curve: ${step} ${(ms / 1000).toFixed(1)} s`);
  });
}
const buildSeconds = reuse ? null : (performance.now() - started) / 1000;
const built = {
  chunks,
  lanceCpuThreads: process.env.LANCE_CPU_THREADS,
  buildSeconds,
  steps,
  bytes: directoryBytes(directory),
};
if (process.argv.includes('--build-only')) {
  writeFileSync(out, `${JSON.stringify(built, null, 2)}\n`);
  process.exit(0);
}
const result = await measureSystem('LanceDB', {
  queries: base.queries.map((query) => ({ text: query.text, vector: query.vector })),
  truth,
  filteredTruth,
  recallTarget: 0.95,
  // --without-flat: leave out the flat scan (at 1M, seconds per query).
  settings: LANCE_SETTINGS.filter(
    (setting) => !(process.argv.includes('--without-flat') && setting.nprobes === 'flat'),
  ).map(({ label, nprobes, refineFactor }) => ({
    label,
    searcher: () => openLance(directory, { nprobes, refineFactor }),
  })),
});
writeFileSync(out, `${JSON.stringify({ ...built, ...result }, null, 2)}\n`);
