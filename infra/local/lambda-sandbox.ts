/**
 * Lambda's limits on one machine. Each function of the synthesized stack runs in its own child
 * process (one execution environment, `lambda-instance.ts`) with the memory size, timeout and
 * ephemeral storage the template gives it, enforced as Lambda enforces them:
 *
 * - **Init** (module scope) over 10 s: the environment is discarded and Init runs again inside
 *   the first invocation, where it counts against the function timeout (on-demand functions;
 *   the stack's default provisioned concurrency is 0).
 * - **Timeout**: the environment is killed (`Sandbox.Timedout`, "Task timed out after N seconds");
 *   the next invocation starts a fresh one, with a fresh Init and an empty /tmp.
 * - **Memory**: resident memory above the memory size kills the environment
 *   (`Runtime.OutOfMemory`).
 * - **Ephemeral storage**: each environment gets its own empty scratch directory (`BISEARCH_WORK_DIR`); more
 *   bytes in it than the ephemeral storage fails the invocation with ENOSPC and discards the
 *   environment.
 *
 * Memory and /tmp are sampled (every {@link SAMPLE_INTERVAL_MS} ms and at the end of each Init and
 * invocation), so a spike shorter than a sample can pass unseen; Lambda's limits are hard. One
 * environment per function serves overlapping invocations (Lambda would start one per concurrent
 * request), which is enough for one machine and keeps model loads to one per function.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { HANDLER_FILE_METADATA } from '../constructs/template-metadata.js';
import type { InstanceMessage, SerializedError } from './lambda-instance.js';
import type { CloudFormationTemplate } from './state-machine-definition.js';

const INSTANCE_ENTRY = fileURLToPath(new URL('./lambda-instance.ts', import.meta.url));
// The environments run the TypeScript sources, as `npm start` does; resolved from this project so
// that neither the working directory nor the parent's own loader matters.
export const TSX_LOADER = pathToFileURL(
  join(dirname(createRequire(import.meta.url).resolve('tsx/package.json')), 'dist', 'loader.mjs'),
).href;
/** How often memory and /tmp are sampled while an environment runs, ms. */
export const SAMPLE_INTERVAL_MS = 50;
/** Lambda's limit on the Init phase of an on-demand execution environment, ms. */
export const ON_DEMAND_INIT_LIMIT_MS = 10_000;

/** The limits and code of one function, as the template deploys them. */
export interface LambdaFunctionSettings {
  /** The function's name in logs, errors and status: its logical id without CDK's hash suffix. */
  readonly name: string;
  /** The template's logical id (what state machine tasks name). */
  readonly logicalId?: string;
  /** Absolute path of the handler module (TypeScript source, run through tsx). */
  readonly handlerFile: string;
  /** Exported handler name. */
  readonly handlerExport: string;
  /** Memory size, MB (`MemorySize`). */
  readonly memoryMb: number;
  /** Function timeout, seconds (`Timeout`). */
  readonly timeoutSeconds: number;
  /** /tmp size, MB (`EphemeralStorage.Size`); fractions allowed for tests. */
  readonly ephemeralStorageMb: number;
}

/** A failed invocation as Lambda reports it: `name` is the `errorType`. */
export class LambdaInvocationError extends Error {
  constructor(
    override readonly name: string,
    message: string,
  ) {
    super(message);
  }
}

/** What one function's environments went through (tests and status read it). */
export interface LambdaFunctionStats {
  inits: number;
  initTimeouts: number;
  timeouts: number;
  outOfMemory: number;
  outOfStorage: number;
  crashes: number;
  invocations: number;
  /** Highest resident memory seen, MB. */
  peakMemoryMb: number;
  /** Highest /tmp use seen, MB. */
  peakStorageMb: number;
}

export interface LocalLambdaFunctionOptions extends LambdaFunctionSettings {
  /** Parent of each environment's /tmp (emptied at every new environment). */
  readonly tmpDirectory: string;
  /** Variables beyond the parent's environment. */
  readonly environment?: Record<string, string>;
  /** Init limit, ms. Default {@link ON_DEMAND_INIT_LIMIT_MS}. */
  readonly initLimitMs?: number;
  readonly log?: (line: string) => void;
}

interface PendingInvocation {
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
}

