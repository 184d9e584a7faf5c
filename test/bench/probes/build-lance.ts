/**
 * Builds the peers benchmark's LanceDB table in a process of its own (`buildLance`), from files the
 * section writes: `<input>.f32` (row-major vectors) and `<input>.json` (ids, texts, filter flags).
 * In the bench's own process the 100k-row IVF_PQ build twice stopped making progress (every
 * LanceDB thread idle for over 10 min) after that process had built and queried the 10k table; a
 * fresh process finishes, and a hang is bounded by the parent's timeout instead of stalling the run.
 *
 * Usage: build-lance.ts <directory> <input>   (prints {"ms": N} when done)
 */
import { readFileSync } from 'node:fs';
import type { EmbeddedChunk } from '../../../functions/core/delta.js';
import { buildLance, type FilterField } from '../lib/peer-systems.js';

const [directory, input] = process.argv.slice(2) as [string, string];
const rows = JSON.parse(readFileSync(`${input}.json`, 'utf8')) as {
  chunkId: string;
  text: string;
  flags: Record<FilterField, boolean>;
}[];
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
await buildLance(directory, chunks, (row) => rows[row]?.flags as Record<FilterField, boolean>);
process.stdout.write(`${JSON.stringify({ ms: performance.now() - started })}\n`);
