/**
 * The local DynamoDB emulator (dynalite, in memory) in a process of its own, with the stack's
 * table created, so that the writers the bench measures and the service they write to do not
 * share one event loop: on AWS, DynamoDB is a service apart from the encode Lambdas. Prints
 * `{"port": N}` once the table exists.
 *
 * Usage: dynamodb-server.ts <tableName>
 */
import type { AddressInfo } from 'node:net';
import dynalite from 'dynalite';
import { createTable } from '../../../infra/local/emulators.js';

const [tableName] = process.argv.slice(2) as [string];
const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
const { port } = server.address() as AddressInfo;
await createTable(
  {
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    endpoints: { dynamodb: `http://127.0.0.1:${port}` },
  },
  tableName,
);
process.stdout.write(`${JSON.stringify({ port })}\n`);
process.on('SIGTERM', () => server.close(() => process.exit(0)));
