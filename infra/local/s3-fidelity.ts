/**
 * What the local S3 emulator (s3rver) does differently from S3, put right in the one place that
 * sits between them: notification keys, sequencers and key safety.
 *
 * - **Keys in notifications** are URL-encoded as S3 sends them (space as `+`); s3rver sends them raw.
 * - **Sequencers** are per key: strictly increasing for one key, and meaningless across keys (a
 *   key-derived prefix), as S3 documents. s3rver uses one millisecond clock for every key, so two
 *   writes of a key in the same millisecond got the same sequencer, and code comparing
 *   sequencers of different keys passed its tests.
 * - **Key safety**: s3rver stores an object as files under its directory, so a key with `..`
 *   segments wrote outside it and a segment over 255 bytes crashed the process (ENAMETOOLONG in
 *   a stream without an error handler). The guard answers such requests with S3-style errors first.
 */
import { createHash } from 'node:crypto';
import { encodeNotificationKey, objectKeyProblem } from '../../functions/core/document-ids.js';

/** Hands out S3-like sequencers: increasing per key, not comparable across keys. */
export class PerKeySequencers {
  private readonly last = new Map<string, bigint>();

  constructor(private readonly clock: () => number = Date.now) {}

  /** The next sequencer of `key` (22 hex digits). */
  next(key: string): string {
    const prefix = createHash('sha256').update(key).digest('hex').slice(0, 8).toUpperCase();
    // 4,096 sequencers per millisecond and key; after a restart the clock keeps them increasing.
    const now = BigInt(this.clock()) * 4096n;
    const previous = this.last.get(key) ?? 0n;
    const value = now > previous ? now : previous + 1n;
    this.last.set(key, value);
    return `${prefix}${value.toString(16).toUpperCase().padStart(14, '0')}`;
  }
}

/** An S3 event record as s3rver emits it (the fields rewritten here). */
export interface EmulatorEventRecord {
  eventName: string;
  s3: { bucket: { name: string }; object: { key: string; sequencer?: string } };
}

/**
 * Turn an s3rver event record into what S3 would send: the key URL-encoded, a per-key sequencer.
 * Returns the raw key too (s3rver's record holds it unencoded).
 */
export function toS3Notification<T extends EmulatorEventRecord>(
  record: T,
  sequencers: PerKeySequencers,
): { record: T; key: string } {
  const key = record.s3.object.key;
  return {
    key,
    record: {
      ...record,
      s3: {
        ...record.s3,
        object: { ...record.s3.object, key: encodeNotificationKey(key), sequencer: sequencers.next(key) },
      },
    },
  };
}

/** Koa middleware (the shape s3rver uses) refusing object keys that are unsafe on a file system. */
export function keyGuard() {
  return async (
    context: { path: string; status: number; type: string; body: unknown },
    next: () => Promise<void>,
  ): Promise<void> => {
    // Path-style requests: /<bucket>/<key>. Bucket-level requests carry no key.
    const match = /^\/[^/]+\/(.+)$/s.exec(context.path);
    if (match) {
      let key: string | undefined;
      try {
        key = decodeURIComponent(match[1] as string);
      } catch {
        key = undefined;
      }
      const problem = key === undefined ? 'the key is not valid URL encoding' : objectKeyProblem(key);
      if (problem) {
        context.status = 400;
        context.type = 'application/xml';
        context.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${problem.includes('bytes') ? 'KeyTooLongError' : 'InvalidArgument'}</Code><Message>${problem} (local S3 emulator)</Message></Error>`;
        return;
      }
    }
    await next();
  };
}
