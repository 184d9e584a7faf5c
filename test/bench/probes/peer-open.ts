/**
 * Cold open of one system in a fresh process, for the peers benchmark: open it (bisearch: a
 * snapshot directory, or a ranged download from S3 first, then usearch `view()`; LanceDB: a
 * local directory or `s3://…`; Orama: its `save()` written with `v8.serialize`), answer one hybrid query, then
 * `--count` more (hybrid within `--budget-ms`, dense after it), and report resident memory after the open and after the queries. Query vectors
 * come precomputed in `--queries` (no model is loaded: embedding costs every system the same).
 * Bundled by esbuild before it runs, like the cold-start probe.
 *
 * Prints one JSON line: milliseconds since process start at each step, RSS in MiB.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { s3Client } from '../../../functions/adapters/aws/aws-clients.js';
import { IndexBucket } from '../../../functions/adapters/aws/index-bucket.js';
import {
  loadOrama,
  openLance,
  openOurs,
  oramaSearcher,
  type PeerQuery,
  type PeerSearcher,
} from '../lib/peer-systems.js';

const { values } = parseArgs({
  options: {
    system: { type: 'string' },
    location: { type: 'string' },
    queries: { type: 'string' },
    count: { type: 'string', default: '0' },
    nprobes: { type: 'string', default: '20' },
    refine: { type: 'string' },
    endpoint: { type: 'string' },
    'budget-ms': { type: 'string', default: 'Infinity' },
  },
});
const importsMs = performance.now();
const queries: PeerQuery[] = (
  JSON.parse(readFileSync(values.queries as string, 'utf8')) as { text: string; vector: number[] }[]
).map((query) => ({ text: query.text, vector: Float32Array.from(query.vector) }));
const location = values.location as string;
const endpoint = values.endpoint;
let downloaded: string | undefined;
let searcher: PeerSearcher;
if (values.system === 'ours') {
  let directory = location;
  if (endpoint) {
    // What the query Lambda does at init: parallel ranged GETs (verified by sha256), then view().
    const [bucket, ...prefix] = location.replace(/^s3:\/\//, '').split('/');
    const s3 = s3Client({
      region: 'us-east-1',
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      endpoints: { s3: endpoint },
    });
    downloaded = mkdtempSync(join(tmpdir(), 'bisearch-peer-open-'));
    await new IndexBucket(s3, bucket as string).downloadSnapshot(`${prefix.join('/')}/`, downloaded);
    directory = downloaded;
  }
  searcher = await openOurs(directory, queries);
} else if (values.system === 'lancedb') {
  searcher = await openLance(location, {
    nprobes: Number(values.nprobes),
    ...(values.refine ? { refineFactor: Number(values.refine) } : {}),
    ...(endpoint
      ? {
          storageOptions: {
            aws_endpoint: endpoint,
            aws_access_key_id: 'S3RVER',
            aws_secret_access_key: 'S3RVER',
            aws_region: 'us-east-1',
            allow_http: 'true',
            aws_virtual_hosted_style_request: 'false',
          },
        }
      : {}),
  });
} else {
  const dimensions = queries[0]?.vector.length ?? 0;
  searcher = await oramaSearcher(await loadOrama(location, dimensions), { similarity: 0 });
}
const openMs = performance.now();
const rssAfterOpenMiB = process.memoryUsage().rss / 2 ** 20;
const first = queries[0] as PeerQuery;
await searcher.hybrid(first, 10);
const firstAnswerMs = performance.now();
// The queries for memory are hybrid until `--budget-ms` after the first answer, then dense up to
// `--count` (Orama at 100k answers a hybrid query in seconds, so 1,000 of them would take most of
// an hour, a dense one in a fifth of a second): every system reaches the count, and `hybrid` says
// how many of them were hybrid.
const count = Number(values.count);
const budgetMs = Number(values['budget-ms']);
let ran = 0;
let hybrid = 0;
while (ran < count) {
  const query = queries[ran % queries.length] as PeerQuery;
  if (performance.now() - firstAnswerMs < budgetMs) {
    await searcher.hybrid(query, 10);
    hybrid += 1;
  } else await searcher.dense(query, 10);
  ran += 1;
}
const rssAfterQueriesMiB = process.memoryUsage().rss / 2 ** 20;
await searcher.close();
if (downloaded) rmSync(downloaded, { recursive: true, force: true });
process.stdout.write(
  `${JSON.stringify({ importsMs, openMs, firstAnswerMs, rssAfterOpenMiB, rssAfterQueriesMiB, queries: ran, hybrid })}\n`,
);
