import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { BisearchError } from '../../core/errors.js';
import { listObjects } from './s3-objects.js';

/** Prefix under which uploads are ingested; the stack's S3 notifications filter on it. */
export const DOCUMENTS_PREFIX = 'docs/';

/** Largest object the encoder reads (bytes). Larger uploads fail as a document error. Default 20 MB. */
export const MAX_DOCUMENT_BYTES = 20 * 1024 * 1024;

/** An upload above the size limit; carries its ETag so the upload still counts as processed. */
export class DocumentTooLargeError extends BisearchError {
  constructor(
    key: string,
    bytes: number,
    limit: number,
    /** ETag of the refused object version. */
    readonly etag: string,
  ) {
    super('DOCUMENT_TOO_LARGE', 413, `${key} is ${bytes} bytes; the limit is ${limit}`);
  }
}

/** The documents bucket: users (or `PUT /documents/{id}`) write here; the encoder reads. */
export class DocumentBucket {
  constructor(
    private readonly s3: S3Client,
    readonly bucketName: string,
  ) {}

  /**
   * Key of an API-written document: `docs/<id>.json`, the id as it is (S3 keys are UTF-8; ids
   * may contain `/`, kept as folders). The id rules (`core/document-ids.ts`) keep it a safe key.
   */
  static keyForDocumentId(docId: string): string {
    return `${DOCUMENTS_PREFIX}${docId}.json`;
  }

  /** ETag of the object's current version, or undefined when there is none. */
  async head(key: string): Promise<string | undefined> {
    try {
      return (await this.s3.send(new HeadObjectCommand({ Bucket: this.bucketName, Key: key }))).ETag ?? '';
    } catch (error) {
      const name = (error as Error).name;
      if (name === 'NoSuchKey' || name === 'NotFound') return undefined;
      throw error;
    }
  }

  /**
   * Read an object, its ETag and its user metadata (`x-amz-meta-*`, keys lower case), refusing
   * ones larger than `maxBytes`. Undefined when it no longer exists.
   */
  async read(
    key: string,
    maxBytes = MAX_DOCUMENT_BYTES,
  ): Promise<{ bytes: Uint8Array; etag: string; metadata: Record<string, string> } | undefined> {
    try {
      const head = await this.s3.send(new HeadObjectCommand({ Bucket: this.bucketName, Key: key }));
      if ((head.ContentLength ?? 0) > maxBytes) {
        throw new DocumentTooLargeError(key, head.ContentLength ?? 0, maxBytes, head.ETag ?? '');
      }
      const object = await this.s3.send(new GetObjectCommand({ Bucket: this.bucketName, Key: key }));
      return {
        bytes: object.Body ? await object.Body.transformToByteArray() : new Uint8Array(),
        etag: object.ETag ?? '',
        metadata: object.Metadata ?? {},
      };
    } catch (error) {
      const name = (error as Error).name;
      if (name === 'NoSuchKey' || name === 'NotFound') return undefined;
      throw error;
    }
  }

  /** Store a document as JSON (`id`, `title`, `text`, `metadata`) for the normal ingest path. */
  async putDocument(document: {
    id: string;
    title?: string;
    text: string;
    metadata?: Record<string, unknown>;
  }): Promise<string> {
    const key = DocumentBucket.keyForDocumentId(document.id);
    await this.s3.send(
      new PutObjectCommand({
        Bucket: this.bucketName,
        Key: key,
        Body: JSON.stringify(document),
        ContentType: 'application/json',
      }),
    );
    return key;
  }

  /** Keys and ETags of every object under `prefix`. */
  async list(prefix = DOCUMENTS_PREFIX): Promise<Array<{ key: string; etag: string }>> {
    return (await listObjects(this.s3, this.bucketName, prefix)).map(({ key, etag }) => ({ key, etag }));
  }

  async delete(key: string): Promise<void> {
    await this.s3.send(new DeleteObjectCommand({ Bucket: this.bucketName, Key: key }));
  }
}
