/**
 * A Lambda handler for the local-limits tests: its Init sleeps for FIXTURE_INIT_DELAY_MS, and each
 * event asks it to report on its environment, sleep, hold memory, fill /tmp, fail or crash.
 */
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

await sleep(Number(process.env.FIXTURE_INIT_DELAY_MS ?? 0));
/** Invocations served by this environment (module state: a new environment starts at 0). */
let invocations = 0;
const held: Buffer[] = [];

export type FixtureEvent =
  | { action: 'report' }
  | { action: 'sleep'; ms: number }
  | { action: 'allocate'; mb: number }
  | { action: 'write'; mb: number }
  | { action: 'fail' }
  | { action: 'crash' };

export const handler = async (
  event: FixtureEvent,
  context: { getRemainingTimeInMillis(): number; memoryLimitInMB: string; functionName: string },
) => {
  invocations += 1;
  const tmp = process.env.BISEARCH_WORK_DIR ?? '';
  switch (event.action) {
    case 'sleep':
      await sleep(event.ms);
      break;
    case 'allocate':
      // Touched pages count as resident memory; held until the environment ends.
      for (let mb = 0; mb < event.mb; mb += 1) held.push(Buffer.alloc(2 ** 20, 1));
      await sleep(500);
      break;
    case 'write':
      writeFileSync(join(tmp, `fill-${invocations}`), Buffer.alloc(event.mb * 2 ** 20, 1));
      await sleep(300);
      break;
    case 'fail':
      throw Object.assign(new Error('the fixture failed on purpose'), { name: 'FixtureFailure' });
    case 'crash':
      process.exit(3);
  }
  return {
    invocations,
    pid: process.pid,
    remainingMs: context.getRemainingTimeInMillis(),
    memoryLimitInMB: context.memoryLimitInMB,
    functionName: context.functionName,
    tmpEntries: readdirSync(tmp),
  };
};
