/**
 * Freshness on the local stack (`npm start` as a child process: emulators, the real handlers, S3
 * events → SQS → encode → delta): from `PUT /documents/{id}` to `GET /documents/{id}` saying
 * `indexed` (the ingest pipeline), and to the first search that returns the document. Documents
 * go one at a time, each with a unique made-up word searched lexically, and both are polled every
 * 25 ms, so the figures resolve to about that.
 *
 * Between the two is the query runtime's bounded staleness: a search reads the change log first
 * only when it was last read longer ago than `BISEARCH_MAX_STALENESS_MS` (2 s), and the local
 * stack also reads it with each index-pointer check (every second). Each document here is put
 * right after the previous one became searchable, i.e. right after a read, so it waits about a
 * whole period: the worst phase, where uploads at random times wait half of one on average.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalProcess } from '../../support/local-process.js';
import { type Percentiles, percentiles, progress } from '../lib/measure.js';

export interface FreshnessResult {
  readonly documents: number;
  readonly uploadToSearchableMs: Percentiles & { readonly max: number };
  /** PUT → the document's status is `indexed` (chunks and change-log entry written). */
  readonly uploadToIndexedMs: Percentiles;
  readonly pollIntervalMs: number;
}

const POLL_MS = 25;
const TIMEOUT_MS = 30_000;

export async function benchFreshness(options: { readonly documents: number }): Promise<FreshnessResult> {
  const dataDirectory = mkdtempSync(join(tmpdir(), 'bisearch-bench-fresh-'));
  progress('freshness: starting the local stack (first start ingests the sample corpus)');
  const stack = await startLocalProcess(dataDirectory);
  try {
    const latencies: number[] = [];
    const indexedLatencies: number[] = [];
    for (let n = 0; n < options.documents; n += 1) {
      const word = `zyxbench${n}q${Math.random().toString(36).slice(2, 8)}`;
      const docId = `bench/fresh-${n}`;
      const started = performance.now();
      const put = await fetch(`${stack.url}/documents/${docId}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          title: `Freshness probe ${n}`,
          text: `The ${word} appears in this note only.`,
        }),
      });
      if (put.status !== 202) throw new Error(`PUT ${docId} answered ${put.status}: ${await put.text()}`);
      let indexedMs: number | undefined;
      for (;;) {
        if (indexedMs === undefined) {
          const status = (await (await fetch(`${stack.url}/documents/${docId}`)).json()) as {
            status?: string;
          };
          if (status.status === 'indexed') indexedMs = performance.now() - started;
        }
        const response = await fetch(`${stack.url}/search`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ query: word, mode: 'lexical', k: 1 }),
        });
        const body = (await response.json()) as { results: { docId: string }[] };
        if (body.results[0]?.docId === docId) break;
        if (performance.now() - started > TIMEOUT_MS)
          throw new Error(`${docId} was not searchable within ${TIMEOUT_MS} ms`);
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
      latencies.push(performance.now() - started);
      indexedLatencies.push(indexedMs ?? (latencies.at(-1) as number));
      if ((n + 1) % 10 === 0) progress(`freshness: ${n + 1}/${options.documents} documents`);
    }
    return {
      documents: latencies.length,
      uploadToSearchableMs: { ...percentiles(latencies), max: Math.max(...latencies) },
      uploadToIndexedMs: percentiles(indexedLatencies),
      pollIntervalMs: POLL_MS,
    };
  } finally {
    await stack.stop();
    rmSync(dataDirectory, { recursive: true, force: true });
  }
}
