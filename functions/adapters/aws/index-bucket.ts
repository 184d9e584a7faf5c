import { createHash } from 'node:crypto';
import { mkdir, open, readdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { PassThrough, type Readable } from 'node:stream';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { SnapshotIntegrityError } from '../../core/errors.js';
import { MANIFEST_FILE, parseSnapshotManifest, type SnapshotManifest } from '../../core/snapshot-manifest.js';
import { listObjects } from './s3-objects.js';

/** Prefix of snapshot versions in the index bucket: `indexes/<version>/<file>`. */
export const INDEXES_PREFIX = 'indexes/';
/** Prefix of reindex exports: `exports/<execution>/chunks.jsonl`. */
export const EXPORTS_PREFIX = 'exports/';

export interface DownloadOptions {
  /** Bytes per ranged GET. Default 8 MiB. */
  readonly partBytes?: number;
  /** Ranged GETs in flight at once. Default 8. */
  readonly concurrency?: number;
}

/** Snapshot versions and reindex exports in S3. */
export class IndexBucket {
  constructor(
    private readonly s3: S3Client,
    readonly bucketName: string,
  ) {}

  static versionPrefix(version: string): string {
    return `${INDEXES_PREFIX}${version}/`;
  }

  /**
   * Upload a snapshot directory under `indexes/<version>/`, manifest last: a reader that finds the
   * manifest finds every file it lists. Large files go up as parallel multipart uploads.
   */
  async uploadSnapshot(directory: string, version: string): Promise<string> {
    const prefix = IndexBucket.versionPrefix(version);
    const files = (await readdir(directory)).filter((name) => name !== MANIFEST_FILE);
    for (const name of [...files, MANIFEST_FILE]) {
      const handle = await open(join(directory, name));
      try {
        await new Upload({
          client: this.s3,
          params: { Bucket: this.bucketName, Key: `${prefix}${name}`, Body: handle.createReadStream() },
          queueSize: 4,
          partSize: 16 * 1024 * 1024,
        }).done();
      } finally {
        await handle.close();
      }
    }
    return prefix;
  }

  /**
   * Download a snapshot version into `directory` with parallel ranged GETs (each file is cut into
   * `partBytes` ranges written at their offsets) and verify it: every file's size and sha256 are
   * computed while it downloads (ranges are hashed in order as they arrive) and compared with the
   * manifest, so opening the snapshot need not read its gigabytes again
   * (`FileSnapshot.open(…, { verifyChecksums: false })`). Files land under temporary names and are
   * renamed when complete; `manifest.json` is written last, so a directory with a manifest holds
   * every file it lists.
   * @returns the verified manifest.
   * @throws SnapshotIntegrityError when a file is missing or differs from the manifest.
   */
  async downloadSnapshot(
    prefix: string,
    directory: string,
    options: DownloadOptions = {},
  ): Promise<SnapshotManifest> {
    await mkdir(directory, { recursive: true });
    const where = `s3://${this.bucketName}/${prefix}`;
    const listed = await this.list(prefix);
    const manifestObject = listed.find((object) => object.key === `${prefix}${MANIFEST_FILE}`);
    if (!manifestObject) throw new Error(`${where} has no ${MANIFEST_FILE}; not a complete snapshot`);
    const manifestJson = await this.getText(manifestObject.key);
    const manifest = parseSnapshotManifest(manifestJson, where);
    const sizes = new Map(listed.map((object) => [object.key.slice(prefix.length), object.size]));
    for (const name of Object.keys(manifest.files)) {
      if (!sizes.has(name)) throw new SnapshotIntegrityError(`${where}: ${name} is missing`);
      await this.downloadSnapshotFile(prefix, manifest, name, directory, options, sizes.get(name));
    }
    await writeFile(join(directory, MANIFEST_FILE), manifestJson);
    return manifest;
  }

  /**
   * Download one file of the snapshot at `prefix` into `directory` (ranged GETs, hashed while
   * they arrive) and check it against `manifest`.
   * @param size the object's size when a listing gave it (else the manifest's, or a HEAD).
   * @returns its local path.
   * @throws SnapshotIntegrityError when the manifest does not list it or it differs.
   */
  async downloadSnapshotFile(
    prefix: string,
    manifest: SnapshotManifest,
    name: string,
    directory: string,
    options: DownloadOptions = {},
    size?: number,
  ): Promise<string> {
    const where = `s3://${this.bucketName}/${prefix}`;
    const expected = manifest.files[name];
    if (!expected) throw new SnapshotIntegrityError(`${where}: the manifest lists no ${name}`);
    const path = join(directory, name);
    const actual = await this.downloadRanged(`${prefix}${name}`, size ?? expected.bytes, path, options);
    if (actual.bytes !== expected.bytes || actual.sha256 !== expected.sha256) {
      throw new SnapshotIntegrityError(
        `${where}: checksum mismatch for ${name} (expected ${expected.bytes} bytes sha256 ${expected.sha256.slice(0, 12)}…, downloaded ${actual.bytes} bytes ${actual.sha256.slice(0, 12)}…)`,
      );
    }
    return path;
  }

  /**
   * Download one object with parallel ranged GETs into `path`, and return its size and sha256.
   * Ranges finish out of order; each is hashed once every range before it has been, and a range
   * is not requested more than 2 × `concurrency` ranges ahead of the hash, which bounds the bytes
   * held waiting to be hashed.
   */
  async downloadRanged(
    key: string,
    size: number | undefined,
    path: string,
    options: DownloadOptions = {},
  ): Promise<{ bytes: number; sha256: string }> {
    const bytes =
      size ??
      (await this.s3.send(new HeadObjectCommand({ Bucket: this.bucketName, Key: key }))).ContentLength ??
      0;
    const partBytes = options.partBytes ?? 8 * 1024 * 1024;
    const concurrency = options.concurrency ?? 8;
    const hash = createHash('sha256');
    const partial = `${path}.partial`;
    const handle = await open(partial, 'w');
    try {
      if (bytes > 0) await handle.truncate(bytes);
      const ranges: Array<[number, number]> = [];
      for (let start = 0; start < bytes; start += partBytes)
        ranges.push([start, Math.min(start + partBytes, bytes) - 1]);
      const unhashed = new Map<number, Uint8Array>();
      let hashedRanges = 0;
      let waiting: Array<() => void> = [];
      let next = 0;
      const worker = async () => {
        while (next < ranges.length) {
          const index = next++;
          while (index >= hashedRanges + 2 * concurrency)
            await new Promise<void>((wake) => waiting.push(wake));
          const [start, end] = ranges[index] as [number, number];
          const response = await this.s3.send(
            new GetObjectCommand({ Bucket: this.bucketName, Key: key, Range: `bytes=${start}-${end}` }),
          );
          const body = await (
            response.Body as { transformToByteArray(): Promise<Uint8Array> }
          ).transformToByteArray();
          if (body.length !== end - start + 1)
            throw new Error(`ranged GET of ${key} bytes ${start}-${end} returned ${body.length} bytes`);
          await handle.write(body, 0, body.length, start);
          unhashed.set(index, body);
          for (let part = unhashed.get(hashedRanges); part; part = unhashed.get(hashedRanges)) {
            hash.update(part);
            unhashed.delete(hashedRanges);
            hashedRanges += 1;
          }
          for (const wake of waiting) wake();
          waiting = [];
        }
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(ranges.length, 1)) }, worker));
    } finally {
      await handle.close();
    }
    await rename(partial, path);
    return { bytes, sha256: hash.digest('hex') };
  }

  /** Versions present under `indexes/`, oldest first (version ids sort by build time). */
  async listVersions(): Promise<string[]> {
    const versions = new Set<string>();
    for (const object of await this.list(INDEXES_PREFIX)) {
      const version = object.key.slice(INDEXES_PREFIX.length).split('/')[0];
      if (version) versions.add(version);
    }
    return [...versions].sort();
  }

  /** Delete every object under a prefix. */
  async deletePrefix(prefix: string): Promise<number> {
    const objects = await this.list(prefix);
    for (let start = 0; start < objects.length; start += 1_000) {
      await this.s3.send(
        new DeleteObjectsCommand({
          Bucket: this.bucketName,
          Delete: {
            Objects: objects.slice(start, start + 1_000).map((object) => ({ Key: object.key })),
            Quiet: true,
          },
        }),
      );
    }
    return objects.length;
  }

  async putText(key: string, body: string): Promise<void> {
    await this.s3.send(new PutObjectCommand({ Bucket: this.bucketName, Key: key, Body: body }));
  }

  /** Upload a local file (multipart when large). */
  async putFile(key: string, path: string): Promise<void> {
    const handle = await open(path);
    try {
      await new Upload({
        client: this.s3,
        params: { Bucket: this.bucketName, Key: key, Body: handle.createReadStream() },
      }).done();
    } finally {
      await handle.close();
    }
  }

  /**
   * Upload what `produce` writes, streamed as a multipart upload: nothing is staged on local disk,
   * so an export of any size needs no `/tmp`. A failure of `produce` aborts the upload.
   */
  async putStream(key: string, produce: (out: PassThrough) => Promise<void>): Promise<void> {
    const body = new PassThrough({ highWaterMark: 8 * 1024 * 1024 });
    const upload = new Upload({ client: this.s3, params: { Bucket: this.bucketName, Key: key, Body: body } });
    const uploaded = upload.done();
    try {
      await produce(body);
      body.end();
    } catch (error) {
      body.destroy(error as Error);
      await upload.abort().catch(() => {});
      await uploaded.catch(() => {});
      throw error;
    }
    await uploaded;
  }

  /** The lines of a UTF-8 text object, streamed from S3 (nothing staged on disk); empty lines skipped. */
  async *readLines(key: string): AsyncGenerator<string> {
    const response = await this.s3.send(new GetObjectCommand({ Bucket: this.bucketName, Key: key }));
    const lines = createInterface({ input: response.Body as Readable, crlfDelay: Number.POSITIVE_INFINITY });
    for await (const line of lines) if (line) yield line;
  }

  /** The bytes of an object, streamed from S3 in the pieces the response delivers (nothing on disk). */
  async *readBytes(key: string): AsyncGenerator<Buffer> {
    const response = await this.s3.send(new GetObjectCommand({ Bucket: this.bucketName, Key: key }));
    for await (const piece of response.Body as Readable) yield piece as Buffer;
  }

  /** Download a whole object to a local file. */
  async getFile(key: string, path: string): Promise<void> {
    await this.downloadRanged(key, undefined, path);
  }

  /** A small object's body as UTF-8 text. */
  async getText(key: string): Promise<string> {
    const response = await this.s3.send(new GetObjectCommand({ Bucket: this.bucketName, Key: key }));
    return (response.Body as { transformToString(): Promise<string> }).transformToString();
  }

  private list(prefix: string): Promise<Array<{ key: string; size: number }>> {
    return listObjects(this.s3, this.bucketName, prefix);
  }
}
