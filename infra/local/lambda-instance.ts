/**
 * One local Lambda execution environment (a child process of the local stack, started by
 * `LocalLambdaFunction`). Like the Lambda Node.js runtime it imports the handler module once (the
 * Init phase: module scope, top-level await), reports how long that took, then runs one export
 * per invocation with a context whose remaining time counts down to the function's timeout.
 * The parent enforces the limits (init, timeout, memory, /tmp) and kills this process as Lambda
 * would; this side only runs code and reports outcomes.
 *
 * argv: <handler module path> <export name>. Messages: see {@link InstanceMessage}.
 */
import { pathToFileURL } from 'node:url';

/** What the parent sends. */
export interface InvokeMessage {
  readonly type: 'invoke';
  readonly id: number;
  readonly event: unknown;
  /** Epoch ms at which the function times out. */
  readonly deadline: number;
  readonly requestId: string;
}

/** What this process sends back. */
export type InstanceMessage =
  | { readonly type: 'ready'; readonly initMs: number }
  | { readonly type: 'init-error'; readonly error: SerializedError }
  | {
      readonly type: 'result';
      readonly id: number;
      readonly ok: boolean;
      readonly value?: unknown;
      readonly error?: SerializedError;
    };

/** An error as Lambda reports it: `errorType` is the error's name. */
export interface SerializedError {
  readonly name: string;
  readonly message: string;
  readonly stack?: string;
}

function serializeError(error: unknown): SerializedError {
  if (error instanceof Error)
    return { name: error.name, message: error.message, ...(error.stack ? { stack: error.stack } : {}) };
  return { name: 'Error', message: String(error) };
}

function send(message: InstanceMessage): void {
  process.send?.(message);
}

// The parent owns this environment: when it goes (stop, crash, SIGKILL), so does the instance.
process.on('disconnect', () => process.exit(0));

const [modulePath, exportName] = process.argv.slice(2);
const functionName = process.env.AWS_LAMBDA_FUNCTION_NAME ?? 'local';
const memoryLimitInMB = process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE ?? '128';
let handler!: (event: unknown, context: unknown) => Promise<unknown>;
const started = performance.now();
try {
  const module = (await import(pathToFileURL(modulePath ?? '').href)) as Record<string, unknown>;
  const candidate = module[exportName ?? 'handler'];
  if (typeof candidate !== 'function')
    throw Object.assign(new Error(`${modulePath} has no exported function ${exportName}`), {
      name: 'Runtime.HandlerNotFound',
    });
  handler = candidate as typeof handler;
} catch (error) {
  send({ type: 'init-error', error: serializeError(error) });
  // Let the message flush before the process ends.
  setTimeout(() => process.exit(1), 50);
  await new Promise(() => {});
}
send({ type: 'ready', initMs: performance.now() - started });

process.on('message', (message: InvokeMessage) => {
  if (message.type !== 'invoke') return;
  const context = {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:000000000000:function:${functionName}`,
    memoryLimitInMB,
    awsRequestId: message.requestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: `local/${process.pid}`,
    getRemainingTimeInMillis: () => Math.max(0, message.deadline - Date.now()),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
  handler(message.event, context).then(
    (value) => send({ type: 'result', id: message.id, ok: true, value }),
    (error: unknown) => send({ type: 'result', id: message.id, ok: false, error: serializeError(error) }),
  );
});
