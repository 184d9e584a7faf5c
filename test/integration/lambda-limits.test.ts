/**
 * Lambda's limits in the local runner: each function runs in its own execution environment (a
 * child process) with its Init limit, timeout, memory size and /tmp size enforced as on Lambda.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type LambdaFunctionSettings,
  type LambdaInvocationError,
  LocalLambdaFunction,
  ON_DEMAND_INIT_LIMIT_MS,
} from '../../infra/local/lambda-sandbox.js';
import type { FixtureEvent } from '../support/lambda-fixtures/limits-handler.js';

const FIXTURE = fileURLToPath(new URL('../support/lambda-fixtures/limits-handler.ts', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'bisearch-limits-'));
const functions: LocalLambdaFunction[] = [];
afterAll(async () => {
  await Promise.all(functions.map((fn) => fn.stop()));
  rmSync(scratch, { recursive: true, force: true });
});

function localFunction(
  settings: Partial<LambdaFunctionSettings> & { initLimitMs?: number; environment?: Record<string, string> },
) {
  const name = settings.name ?? `fixture${functions.length}`;
  const fn = new LocalLambdaFunction({
    name,
    handlerFile: FIXTURE,
    handlerExport: 'handler',
    memoryMb: 1024,
    timeoutSeconds: 10,
    ephemeralStorageMb: 512,
    tmpDirectory: join(scratch, name),
    ...settings,
  });
  functions.push(fn);
  return {
    fn,
    invoke: (event: FixtureEvent) =>
      fn.invoke(event) as Promise<{
        invocations: number;
        pid: number;
        remainingMs: number;
        memoryLimitInMB: string;
        tmpEntries: string[];
      }>,
  };
}

async function failure(promise: Promise<unknown>): Promise<LambdaInvocationError> {
  const error = await promise.then(
    () => undefined,
    (rejected: unknown) => rejected,
  );
  expect(error, 'the invocation should have failed').toBeInstanceOf(Error);
  return error as LambdaInvocationError;
}

describe('local Lambda limits', () => {
  it('the default Init limit is Lambda’s 10 s for on-demand environments', () => {
    expect(ON_DEMAND_INIT_LIMIT_MS).toBe(10_000);
  });

  it('a warm environment keeps module state; the context carries the memory size and the time left', async () => {
    const { invoke } = localFunction({ memoryMb: 2048, timeoutSeconds: 7 });
    const first = await invoke({ action: 'report' });
    const second = await invoke({ action: 'report' });
    expect(second).toMatchObject({ invocations: 2, pid: first.pid, memoryLimitInMB: '2048' });
    expect(first.remainingMs).toBeGreaterThan(6_000);
    expect(first.remainingMs).toBeLessThanOrEqual(7_000);
  });

  it('a handler’s error reaches the caller with its name, and the environment stays warm', async () => {
    const { invoke } = localFunction({});
    const before = await invoke({ action: 'report' });
    const error = await failure(invoke({ action: 'fail' }));
    expect(error).toMatchObject({ name: 'FixtureFailure', message: 'the fixture failed on purpose' });
    expect((await invoke({ action: 'report' })).pid).toBe(before.pid);
  });

  it('past the timeout the environment is killed (Sandbox.Timedout); the next one starts fresh', async () => {
    const { fn, invoke } = localFunction({ timeoutSeconds: 1 });
    const before = await invoke({ action: 'report' });
    const started = Date.now();
    const error = await failure(invoke({ action: 'sleep', ms: 5_000 }));
    expect(error).toMatchObject({ name: 'Sandbox.Timedout', message: 'Task timed out after 1.00 seconds' });
    expect(Date.now() - started).toBeLessThan(3_000);
    const after = await invoke({ action: 'report' });
    // New process, new module state, new Init.
    expect(after.pid).not.toBe(before.pid);
    expect(after.invocations).toBe(1);
    expect(fn.stats).toMatchObject({ timeouts: 1, inits: 2 });
  });

  it('an Init within its limit does not spend the function timeout', async () => {
    const { fn, invoke } = localFunction({
      timeoutSeconds: 1,
      environment: { FIXTURE_INIT_DELAY_MS: '800' },
    });
    const result = await invoke({ action: 'sleep', ms: 600 });
    expect(result.invocations).toBe(1);
    expect(fn.stats).toMatchObject({ inits: 1, initTimeouts: 0, timeouts: 0 });
  });

  it('an Init past the limit is retried inside the first invocation, within the function timeout', async () => {
    const { fn, invoke } = localFunction({
      initLimitMs: 300,
      timeoutSeconds: 20,
      environment: { FIXTURE_INIT_DELAY_MS: '1000' },
    });
    const result = await invoke({ action: 'report' });
    expect(result.invocations).toBe(1);
    expect(fn.stats).toMatchObject({ initTimeouts: 1, inits: 2 });
    // The retried Init took time from the invocation's own timeout.
    expect(result.remainingMs).toBeLessThan(19_000);
  });

  it('an Init that cannot finish within the function timeout fails the invocation as a timeout', async () => {
    const { fn, invoke } = localFunction({
      initLimitMs: 300,
      timeoutSeconds: 1,
      environment: { FIXTURE_INIT_DELAY_MS: '3000' },
    });
    const error = await failure(invoke({ action: 'report' }));
    expect(error.name).toBe('Sandbox.Timedout');
    expect(fn.stats.initTimeouts).toBe(1);
  });

  it('resident memory above the memory size kills the environment (Runtime.OutOfMemory)', async () => {
    const { fn, invoke } = localFunction({ memoryMb: 256 });
    const before = await invoke({ action: 'report' });
    const error = await failure(invoke({ action: 'allocate', mb: 400 }));
    expect(error.name).toBe('Runtime.OutOfMemory');
    expect(error.message).toMatch(/memory size 256 MB/);
    expect(fn.stats.outOfMemory).toBe(1);
    const after = await invoke({ action: 'report' });
    expect(after.pid).not.toBe(before.pid);
  });

  it('/tmp holds at most the ephemeral storage (ENOSPC), and every new environment starts with it empty', async () => {
    const { fn, invoke } = localFunction({ ephemeralStorageMb: 2 });
    await invoke({ action: 'write', mb: 1 });
    expect((await invoke({ action: 'report' })).tmpEntries).toEqual(['fill-1']);
    const error = await failure(invoke({ action: 'write', mb: 2 }));
    expect(error.message).toMatch(/^ENOSPC: no space left on device/);
    expect(fn.stats.outOfStorage).toBe(1);
    expect((await invoke({ action: 'report' })).tmpEntries).toEqual([]);
  });

  it('a crashed environment fails its invocation (Runtime.ExitError) and is replaced', async () => {
    const { fn, invoke } = localFunction({});
    const error = await failure(invoke({ action: 'crash' }));
    expect(error).toMatchObject({ name: 'Runtime.ExitError' });
    expect(error.message).toMatch(/exit status 3/);
    expect((await invoke({ action: 'report' })).invocations).toBe(1);
    expect(fn.stats.crashes).toBe(1);
  });
});
