// Plain Node, no tsx, no loader: loads one deployed bundle the way the Lambda Node.js runtime
// loads an .mjs handler (a dynamic import() of the file, from the function's directory, with the
// process's NODE_PATH), runs its module-scope init, then invokes one export once per event.
// argv: <bundle file> <export name> <events JSON file>. Prints one line: BISEARCH_RESULT <json>.
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const [bundle, exportName, eventsFile] = process.argv.slice(2);
const events = JSON.parse(readFileSync(eventsFile, 'utf8'));
const context = {
  callbackWaitsForEmptyEventLoop: false,
  functionName: exportName,
  functionVersion: '$LATEST',
  invokedFunctionArn: `arn:aws:lambda:us-east-1:000000000000:function:${exportName}`,
  memoryLimitInMB: '3008',
  awsRequestId: 'deployed-bundle-test',
  logGroupName: `/aws/lambda/${exportName}`,
  logStreamName: 'test',
  getRemainingTimeInMillis: () => 60_000,
};
let outcome;
try {
  const started = performance.now();
  const module = await import(pathToFileURL(bundle).href);
  const initMs = performance.now() - started;
  const handler = module[exportName];
  if (typeof handler !== 'function') throw new Error(`${bundle} has no export ${exportName}`);
  const results = [];
  for (const event of events) results.push(await handler(event, context));
  outcome = { ok: true, initMs, results };
} catch (error) {
  outcome = { ok: false, error: { name: error?.name, code: error?.code, message: String(error?.message) } };
}
process.stdout.write(`\nBISEARCH_RESULT ${JSON.stringify(outcome)}\n`);
process.exit(0);
