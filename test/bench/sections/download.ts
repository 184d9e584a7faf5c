/**
 * Snapshot download from the local S3 emulator (s3rver in its own process, loopback): the query
 * Lambda's parallel ranged GETs (`IndexBucket.downloadSnapshot`, 8 MiB parts, 8 in flight)
 * against one plain GET per file streamed to disk. Both hash what they receive (sha256, as the
 * ranged download does to verify against the manifest). Runs alternate so both see the same noise.
 *
 * On loopback a connection is as fast as the two processes' CPU allows, so both paths are bound
 * by the same per-byte work on two shared cores. S3 instead limits each connection (roughly
 * 80–100 MB/s), which is what parallel ranges are for: with `perConnectionMiBps` the emulator
 * sends each response no faster than that rate (probes/s3-server.ts).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { s3Client } from '../../../functions/adapters/aws/aws-clients.js';
import { IndexBucket } from '../../../functions/adapters/aws/index-bucket.js';
import { percentile, progress, timed } from '../lib/measure.js';

export interface DownloadResult {
  /** Emulator processes serving requests (one GET is always served by one). */
  readonly serverProcesses: number;
  /** Bandwidth of each connection, as S3 limits it; null: as fast as loopback and the CPU allow. */
  readonly perConnectionMiBps: number | null;
  readonly snapshotBytes: number;
  readonly runs: number;
  readonly rangedMiBPerSecond: number;
  readonly singleGetMiBPerSecond: number;
  /** Median ranged throughput / median single-GET throughput. */
  readonly ratio: number;
  readonly rangedSettings: { readonly partMiB: number; readonly concurrency: number };
}

async function startServer(
  directory: string,
  processes: number,
  perConnectionMiBps: number | undefined,
): Promise<{ port: number; stop: () => void }> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      resolve('test/bench/probes/s3-server.ts'),
      directory,
      String(processes),
      ...(perConnectionMiBps ? [String(perConnectionMiBps)] : []),
    ],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const port = await new Promise<number>((done, fail) => {
    child.stdout.once('data', (data: Buffer) => done(JSON.parse(data.toString()).port));
    child.once('exit', (code) => fail(new Error(`s3rver exited with ${code}`)));
  });
  return { port, stop: () => child.kill('SIGTERM') };
}

export async function benchDownload(options: {
  readonly snapshotDirectory: string;
  readonly workDirectory: string;
  readonly runs: number;
  readonly serverProcesses: number;
  readonly perConnectionMiBps?: number;
}): Promise<DownloadResult> {
  const serverDirectory = join(options.workDirectory, 's3rver');
  rmSync(serverDirectory, { recursive: true, force: true });
  mkdirSync(serverDirectory, { recursive: true });
  const server = await startServer(serverDirectory, options.serverProcesses, options.perConnectionMiBps);
  const scenario = `${options.serverProcesses} server process(es)${options.perConnectionMiBps ? `, ${options.perConnectionMiBps} MiB/s per connection` : ''}`;
  try {
    const s3 = s3Client({
      region: 'us-east-1',
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      endpoints: { s3: `http://127.0.0.1:${server.port}` },
    });
    const bucket = new IndexBucket(s3, 'bench-index');
    const prefix = await bucket.uploadSnapshot(options.snapshotDirectory, 'bench');
    const files = readdirSync(options.snapshotDirectory);
    const snapshotBytes = files.reduce(
      (sum, name) => sum + statSync(join(options.snapshotDirectory, name)).size,
      0,
    );
    const target = join(options.workDirectory, 'downloaded');
    const ranged: number[] = [];
    const single: number[] = [];
    for (let run = 0; run < options.runs; run += 1) {
      rmSync(target, { recursive: true, force: true });
      const [, rangedMs] = await timed(() => bucket.downloadSnapshot(prefix, target));
      ranged.push(snapshotBytes / 2 ** 20 / (rangedMs / 1000));
      rmSync(target, { recursive: true, force: true });
      mkdirSync(target, { recursive: true });
      const [, singleMs] = await timed(async () => {
        for (const name of files) {
          const response = await s3.send(
            new GetObjectCommand({ Bucket: 'bench-index', Key: `${prefix}${name}` }),
          );
          const hash = createHash('sha256');
          await pipeline(
            response.Body as Readable,
            async function* (chunks: AsyncIterable<Buffer>) {
              for await (const chunk of chunks) {
                hash.update(chunk);
                yield chunk;
              }
            },
            createWriteStream(join(target, name)),
          );
          hash.digest('hex');
        }
      });
      single.push(snapshotBytes / 2 ** 20 / (singleMs / 1000));
      progress(
        `download (${scenario}) run ${run + 1}: ranged ${ranged.at(-1)?.toFixed(0)} MiB/s, single GET ${single.at(-1)?.toFixed(0)} MiB/s`,
      );
    }
    rmSync(target, { recursive: true, force: true });
    const rangedMiBPerSecond = percentile(ranged, 50);
    const singleGetMiBPerSecond = percentile(single, 50);
    return {
      serverProcesses: options.serverProcesses,
      perConnectionMiBps: options.perConnectionMiBps ?? null,
      snapshotBytes,
      runs: options.runs,
      rangedMiBPerSecond,
      singleGetMiBPerSecond,
      ratio: rangedMiBPerSecond / singleGetMiBPerSecond,
      rangedSettings: { partMiB: 8, concurrency: 8 },
    };
  } finally {
    server.stop();
    rmSync(serverDirectory, { recursive: true, force: true });
  }
}