/** One execution environment: a child process with its module loaded (or loading). */
class ExecutionEnvironment {
  readonly pending = new Map<number, PendingInvocation>();
  readonly ready: Promise<number>;
  /** Why the environment ended; set once, before pending invocations are rejected. */
  ended: LambdaInvocationError | undefined;
  private readonly sampler: ReturnType<typeof setInterval>;
  private nextId = 0;

  constructor(
    private readonly fn: LocalLambdaFunction,
    private readonly child: ChildProcess,
    readonly tmp: string,
  ) {
    this.ready = new Promise<number>((resolveReady, rejectReady) => {
      child.on('message', (message: InstanceMessage) => {
        if (message.type === 'ready') resolveReady(message.initMs);
        else if (message.type === 'init-error') {
          const error = new LambdaInvocationError(message.error.name, message.error.message);
          rejectReady(error);
          this.end(error);
        } else if (message.type === 'result') {
          const invocation = this.pending.get(message.id);
          this.pending.delete(message.id);
          if (!invocation) return;
          const overLimit = this.checkLimits();
          if (overLimit) invocation.reject(overLimit);
          else if (message.ok) invocation.resolve(message.value);
          else invocation.reject(rebuildError(message.error));
        }
      });
      child.once('exit', (code, signal) => {
        const error =
          this.ended ??
          new LambdaInvocationError(
            'Runtime.ExitError',
            `RequestId: local Error: Runtime exited with error: ${signal ? `signal: ${signal}` : `exit status ${code}`}`,
          );
        if (!this.ended) this.fn.stats.crashes += 1;
        rejectReady(error);
        this.end(error);
      });
    });
    this.ready.catch(() => {});
    this.sampler = setInterval(() => {
      const overLimit = this.checkLimits();
      if (overLimit) this.end(overLimit);
    }, SAMPLE_INTERVAL_MS);
    this.sampler.unref();
  }

  get alive(): boolean {
    return this.ended === undefined;
  }

  invoke(event: unknown, deadline: number): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolveInvocation, rejectInvocation) => {
      if (this.ended) return rejectInvocation(this.ended);
      this.pending.set(id, { resolve: resolveInvocation, reject: rejectInvocation });
      this.child.send({
        type: 'invoke',
        id,
        event,
        deadline,
        requestId: `local-${Date.now()}-${Math.random().toString(36).slice(2)}`,
      });
    });
  }

  /** The first limit the environment is over (and the counters), or undefined. */
  checkLimits(): LambdaInvocationError | undefined {
    if (this.ended) return this.ended;
    const settings = this.fn.settings;
    const memoryMb = residentMemoryMb(this.child.pid);
    if (memoryMb !== undefined) {
      this.fn.stats.peakMemoryMb = Math.max(this.fn.stats.peakMemoryMb, memoryMb);
      if (memoryMb > settings.memoryMb) {
        this.fn.stats.outOfMemory += 1;
        return new LambdaInvocationError(
          'Runtime.OutOfMemory',
          `RequestId: local Error: Runtime exited with error: signal: killed (${memoryMb.toFixed(0)} MB resident, memory size ${settings.memoryMb} MB)`,
        );
      }
    }
    const storageMb = directoryBytes(this.tmp) / 2 ** 20;
    this.fn.stats.peakStorageMb = Math.max(this.fn.stats.peakStorageMb, storageMb);
    if (storageMb > settings.ephemeralStorageMb) {
      this.fn.stats.outOfStorage += 1;
      return Object.assign(
        new LambdaInvocationError(
          'Error',
          `ENOSPC: no space left on device (/tmp holds ${storageMb.toFixed(1)} MB; ephemeral storage is ${settings.ephemeralStorageMb} MB)`,
        ),
        { code: 'ENOSPC' },
      );
    }
    return undefined;
  }

  /** End the environment (kill the process) and fail whatever it was running with `reason`. */
  end(reason: LambdaInvocationError): void {
    if (!this.ended) this.ended = reason;
    clearInterval(this.sampler);
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    for (const invocation of this.pending.values()) invocation.reject(this.ended);
    this.pending.clear();
  }
}

/**
 * One Lambda function on this machine: invocations go to a warm execution environment, or to a
 * new one whose Init runs first, with the function's limits enforced (see the module comment).
 */
