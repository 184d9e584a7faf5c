/**
 * The local S3 emulator (s3rver, files on disk) in processes of its own, so that the bench's
 * client and the server do not share one event loop. With `workers` > 1 (node:cluster, one shared
 * port), concurrent requests are served by different processes, as S3 serves them from different
 * hosts; one GET is always served by one process. Prints `{"port": N}` when listening.
 */
import cluster from 'node:cluster';
import type { AddressInfo } from 'node:net';
import S3rver from 's3rver';

const [directory, workerArgument] = process.argv.slice(2) as [string, string | undefined];
const workers = Number(workerArgument ?? 1);

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
  if (cluster.isWorker) process.send?.({ port: address.port });
  else process.stdout.write(`${JSON.stringify({ port: address.port })}\n`);
  process.on('SIGTERM', () => {
    void server.close().then(() => process.exit(0));
  });
}
