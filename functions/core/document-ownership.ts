/**
 * Which event may change a document's stored state. Pure rules, shared by every write of the
 * encoder and tested on their own.
 *
 * A document is owned by the S3 object (source key) that defined it. S3 orders the events of one
 * key by `sequencer`, and only of one key ("you can't use sequencer to determine order for events
 * on different object keys"), so:
 * - an event of the owning key applies when its sequencer is newer than the stored one;
 * - another key may take a document over only once it is deleted (its owner released it);
 * - while the owner holds it, another key that defines the same id is a conflict, reported to the
 *   user with both keys named: two sources are never merged silently.
 */

/** The part of a stored document status these rules read. */
export interface OwnedState {
  readonly sourceKey: string;
  /** Normalised sequencer of the owner's last applied event. */
  readonly sourceSequencer: string;
  readonly status: 'indexed' | 'failed' | 'deleted' | 'pending';
}

/** What to do with an event that defines (creates, updates or fails) a document. */
export type ClaimDecision = 'apply' | 'stale' | 'conflict';

/** What to do with an event that removes a document from its source. */
export type ReleaseDecision = 'apply' | 'stale' | 'not-owned';

/** Decide for an event of `key` at `sequencer` that defines the document. */
export function decideClaim(stored: OwnedState | undefined, key: string, sequencer: string): ClaimDecision {
  if (!stored) return 'apply';
  if (stored.sourceKey === key) return stored.sourceSequencer < sequencer ? 'apply' : 'stale';
  return stored.status === 'deleted' ? 'apply' : 'conflict';
}

/** Decide for an event of `key` at `sequencer` after which the key no longer holds the document. */
export function decideRelease(
  stored: OwnedState | undefined,
  key: string,
  sequencer: string,
): ReleaseDecision {
  // No state yet: a tombstone is written so that an older event of this key, still in flight,
  // cannot resurrect the document.
  if (!stored) return 'apply';
  if (stored.sourceKey !== key) return 'not-owned';
  return stored.sourceSequencer < sequencer ? 'apply' : 'stale';
}
