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
 * - **Atomic PUTs**: S3 shows a reader the whole old object or the whole new one. s3rver truncates
 *   the object file and rewrites it in place, writes its metadata (length, ETag) separately, and
 *   for a buffered body answers before the bytes are on disk, so two PUTs of one key racing with a
 *   GET served torn bodies ("invalid JSON at character 57"). {@link atomicObjects} writes each body
 *   to a temporary file and swaps file and metadata in together under a per-key lock.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, rename, unlink, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
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

/** The parts of s3rver's file-system store that {@link atomicObjects} wraps. */
interface ObjectStore {
  getResourcePath(bucket: string, key: string, resource: string): string;
  putMetadata(bucket: string, key: string, metadata: Record<string, string>, md5: string): Promise<void>;
  putObject(object: {
    bucket: string;
    key: string;
    content: Buffer | NodeJS.ReadableStream;
    metadata: Record<string, string>;
  }): Promise<{ size: number; md5: string }>;
  getObject(bucket: string, key: string, options?: unknown): Promise<unknown>;
  deleteObject(bucket: string, key: string): Promise<void>;
}

/**
 * Make s3rver's object writes atomic as S3's are: a body is written in full to a temporary file,
 * then renamed over the object and its metadata written while no read or other write of that key
 * runs; a read takes its metadata and opens its file under the same lock (an open file keeps the
 * bytes it had, whatever is renamed over it later).
 */
export function atomicObjects(store: ObjectStore): void {
  const tails = new Map<string, Promise<unknown>>();
  const locked = <T>(bucket: string, key: string, work: () => Promise<T>): Promise<T> => {
    const id = `${bucket}/${key}`;
    const result = (tails.get(id) ?? Promise.resolve()).then(work, work);
    const tail = result.catch(() => {});
    tails.set(id, tail);
    tail.then(() => {
      if (tails.get(id) === tail) tails.delete(id);
    });
    return result;
  };
  const getObject = store.getObject.bind(store);
  const deleteObject = store.deleteObject.bind(store);
  store.getObject = (bucket, key, options) => locked(bucket, key, () => getObject(bucket, key, options));
  store.deleteObject = (bucket, key) => locked(bucket, key, () => deleteObject(bucket, key));
  store.putObject = async (object) => {
    const body = Buffer.isBuffer(object.content) ? object.content : await readAll(object.content);
    const md5 = createHash('md5').update(body).digest('hex');
    const path = store.getResourcePath(object.bucket, object.key, 'object');
    await mkdir(dirname(path), { recursive: true });
    const temporary = `${path}.${randomBytes(6).toString('hex')}.uploading`;
    await writeFile(temporary, body);
    try {
      await locked(object.bucket, object.key, async () => {
        await rename(temporary, path);
        await store.putMetadata(object.bucket, object.key, object.metadata, md5);
      });
    } catch (error) {
      await unlink(temporary).catch(() => {});
      throw error;
    }
    return { size: body.length, md5 };
  };
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer | string>)
    chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks);
}
