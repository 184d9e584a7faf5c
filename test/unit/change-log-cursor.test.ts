import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ChangeLogCursor } from '../../functions/core/change-log-cursor.js';

const SEED = Number(process.env.FC_SEED ?? 20_261_203);

/** Sequences 1..n, some never written (their writer died), the rest arriving in any order. */
const logArbitrary = fc.integer({ min: 1, max: 40 }).chain((n) =>
  fc.record({
    n: fc.constant(n),
    dead: fc.uniqueArray(fc.integer({ min: 1, max: n }), { maxLength: Math.min(5, n - 1) }),
    order: fc.shuffledSubarray(
      Array.from({ length: n }, (_, i) => i + 1),
      { minLength: n, maxLength: n },
    ),
    pages: fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 40 }),
  }),
);

describe('ChangeLogCursor', () => {
  it('without time passing, the position is exactly the longest applied run from the start', () => {
    fc.assert(
      fc.property(logArbitrary, ({ dead, order, pages }) => {
        const arrivals = order.filter((sequence) => !dead.includes(sequence));
        const cursor = new ChangeLogCursor(0, 1_000);
        const applied = new Set<number>();
        let next = 0;
        for (const size of pages) {
          const page = arrivals.slice(next, next + size).map((sequence) => ({ sequence }));
          next += size;
          const fresh = cursor.unapplied(page);
          for (const entry of fresh) expect(applied.has(entry.sequence)).toBe(false);
          for (const entry of fresh) applied.add(entry.sequence);
          cursor.commit(
            fresh.map((entry) => entry.sequence),
            0,
          );
          let run = 0;
          while (applied.has(run + 1)) run += 1;
          expect(cursor.position).toBe(run);
        }
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('a hole is skipped only once it is older than the grace, and then the position reaches every written entry', () => {
    fc.assert(
      fc.property(logArbitrary, ({ dead, order }) => {
        const written = order.filter((sequence) => !dead.includes(sequence));
        const cursor = new ChangeLogCursor(0, 1_000);
        cursor.commit(written, 0);
        // Just before the grace: still waiting on the first hole.
        cursor.commit([], 999);
        const firstHole = Math.min(
          ...dead.filter((sequence) => sequence <= Math.max(0, ...written)),
          Infinity,
        );
        if (firstHole !== Infinity) expect(cursor.position).toBe(firstHole - 1);
        // Each later hole gets its own grace from when it became the first.
        for (let step = 1; step <= dead.length + 1; step += 1) cursor.commit([], 1_000 * step + 1_000);
        expect(cursor.position).toBe(Math.max(0, ...written));
        expect(cursor.waitingOnHole).toBe(false);
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('a new snapshot watermark moves a cursor that is behind, and never moves one back', () => {
    const cursor = new ChangeLogCursor(5);
    cursor.commit([7, 8], 0);
    cursor.rebase(6, 0);
    expect(cursor.position).toBe(8);
    cursor.rebase(3, 0);
    expect(cursor.position).toBe(8);
  });
});
