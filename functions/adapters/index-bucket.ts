import { mkdir, open, readdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { MANIFEST_FILE } from '../core/snapshot-manifest.js';
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
   * `partBytes` ranges written at their offsets). Files land under temporary names and are renamed
   * when complete; the caller verifies checksums by opening the snapshot.
   */
  async downloadSnapshot(prefix: string, directory: string, options: DownloadOptions = {}): Promise<void> {
    await mkdir(directory, { recursive: true });
    const listed = await this.list(prefix);
    if (!listed.some((object) => object.key === `${prefix}${MANIFEST_FILE}`)) {
      throw new Error(`s3://${this.bucketName}/${prefix} has no ${MANIFEST_FILE}; not a complete snapshot`);
    }
    for (const object of listed) {
      const name = object.key.slice(prefix.length);
      if (!name || name.includes('/')) continue;
      await this.downloadRanged(object.key, object.size, join(directory, name), options);
    }
  }

  /** Download one object with parallel ranged GETs into `path`. */
  async downloadRanged(
    key: string,
    size: number | undefined,
    path: string,
    options: DownloadOptions = {},
  ): Promise<void> {
    const bytes =
      size ??
      (await this.s3.send(new HeadObjectCommand({ Bucket: this.bucketName, Key: key }))).ContentLength ??
      0;
    const partBytes = options.partBytes ?? 8 * 1024 * 1024;
    const concurrency = options.concurrency ?? 8;
    const partial = `${path}.partial`;
    const handle = await open(partial, 'w');
    try {
      if (bytes > 0) await handle.truncate(bytes);
      const ranges: Array<[number, number]> = [];
      for (let start = 0; start < bytes; start += partBytes)
        ranges.push([start, Math.min(start + partBytes, bytes) - 1]);
      let next = 0;
      const worker = async () => {
        while (next < ranges.length) {
          const [start, end] = ranges[next++] as [number, number];
          const response = await this.s3.send(
            new GetObjectCommand({ Bucket: this.bucketName, Key: key, Range: `bytes=${start}-${end}` }),
          );
          const body = await (
            response.Body as { transformToByteArray(): Promise<Uint8Array> }
          ).transformToByteArray();
          if (body.length !== end - start + 1)
            throw new Error(`ranged GET of ${key} bytes ${start}-${end} returned ${body.length} bytes`);
          await handle.write(body, 0, body.length, start);
        }
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(ranges.length, 1)) }, worker));
    } finally {
      await handle.close();
    }
    await rename(partial, path);
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

  /** Download a whole object to a local file. */
  async getFile(key: string, path: string): Promise<void> {
    await this.downloadRanged(key, undefined, path);
  }

  private list(prefix: string): Promise<Array<{ key: string; size: number }>> {
    return listObjects(this.s3, this.bucketName, prefix);
  }
}