export class LocalLambdaFunction {
  readonly stats: LambdaFunctionStats = {
    inits: 0,
    initTimeouts: 0,
    timeouts: 0,
    outOfMemory: 0,
    outOfStorage: 0,
    crashes: 0,
    invocations: 0,
    peakMemoryMb: 0,
    peakStorageMb: 0,
  };
  private environment: ExecutionEnvironment | undefined;
  /** The Init of the current environment, shared by invocations that arrive while it runs. */
  private starting: Promise<{ environment: ExecutionEnvironment; retriedInitAt?: number }> | undefined;
  private stopped = false;
  private generation = 0;

  constructor(private readonly options: LocalLambdaFunctionOptions) {}

  get settings(): LambdaFunctionSettings {
    return this.options;
  }

  /** Start an environment now (as provisioned concurrency or a first request would). */
  async warm(): Promise<void> {
    await this.ready();
  }

  /**
   * Invoke the function with `event`; resolves with the handler's result, rejects with the
   * handler's error or a {@link LambdaInvocationError} for a limit (`Sandbox.Timedout`,
   * `Runtime.OutOfMemory`, ENOSPC, `Runtime.ExitError`, an Init error).
   */
  async invoke(event: unknown): Promise<unknown> {
    if (this.stopped)
      throw new LambdaInvocationError('Lambda.ServiceException', 'the local stack is stopping');
    this.stats.invocations += 1;
    // Init has its own limit; only an Init retried inside the invocation spends its timeout.
    const { environment, retriedInitAt } = await this.ready();
    const timeoutMs = this.options.timeoutSeconds * 1000;
    const deadline = (retriedInitAt ?? Date.now()) + timeoutMs;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expiry = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => {
          const error = this.timedOut();
          // Lambda stops the environment that timed out; whatever it ran is gone with it.
          environment.end(error);
          reject(error);
        },
        Math.max(0, deadline - Date.now()),
      );
    });
    try {
      return await Promise.race([environment.invoke(event, deadline), expiry]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stop the current environment (if any); later invocations fail. */
  async stop(): Promise<void> {
    this.stopped = true;
    const environment = this.environment;
    this.environment = undefined;
    environment?.end(new LambdaInvocationError('Lambda.ServiceException', 'the local stack stopped'));
  }

  private timedOut(): LambdaInvocationError {
    this.stats.timeouts += 1;
    return new LambdaInvocationError(
      'Sandbox.Timedout',
      `Task timed out after ${this.options.timeoutSeconds.toFixed(2)} seconds`,
    );
  }

  /**
   * A warm environment, or a new one once its Init has finished. `retriedInitAt` is set when the
   * first Init overran its limit and was run again, from then on inside the invocation.
   */
  private ready(): Promise<{ environment: ExecutionEnvironment; retriedInitAt?: number }> {
    if (this.environment?.alive) return Promise.resolve({ environment: this.environment });
    this.starting ??= this.initialize().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  private async initialize(): Promise<{ environment: ExecutionEnvironment; retriedInitAt?: number }> {
    const initLimitMs = this.options.initLimitMs ?? ON_DEMAND_INIT_LIMIT_MS;
    const first = this.spawn();
    if ((await within(first.ready, initLimitMs)) !== TIMED_OUT) return { environment: this.accept(first) };
    // Lambda: an Init that overruns its 10 s is retried at the first invocation, "with the
    // configured function timeout".
    this.stats.initTimeouts += 1;
    first.end(new LambdaInvocationError('Runtime.InitTimeout', 'Init phase timed out'));
    const timeoutMs = this.options.timeoutSeconds * 1000;
    this.options.log?.(
      `INIT_REPORT ${this.options.name}: Init Duration: ${initLimitMs} ms Phase: init Status: timeout; Init runs again inside the invocation (function timeout ${timeoutMs} ms)`,
    );
    const retriedInitAt = Date.now();
    const second = this.spawn();
    if ((await within(second.ready, timeoutMs)) === TIMED_OUT) {
      const error = this.timedOut();
      second.end(error);
      throw error;
    }
    return { environment: this.accept(second), retriedInitAt };
  }

  private accept(environment: ExecutionEnvironment): ExecutionEnvironment {
    const overLimit = environment.checkLimits();
    if (overLimit) {
      environment.end(overLimit);
      throw overLimit;
    }
    if (this.stopped) {
      environment.end(new LambdaInvocationError('Lambda.ServiceException', 'the local stack stopped'));
      throw environment.ended;
    }
    this.environment = environment;
    return environment;
  }

  private spawn(): ExecutionEnvironment {
    this.stats.inits += 1;
    const { name, memoryMb } = this.options;
    // A new environment starts with an empty /tmp, as on Lambda.
    const tmp = join(this.options.tmpDirectory, `${this.generation++}`);
    rmSync(this.options.tmpDirectory, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    const child = fork(INSTANCE_ENTRY, [this.options.handlerFile, this.options.handlerExport], {
      execArgv: ['--import', TSX_LOADER],
      env: {
        ...process.env,
        ...this.options.environment,
        AWS_LAMBDA_FUNCTION_NAME: name,
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(memoryMb),
        AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
        AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${name}`,
        // The handlers keep all scratch files under BISEARCH_WORK_DIR (Lambda: /tmp/bisearch).
        // TMPDIR stays the machine's: tsx caches its compiled sources there.
        BISEARCH_WORK_DIR: tmp,
      },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    return new ExecutionEnvironment(this, child, tmp);
  }
}

const TIMED_OUT = Symbol('timed out');

/** `promise`'s value, or {@link TIMED_OUT} if it takes longer than `ms` (its rejection passes through). */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expiry = new Promise<typeof TIMED_OUT>((resolveExpiry) => {
    timer = setTimeout(() => resolveExpiry(TIMED_OUT), ms);
  });
  try {
    return await Promise.race([promise, expiry]);
  } finally {
    clearTimeout(timer);
  }
}

function rebuildError(error: SerializedError | undefined): Error {
  const rebuilt = new LambdaInvocationError(error?.name ?? 'Error', error?.message ?? 'unknown error');
  if (error?.stack) rebuilt.stack = error.stack;
  return rebuilt;
}

/** Resident memory of a process, MB (Linux /proc), or undefined where it cannot be read. */
function residentMemoryMb(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kilobytes = /VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1];
    return kilobytes === undefined ? undefined : Number(kilobytes) / 1024;
  } catch {
    return undefined;
  }
}

/** Bytes of the regular files under a directory (0 when it is gone). */
function directoryBytes(directory: string): number {
  let total = 0;
  let entries: import('node:fs').Dirent[];
  try {
    entries = readdirSync(directory, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const entry of entries) {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) total += directoryBytes(path);
    else if (entry.isFile()) {
      try {
        total += statSync(path).size;
      } catch {
        // Removed between the listing and the stat.
      }
    }
  }
  return total;
}

/**
 * Every bisearch function of a synthesized template, by logical id, with its limits (memory,
 * timeout, ephemeral storage) and its handler module under `projectRoot`.
 */
export function functionsFromTemplate(
  template: CloudFormationTemplate & {
    Resources: Record<
      string,
      { Type: string; Properties?: Record<string, unknown>; Metadata?: Record<string, unknown> }
    >;
  },
  projectRoot: string,
): Record<string, LambdaFunctionSettings> {
  const functions: Record<string, LambdaFunctionSettings> = {};
  for (const [logicalId, resource] of Object.entries(template.Resources)) {
    if (resource.Type !== 'AWS::Lambda::Function') continue;
    const handlerFile = resource.Metadata?.[HANDLER_FILE_METADATA];
    if (typeof handlerFile !== 'string') continue;
    const properties = resource.Properties ?? {};
    const handler = String(properties.Handler ?? 'index.handler');
    functions[logicalId] = {
      name: logicalId.replace(/[0-9A-F]{8}$/, ''),
      logicalId,
      handlerFile: resolve(projectRoot, handlerFile),
      handlerExport: handler.slice(handler.lastIndexOf('.') + 1),
      // Lambda's defaults when a property is absent.
      memoryMb: Number(properties.MemorySize ?? 128),
      timeoutSeconds: Number(properties.Timeout ?? 3),
      ephemeralStorageMb: Number((properties.EphemeralStorage as { Size?: number } | undefined)?.Size ?? 512),
    };
  }
  return functions;
}
