/**
 * A reader's position in the change log, when entries can appear out of order.
 *
 * Encoders take sequences from an atomic counter and then write their entry, so for the few
 * milliseconds between two writers' increments and puts, entry n+1 can exist before entry n
 * (a sequence taken by a writer that died before its put never appears at all). A reader
 * therefore applies every entry it sees, but only moves its position over sequences it has seen
 * without a hole: `position` means "every sequence up to here has been applied", the
 * promise a snapshot watermark makes too. A hole older than `gapGraceMs` is given up on (its
 * writer is gone; the nightly reindex reads the table itself, so nothing stays lost).
 */

/** A change-log entry as far as the cursor cares. */
export interface SequencedEntry {
  readonly sequence: number;
}

/** What {@link ChangeLogCursor.commit} did. */
export interface CursorAdvance {
  /** The position after the commit. */
  readonly position: number;
  /** Sequences given up on because their hole outlived the grace. */
  readonly skipped: number;
}

/** How long a hole in the log is waited for before it is skipped, ms (see module comment). */
export const DEFAULT_GAP_GRACE_MS = 60_000;

export class ChangeLogCursor {
  private current: number;
  /** Applied sequences above the position (beyond a hole). */
  private readonly appliedAbove = new Set<number>();
  /** When the lowest hole was first seen (epoch ms), if there is one. */
  private holeSince: number | undefined;

  constructor(
    position: number,
    private readonly gapGraceMs: number = DEFAULT_GAP_GRACE_MS,
  ) {
    this.current = position;
  }

  /** Every sequence up to this one has been applied (or given up on). */
  get position(): number {
    return this.current;
  }

  /** Whether sequences above the position are waiting on a hole. */
  get waitingOnHole(): boolean {
    return this.appliedAbove.size > 0;
  }

  /** The entries of a page (read after the position) that were not applied yet. */
  unapplied<T extends SequencedEntry>(entries: readonly T[]): T[] {
    return entries.filter((entry) => entry.sequence > this.current && !this.appliedAbove.has(entry.sequence));
  }

  /**
   * Record that `sequences` are applied and move the position over every run without a hole. A
   * hole that has been there for `gapGraceMs` (first seen by an earlier commit) is skipped.
   */
  commit(sequences: Iterable<number>, now: number): CursorAdvance {
    for (const sequence of sequences) if (sequence > this.current) this.appliedAbove.add(sequence);
    let skipped = 0;
    for (;;) {
      while (this.appliedAbove.delete(this.current + 1)) this.current += 1;
      if (this.appliedAbove.size === 0) {
        this.holeSince = undefined;
        break;
      }
      if (this.holeSince === undefined) {
        this.holeSince = now;
        break;
      }
      if (now - this.holeSince < this.gapGraceMs) break;
      // Skip the hole: up to just below the lowest applied sequence beyond it.
      const next = Math.min(...this.appliedAbove);
      skipped += next - 1 - this.current;
      this.current = next - 1;
      this.holeSince = undefined;
    }
    return { position: this.current, skipped };
  }

  /** Every sequence up to `watermark` is in a new snapshot: move there if behind. */
  rebase(watermark: number, now: number): void {
    if (watermark <= this.current) return;
    this.current = watermark;
    for (const sequence of this.appliedAbove) if (sequence <= watermark) this.appliedAbove.delete(sequence);
    this.holeSince = undefined;
    this.commit([], now);
  }
}
