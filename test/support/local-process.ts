import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { LocalStackInfo } from '../../infra/local/local-stack.js';

const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const run = promisify(execFile);

/** `npm start` as a real child process (so stops, restarts and crashes are real). */
export interface LocalProcess {
  readonly url: string;
  readonly info: LocalStackInfo;
  readonly output: () => string;
  /** Send a signal and wait for the exit; resolves with the exit code (null when killed). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Start the local stack (infra/local/main.ts, what `npm start` runs) on a free port. */
export async function startLocalProcess(
  dataDirectory: string,
  environment: Record<string, string> = {},
): Promise<LocalProcess> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'infra/local/main.ts'], {
    cwd: PROJECT_ROOT,
    env: {
      ...process.env,
      BISEARCH_DATA_DIR: dataDirectory,
      PORT: '0',
      BISEARCH_REINDEX_SCHEDULE: 'off',
      POWERTOOLS_LOG_LEVEL: 'ERROR',
      ...environment,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr?.on('data', (chunk) => {
    output += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const deadline = setTimeout(
      () => reject(new Error(`local stack did not start within 180 s:\n${output}`)),
      180_000,
    );
    const check = setInterval(() => {
      if (output.includes('bisearch: search at http')) {
        clearInterval(check);
        clearTimeout(deadline);
        resolve();
      }
    }, 100);
    exited.then((code) => {
      clearInterval(check);
      clearTimeout(deadline);
      reject(new Error(`local stack exited with ${code} during start:\n${output}`));
    });
  });
  const info = JSON.parse(readFileSync(join(dataDirectory, 'stack.json'), 'utf8')) as LocalStackInfo;
  return {
    url: info.url,
    info,
    output: () => output,
    stop: async (signal = 'SIGINT') => {
      child.kill(signal);
      return exited;
    },
  };
}

/** Run the `bisearch` CLI as a user would. */
export async function bisearch(
  dataDirectory: string,
  ...args: string[]
): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, ['infra/local/bin/bisearch.mjs', ...args], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, BISEARCH_DATA_DIR: dataDirectory },
    maxBuffer: 8 * 1024 * 1024,
  });
}

/** Poll `check` until it returns a value (not undefined) or the deadline passes; never a fixed sleep. */
export async function eventually<T>(
  check: () => Promise<T | undefined>,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const started = Date.now();
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() - started > timeoutMs) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
