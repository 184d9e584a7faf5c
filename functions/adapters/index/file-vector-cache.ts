import { appendFileSync, existsSync, mkdirSync, readFileSync, truncateSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { EmbeddingSpace } from '../../core/embedding-space.js';
import type { VectorCache } from '../../core/indexing.js';

/**
 * An append-only file of (content hash, vector) records for one embedding space, so rebuilding an
 * index or re-running an evaluation never re-embeds unchanged chunks. Record: 32 bytes of sha256
 * then `dimensions` little-endian float32. A torn last record (crash mid-append) is cut off on open so later appends stay aligned.
 */
export class FileVectorCache implements VectorCache {
  private readonly vectors = new Map<string, Float32Array>();
  private readonly recordBytes: number;

  private constructor(
    readonly path: string,
    private readonly dimensions: number,
  ) {
    this.recordBytes = 32 + dimensions * 4;
    if (!existsSync(path)) return;
    const data = readFileSync(path);
    for (let offset = 0; offset + this.recordBytes <= data.length; offset += this.recordBytes) {
      const hash = data.toString('hex', offset, offset + 32);
      const vector = new Float32Array(dimensions);
      for (let i = 0; i < dimensions; i += 1) vector[i] = data.readFloatLE(offset + 32 + i * 4);
      this.vectors.set(hash, vector);
    }
    if (data.length % this.recordBytes !== 0)
      truncateSync(path, data.length - (data.length % this.recordBytes));
  }

  /** The cache file for `space` under `directory` (one file per model id and dimension count). */
  static open(directory: string, space: EmbeddingSpace): FileVectorCache {
    const name = `${space.modelId.replace(/[^A-Za-z0-9._-]+/g, '_')}-${space.dimensions}d-${space.pooling}.vectors`;
    const path = join(directory, name);
    mkdirSync(dirname(path), { recursive: true });
    return new FileVectorCache(path, space.dimensions);
  }

  get size(): number {
    return this.vectors.size;
  }

  get(contentHash: string): Float32Array | undefined {
    return this.vectors.get(contentHash);
  }

  set(contentHash: string, vector: Float32Array): void {
    if (this.vectors.has(contentHash) || vector.length !== this.dimensions) return;
    this.vectors.set(contentHash, vector);
    const record = Buffer.alloc(this.recordBytes);
    record.write(contentHash, 0, 'hex');
    for (let i = 0; i < this.dimensions; i += 1) record.writeFloatLE(vector[i] as number, 32 + i * 4);
    appendFileSync(this.path, record);
  }
}
