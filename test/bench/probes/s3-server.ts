/**
 * The local S3 emulator (s3rver, files on disk) in processes of its own, so that the bench's
 * client and the server do not share one event loop. With `workers` > 1 (node:cluster, one shared
 * port), concurrent requests are served by different processes, as S3 serves them from different
 * hosts; one GET is always served by one process. With `perConnectionMiBps`, a proxy in front
 * of the (single) server sends each connection's responses at most that fast, as S3 does: one
 * S3 connection delivers roughly 80–100 MB/s, which is why large objects are fetched as
 * concurrent byte ranges. Prints `{"port": N}` when listening.
 *
 * Usage: s3-server.ts <directory> [workers] [perConnectionMiBps]
 */
import cluster from 'node:cluster';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { Transform, type TransformCallback } from 'node:stream';
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

/** Passes bytes on no faster than `bytesPerMs`: each chunk leaves once the link has carried the ones before it. */
class RateLimit extends Transform {
  private linkFreeAt = 0;

  constructor(private readonly bytesPerMs: number) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    const now = performance.now();
    this.linkFreeAt = Math.max(this.linkFreeAt, now) + chunk.length / this.bytesPerMs;
    this.push(chunk);
    const wait = this.linkFreeAt - now;
    if (wait < 1) done();
    else setTimeout(done, wait);
  }
}

/** A TCP proxy to `target` whose responses are limited per connection. */
async function rateLimitedProxy(target: number, mibPerSecond: number): Promise<number> {
  const bytesPerMs = (mibPerSecond * 2 ** 20) / 1000;
  const proxy = createServer((client: Socket) => {
    const upstream = connect(target, '127.0.0.1');
    client.pipe(upstream);
    upstream.pipe(new RateLimit(bytesPerMs)).pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
  });
  await new Promise<void>((listening) => proxy.listen(0, '127.0.0.1', listening));
  return (proxy.address() as AddressInfo).port;
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
  const address = (await server.run()) as AddressInfo;
  const port =
    perConnectionMiBps === undefined
      ? address.port
      : await rateLimitedProxy(address.port, perConnectionMiBps);
  if (cluster.isWorker) process.send?.({ port });
  else process.stdout.write(`${JSON.stringify({ port })}\n`);
  process.on('SIGTERM', () => {
    void server.close().then(() => process.exit(0));
  });
}
