import { fork } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { TSX_LOADER } from './lambda-sandbox.js';

/** What a local container run takes. */
export interface LocalContainerOptions {
  /** Absolute path of the container's entry point (TypeScript source, run through tsx). */
  readonly handlerFile: string;
  /** The state's environment overrides (added to this process's environment, as ECS adds them to the task definition's). */
  readonly environment: Readonly<Record<string, string>>;
  /** The container's scratch space (Fargate: its ephemeral storage), emptied before the run. */
  readonly workDirectory: string;
}

/**
 * Run a container's entry point as a process of its own, as ECS runs the image's entry point:
 * a fresh process and an empty scratch directory per run, output to this terminal; resolves with
 * its exit code (1 when killed by a signal).
 */
export function runLocalContainer(options: LocalContainerOptions): Promise<number> {
  rmSync(options.workDirectory, { recursive: true, force: true });
  mkdirSync(options.workDirectory, { recursive: true });
  return new Promise((resolve, reject) => {
    const child = fork(options.handlerFile, [], {
      execArgv: ['--import', TSX_LOADER],
      env: { ...process.env, ...options.environment, BISEARCH_WORK_DIR: options.workDirectory },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      rmSync(options.workDirectory, { recursive: true, force: true });
      resolve(code ?? 1);
    });
  });
}
