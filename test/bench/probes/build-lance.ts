/**
 * Builds the peers benchmark's LanceDB table in a process of its own (`buildLance`), from files the
 * section writes: `<input>.f32` (row-major vectors) and `<input>.jsonl` (ids, texts, filter flags; one row per line).
 * A process of its own bounds a build by the parent's timeout and keeps the build's threads and
 * memory out of the measuring process. (The 100k build once stalled here: that was the FTS build's
 * deadlock on a one-thread compute pool, see LANCE_CPU_THREADS in lib/peer-systems.ts.)
 *
 * Usage: build-lance.ts <directory> <input>   (prints {"ms": N, "steps": {…}} when done; each step's time on stderr)
 */
import { createReadStream, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { EmbeddedChunk } from '../../../functions/core/delta.js';
import { buildLance, type FilterField } from '../lib/peer-systems.js';

const [directory, input] = process.argv.slice(2) as [string, string];
// One row per line (at 1M chunks the whole JSON would exceed V8's maximum string length).
const rows: { chunkId: string; text: string; flags: Record<FilterField, boolean> }[] = [];
for await (const line of createInterface({ input: createReadStream(`${input}.jsonl`), crlfDelay: Infinity }))
  if (line) rows.push(JSON.parse(line));
const bytes = readFileSync(`${input}.f32`);
const matrix = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
const dimensions = matrix.length / Math.max(1, rows.length);
// buildLance reads the chunk id, the indexed text (title + text: here already joined) and the vector.
const chunks = rows.map(
  (row, index) =>
    ({
      chunkId: row.chunkId,
      docId: row.chunkId,
      ordinal: 0,
      text: row.text,
      metadata: {},
      contentHash: '',
      vector: matrix.subarray(index * dimensions, (index + 1) * dimensions),
    }) satisfies EmbeddedChunk,
);
const started = performance.now();
const steps: Record<string, number> = {};
await buildLance(
  directory,
  chunks,
  (row) => rows[row]?.flags as Record<FilterField, boolean>,
  (step, ms) => {
    steps[step] = ms;
    process.stderr.write(`build-lance: ${step} ${(ms / 1000).toFixed(1)} s\n`);
  },
);
process.stdout.write(`${JSON.stringify({ ms: performance.now() - started, steps })}\n`);
