/**
 * The local S3 emulator (s3rver, files on disk) in processes of its own, so that the bench's
 * client and the server do not share one event loop. With `workers` > 1 (node:cluster, one shared
 * port), concurrent requests are served by different processes, as S3 serves them from different
 * hosts; one GET is always served by one process. With `perConnectionMiBps`, the (single)
 * server sends each response at most that fast, as S3 limits each connection: one S3 connection
 * delivers roughly 80–100 MB/s, which is why large objects are fetched as concurrent byte ranges
 * (a connection carries one request at a time, so a response's rate is its connection's).
 * Prints `{"port": N}` when listening.
 *
 * Usage: s3-server.ts <directory> [workers] [perConnectionMiBps]
 */
import cluster from 'node:cluster';
import type { AddressInfo } from 'node:net';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import S3rver from 's3rver';

const [directory, workerArgument, rateArgument] = process.argv.slice(2) as [
  string,
  string | undefined,
  string | undefined,
];
const workers = Number(workerArgument ?? 1);
const perConnectionMiBps = rateArgument ? Number(rateArgument) : undefined;
if (perConnectionMiBps !== undefined && workers > 1)
  throw new Error('a per-connection rate is modelled with one server process');

/** How far behind a late timer may leave the link before the lost time is forgiven (a burst of ≤ 5 ms). */
const CATCH_UP_MS = 5;

/**
 * Passes bytes on at `bytesPerMs` on average: each chunk leaves once the link has carried the
 * ones before it. Timers fire late, so the link may catch up on up to {@link CATCH_UP_MS} of lost
 * time; an idle link does not bank more.
 */
class RateLimit extends Transform {
  private linkFreeAt = 0;

  constructor(private readonly bytesPerMs: number) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    const now = performance.now();
    this.linkFreeAt = Math.max(this.linkFreeAt, now - CATCH_UP_MS) + chunk.length / this.bytesPerMs;
    this.push(chunk);
    const wait = this.linkFreeAt - now;
    if (wait <= 0) done();
    else setTimeout(done, wait);
  }
}

if (cluster.isPrimary && workers > 1) {
  let reported = false;
  for (let n = 0; n < workers; n += 1) {
    cluster.fork().on('message', (message: { port: number }) => {
      if (reported) return;
      reported = true;
      process.stdout.write(`${JSON.stringify({ port: message.port })}\n`);
    });
  }
  process.on('SIGTERM', () => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.kill();
    process.exit(0);
  });
} else {
  const server = new S3rver({
    // Cluster workers share one port: the first to listen picks it, the others are handed it.
    port: 0,
    address: '127.0.0.1',
    silent: true,
    directory,
    allowMismatchedSignatures: true,
    configureBuckets: [{ name: 'bench-index' }],
  });
  if (perConnectionMiBps !== undefined) {
    // First in s3rver's (Koa) middleware, so it wraps every response body its routes set: object
    // bytes leave through the limiter, in the same process and without a second socket hop.
    const bytesPerMs = (perConnectionMiBps * 2 ** 20) / 1000;
    // s3rver extends Koa (lib/s3rver.js); its type declarations leave that out.
    const koa = server as unknown as {
      middleware: ((context: { body: unknown }, next: () => Promise<void>) => Promise<void>)[];
    };
    koa.middleware.unshift(async (context, next) => {
      await next();
      if (context.body instanceof Readable) context.body = context.body.pipe(new RateLimit(bytesPerMs));
    });
  }
  const { port } = (await server.run()) as AddressInfo;
  if (cluster.isWorker) process.send?.({ port });
  else process.stdout.write(`${JSON.stringify({ port })}\n`);
  process.on('SIGTERM', () => {
    void server.close().then(() => process.exit(0));
  });
}
