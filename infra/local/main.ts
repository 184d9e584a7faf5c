/**
 * `npm start`: the whole bisearch system on this machine. State lives in BISEARCH_DATA_DIR
 * (default .bisearch/); HTTP on PORT (default 3000). Ctrl-C stops everything cleanly.
 */
import { resolve } from 'node:path';
import { LocalStack } from './local-stack.js';

// The AWS SDK warns about Node 20 when its first client is built; the runtime here is pinned.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const dataDirectory = resolve(process.env.BISEARCH_DATA_DIR ?? '.bisearch');
const port = Number(process.env.PORT ?? 3000);
if (!Number.isInteger(port) || port < 0 || port > 65_535) {
  process.stderr.write(`PORT must be a port number, got ${process.env.PORT}\n`);
  process.exit(2);
}
const schedule = process.env.BISEARCH_REINDEX_SCHEDULE;

const log = (line: string) => process.stdout.write(`${line}\n`);
// No request may take the stack down: an error that escaped its request (an emulator's socket,
// a stray stream) is logged as one JSON line and the stack keeps serving.
for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
  process.on(event, (error: unknown) => {
    process.stderr.write(
      `${JSON.stringify({ level: 'ERROR', service: 'bisearch-local', message: event, error: (error as Error)?.message ?? String(error), timestamp: new Date().toISOString() })}\n`,
    );
  });
}
log(`bisearch: starting the local stack (data in ${dataDirectory})`);
let stack: LocalStack;
try {
  stack = await LocalStack.start({
    dataDirectory,
    port,
    ...(process.env.HOST ? { host: process.env.HOST } : {}),
    ...(schedule !== undefined ? { reindexSchedule: schedule === 'off' ? null : schedule } : {}),
    ...(process.env.BISEARCH_SAMPLE_CORPUS === 'off' ? { sampleCorpus: false } : {}),
    ...(process.env.BISEARCH_INGEST === 'off' ? { ingest: false } : {}),
    log,
  });
} catch (error) {
  process.stderr.write(`bisearch: could not start: ${(error as Error).message}\n`);
  process.exit(1);
}
log(
  `bisearch: search at ${stack.url}  (API: POST ${stack.url}/search; CLI: npx bisearch --help; Ctrl-C to stop)`,
);

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    log('bisearch: stopping…');
    stack.stop().then(
      () => process.exit(0),
      (error: Error) => {
        process.stderr.write(`bisearch: stop failed: ${error.message}\n`);
        process.exit(1);
      },
    );
  });
}
