import { stemmer } from 'stemmer';
import { eng as englishStopWords } from 'stopword';

/**
 * BM25 parameters. Defaults are Anserini's (k1 = 0.9, b = 0.4), the settings behind the published
 * BEIR BM25 baselines; `d` is BM25+'s lower bound, 0 for classic BM25.
 */
export interface Bm25Parameters {
  readonly k1: number;
  readonly b: number;
  readonly d: number;
}

export const DEFAULT_BM25: Bm25Parameters = { k1: 0.9, b: 0.4, d: 0 };

/** A chunk as the lexical index sees it. */
export interface LexicalEntry {
  readonly chunkId: string;
  /** Title and text; the title is indexed with the text as one field (Anserini's "flat" BEIR setting). */
  readonly text: string;
}

/** A lexical match: the chunk and its BM25 score. */
export interface LexicalHit {
  readonly chunkId: string;
  readonly score: number;
  /** Row in the frozen segment (= the snapshot row), for hits that are not from the mutable part. */
  readonly row?: number;
}

const STOP_WORDS = new Set(englishStopWords);

/**
 * English analyser: lower case, split on anything that is not a letter or digit, drop stop words
 * (the `stopword` package's English list), Porter-stem (the `stemmer` package). The same function
 * runs at index and query time.
 */
export function analyzeEnglish(text: string): string[] {
  const terms: string[] = [];
  for (const token of text.toLowerCase().split(/[^\p{L}\p{N}]+/u)) {
    if (!token || STOP_WORDS.has(token)) continue;
    terms.push(stemmer(token));
  }
  return terms;
}

/**
 * Where the query's terms occur in `text`, for highlighting: `[start, end)` offsets (JavaScript
 * string indices, i.e. UTF-16 code units) of every word whose analysed form (lower case, not a stop
 * word, Porter stem) is one of the query's, in order, at most `limit`. "Resetting" is found for
 * the query "reset", as BM25 matched it. `query` may be given as its analysed terms (a set), to
 * analyse a query once for many texts.
 */
export function termHighlights(
  text: string,
  query: string | ReadonlySet<string>,
  limit = 100,
): Array<[number, number]> {
  const wanted = typeof query === 'string' ? new Set(analyzeEnglish(query)) : query;
  const spans: Array<[number, number]> = [];
  if (wanted.size === 0) return spans;
  for (const match of text.matchAll(/[\p{L}\p{N}]+/gu)) {
    const token = match[0].toLowerCase();
    if (STOP_WORDS.has(token) || !wanted.has(stemmer(token))) continue;
    spans.push([match.index, match.index + match[0].length]);
    if (spans.length >= limit) break;
  }
  return spans;
}

function termFrequencies(text: string): { frequencies: Map<string, number>; length: number } {
  const terms = analyzeEnglish(text);
  const frequencies = new Map<string, number>();
  for (const term of terms) frequencies.set(term, (frequencies.get(term) ?? 0) + 1);
  return { frequencies, length: terms.length };
}

const SEGMENT_MAGIC = 'BM25SEG1';
/** Term frequencies are stored as u16; a term repeated more often in one chunk saturates BM25 long before. */
const MAX_STORED_FREQUENCY = 0xffff;

/**
 * An immutable inverted index over rows 0…n−1 (a snapshot's chunk rows), in flat typed arrays:
 * postings of term `t` are `rows[offsets[t]…offsets[t+1])` with `frequencies` alongside. Built
 * once per snapshot, stored as one binary file, loaded without parsing postings.
 *
 * File layout (little-endian, sections 4-byte aligned): magic `BM25SEG1`; u32 rows, terms,
 * postings, vocabulary bytes; f64 total length, k1, b, d; vocabulary (terms joined by `\n`,
 * UTF-8); u32 offsets[terms + 1]; u32 rows[postings]; u32 lengths[rows]; u16 frequencies[postings].
 */
export class LexicalSegment {
  private readonly termIds: Map<string, number>;

  private constructor(
    readonly bm25: Bm25Parameters,
    /** Rows indexed. */
    readonly rowCount: number,
    /** Sum of row lengths in analysed terms (for the average length of BM25). */
    readonly totalLength: number,
    /** Terms in id order (id = position). */
    vocabulary: readonly string[],
    private readonly offsets: Uint32Array,
    private readonly rows: Uint32Array,
    private readonly frequencies: Uint16Array,
    private readonly lengths: Uint32Array,
  ) {
    this.termIds = new Map(vocabulary.map((term, id) => [term, id]));
  }

  /** Index `texts`; the row of a text is its position. */
  static build(texts: readonly string[], bm25: Bm25Parameters = DEFAULT_BM25): LexicalSegment {
    const builder = new LexicalSegmentBuilder();
    for (const text of texts) builder.add(text);
    return builder.finish(bm25);
  }

  /** @internal Assemble a segment from the postings a {@link LexicalSegmentBuilder} gathered. */
  static fromPostings(
    postingsByTerm: ReadonlyMap<string, number[]>,
    lengths: Uint32Array,
    totalLength: number,
    bm25: Bm25Parameters,
  ): LexicalSegment {
    const vocabulary = [...postingsByTerm.keys()].sort();
    const offsets = new Uint32Array(vocabulary.length + 1);
    let postingCount = 0;
    vocabulary.forEach((term, id) => {
      offsets[id] = postingCount;
      postingCount += (postingsByTerm.get(term) as number[]).length / 2;
    });
    offsets[vocabulary.length] = postingCount;
    const rows = new Uint32Array(postingCount);
    const frequencies = new Uint16Array(postingCount);
    vocabulary.forEach((term, id) => {
      const postings = postingsByTerm.get(term) as number[];
      const start = offsets[id] as number;
      for (let i = 0; i < postings.length; i += 2) {
        rows[start + i / 2] = postings[i] as number;
        frequencies[start + i / 2] = postings[i + 1] as number;
      }
    });
    return new LexicalSegment(
      bm25,
      lengths.length,
      totalLength,
      vocabulary,
      offsets,
      rows,
      frequencies,
      lengths,
    );
  }

  /** Read a segment written by {@link LexicalSegment.toBytes}; throws on a malformed file. */
  static fromBytes(bytes: Uint8Array): LexicalSegment {
    // Typed-array views need aligned offsets; a Buffer from Node's pool may start anywhere.
    const data = bytes.byteOffset % 8 === 0 ? bytes : Uint8Array.from(bytes);
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const fail = (why: string): never => {
      throw new RangeError(`not a bisearch BM25 segment: ${why}`);
    };
    if (data.byteLength < 56 || new TextDecoder().decode(data.subarray(0, 8)) !== SEGMENT_MAGIC)
      fail('bad magic');
    const rowCount = view.getUint32(8, true);
    const termCount = view.getUint32(12, true);
    const postingCount = view.getUint32(16, true);
    const vocabularyBytes = view.getUint32(20, true);
    const totalLength = view.getFloat64(24, true);
    const bm25 = {
      k1: view.getFloat64(32, true),
      b: view.getFloat64(40, true),
      d: view.getFloat64(48, true),
    };
    let offset = 56;
    const vocabularyText = new TextDecoder().decode(data.subarray(offset, offset + vocabularyBytes));
    offset = align4(offset + vocabularyBytes);
    const expected = offset + 4 * (termCount + 1 + postingCount + rowCount) + 2 * postingCount;
    if (expected > data.byteLength) fail(`expected ${expected} bytes, found ${data.byteLength}`);
    const take32 = (count: number) => {
      const array = new Uint32Array(data.buffer, data.byteOffset + offset, count);
      offset += 4 * count;
      return array;
    };
    const offsets = take32(termCount + 1);
    const rows = take32(postingCount);
    const lengths = take32(rowCount);
    const frequencies = new Uint16Array(data.buffer, data.byteOffset + offset, postingCount);
    const vocabulary = termCount === 0 ? [] : vocabularyText.split('\n');
    if (vocabulary.length !== termCount) fail(`${vocabulary.length} terms, header says ${termCount}`);
    return new LexicalSegment(bm25, rowCount, totalLength, vocabulary, offsets, rows, frequencies, lengths);
  }

  /** The binary file form (see the class comment for the layout). */
  toBytes(): Uint8Array {
    const vocabulary = new TextEncoder().encode([...this.termIds.keys()].join('\n'));
    const termCount = this.termIds.size;
    const postingCount = this.rows.length;
    const sectionsStart = align4(56 + vocabulary.byteLength);
    const total = sectionsStart + 4 * (termCount + 1 + postingCount + this.rowCount) + 2 * postingCount;
    const bytes = new Uint8Array(total);
    const view = new DataView(bytes.buffer);
    bytes.set(new TextEncoder().encode(SEGMENT_MAGIC), 0);
    view.setUint32(8, this.rowCount, true);
    view.setUint32(12, termCount, true);
    view.setUint32(16, postingCount, true);
    view.setUint32(20, vocabulary.byteLength, true);
    view.setFloat64(24, this.totalLength, true);
    view.setFloat64(32, this.bm25.k1, true);
    view.setFloat64(40, this.bm25.b, true);
    view.setFloat64(48, this.bm25.d, true);
    bytes.set(vocabulary, 56);
    let offset = sectionsStart;
    for (const array of [this.offsets, this.rows, this.lengths, this.frequencies]) {
      bytes.set(new Uint8Array(array.buffer, array.byteOffset, array.byteLength), offset);
      offset += array.byteLength;
    }
    return bytes;
  }

  /** Rows containing `term` (document frequency). */
  documentFrequency(term: string): number {
    const id = this.termIds.get(term);
    return id === undefined ? 0 : (this.offsets[id + 1] as number) - (this.offsets[id] as number);
  }

  /**
   * Add `weight × BM25 term score` of every posting of `term` into `scores` (indexed by row), and
   * append rows scored for the first time to `touched` from `touchedCount` on; returns the new
   * count. `lengthNorms[row]` is BM25's `k1 × (1 − b + b × length / average length)`.
   */
  accumulate(
    term: string,
    weight: number,
    scores: Float64Array,
    touched: Uint32Array,
    touchedCount: number,
    lengthNorms: Float64Array,
  ): number {
    const id = this.termIds.get(term);
    if (id === undefined) return touchedCount;
    let count = touchedCount;
    const { rows, frequencies } = this;
    const { k1, d } = this.bm25;
    const end = this.offsets[id + 1] as number;
    // The hot loop of lexical search (tens of thousands of postings per query at 100k chunks):
    // typed arrays only, no calls; `touched` is a typed buffer because Array.push here cost 10×
    // the whole loop (measured: 2.3 ms against 0.2 ms for 29k postings).
    for (let p = this.offsets[id] as number; p < end; p += 1) {
      const row = rows[p] as number;
      const frequency = frequencies[p] as number;
      const previous = scores[row] as number;
      if (previous === 0) {
        touched[count] = row;
        count += 1;
      }
      scores[row] =
        previous + weight * (d + (frequency * (k1 + 1)) / (frequency + (lengthNorms[row] as number)));
    }
    return count;
  }

  /** BM25's per-row length normalisation `k1 × (1 − b + b × length / averageLength)`. */
  lengthNorms(averageLength: number): Float64Array {
    const { k1, b } = this.bm25;
    const norms = new Float64Array(this.rowCount);
    for (let row = 0; row < this.rowCount; row += 1)
      norms[row] = k1 * (1 - b + (b * (this.lengths[row] as number)) / averageLength);
    return norms;
  }
}

function align4(offset: number): number {
  return (offset + 3) & ~3;
}

/** Per-index buffers over segment rows, reused by every search. */
interface ScratchBuffers {
  /** Score accumulator by row; all zero between searches. */
  readonly scores: Float64Array;
  /** Rows touched by the current search, then the rows kept. */
  readonly touched: Uint32Array;
  /** Scores of the kept rows, aligned with `touched`. */
  readonly values: Float64Array;
  /** Copy of `values` reordered by the selection. */
  readonly selection: Float64Array;
}

/**
 * The `k`-th largest of `values[0…count)` (1-based `k ≤ count`), by quickselect; reorders `values`
 * so that the `k` largest come first (in no particular order).
 */
export function kthLargest(values: Float64Array, count: number, k: number): number {
  let low = 0;
  let high = count - 1;
  const target = k - 1;
  while (low < high) {
    const pivot = values[(low + high) >>> 1] as number;
    let i = low;
    let j = high;
    while (i <= j) {
      while ((values[i] as number) > pivot) i += 1;
      while ((values[j] as number) < pivot) j -= 1;
      if (i <= j) {
        const swap = values[i] as number;
        values[i] = values[j] as number;
        values[j] = swap;
        i += 1;
        j -= 1;
      }
    }
    if (target <= j) high = j;
    else if (target >= i) low = i;
    else break;
  }
  return values[target] as number;
}

/** How a lexical index names the rows of its frozen segment (the snapshot's chunk rows). */
export interface SegmentRows {
  chunkIdOf(row: number): string;
  rowOf(chunkId: string): number | undefined;
}

/**
 * A BM25 index over chunks: an optional immutable {@link LexicalSegment} (the snapshot's chunks)
 * plus a small mutable part (the delta's chunks), searched as one corpus.
 *
 * Scores are classic BM25 summed over query terms (a repeated query term counts again, as in
 * Lucene). Statistics (document count, document frequencies, average length) cover both parts.
 * A removed segment row is only hidden: like Lucene's deleted documents, it stays in the
 * statistics until the next snapshot rebuilds the segment, which keeps removal O(1) without a
 * forward index of every row.
 *
 * Why not a library: MiniSearch, used before, answered SciFact queries over 100k chunks in
 * 118 ms p50 / 437 ms p99 (it builds a result object per matching chunk); flat postings with a
 * score accumulator keep BM25 inside the 2 ms query budget (test/bench/RESULTS.md).
 */
/** Most distinct query terms BM25 scores; a longer query keeps its rarest (highest-IDF) terms. */
export const MAX_QUERY_TERMS = 256;

export class LexicalIndex {
  private readonly removedRows: Uint8Array;
  private removedRowCount = 0;
  /** Mutable part: term → (chunk id → frequency), and each chunk's frequencies for removal. */
  private readonly postings = new Map<string, Map<string, number>>();
  private readonly mutableChunks = new Map<string, { frequencies: Map<string, number>; length: number }>();
  private mutableLength = 0;
  /**
   * Reused score accumulator over segment rows and the list of rows it touched (searches run one
   * at a time on the event loop; every touched score is reset to 0 before a search returns).
   */
  private scratchBuffers: ScratchBuffers | undefined;
  private cachedNorms: { averageLength: number; norms: Float64Array } | undefined;

  private constructor(
    readonly bm25: Bm25Parameters,
    private readonly segment: LexicalSegment | undefined,
    private readonly segmentRows: SegmentRows | undefined,
  ) {
    this.removedRows = new Uint8Array(segment?.rowCount ?? 0);
  }

  /** An empty index. */
  static create(bm25: Bm25Parameters = DEFAULT_BM25): LexicalIndex {
    return new LexicalIndex(bm25, undefined, undefined);
  }

  /**
   * An index whose frozen part is `segment` (shared, never modified), with nothing removed.
   * @param rows names the segment's rows; it must cover every row of the segment.
   */
  static over(segment: LexicalSegment, rows: SegmentRows): LexicalIndex {
    return new LexicalIndex(segment.bm25, segment, rows);
  }

  /** Number of chunks indexed (removed segment rows excluded). */
  get size(): number {
    return (this.segment?.rowCount ?? 0) - this.removedRowCount + this.mutableChunks.size;
  }

  has(chunkId: string): boolean {
    if (this.mutableChunks.has(chunkId)) return true;
    const row = this.segmentRowOf(chunkId);
    return row !== undefined && this.removedRows[row] === 0;
  }

  /** Add chunks; a chunk id already present is replaced. */
  addAll(entries: Iterable<LexicalEntry>): void {
    for (const entry of entries) {
      this.remove(entry.chunkId);
      const analysed = termFrequencies(entry.text);
      this.mutableChunks.set(entry.chunkId, analysed);
      this.mutableLength += analysed.length;
      for (const [term, frequency] of analysed.frequencies) {
        let chunks = this.postings.get(term);
        if (!chunks) {
          chunks = new Map();
          this.postings.set(term, chunks);
        }
        chunks.set(entry.chunkId, frequency);
      }
    }
  }

  /** Remove a chunk if present. */
  remove(chunkId: string): void {
    const mutable = this.mutableChunks.get(chunkId);
    if (mutable) {
      this.mutableChunks.delete(chunkId);
      this.mutableLength -= mutable.length;
      for (const term of mutable.frequencies.keys()) {
        const chunks = this.postings.get(term);
        chunks?.delete(chunkId);
        if (chunks?.size === 0) this.postings.delete(term);
      }
      return;
    }
    const row = this.segmentRowOf(chunkId);
    if (row !== undefined && this.removedRows[row] === 0) {
      this.removedRows[row] = 1;
      this.removedRowCount += 1;
    }
  }

  /**
   * The `limit` best chunks by BM25, best first (ties by chunk id).
   * @param accept optional predicate on chunk ids (filters, tombstones), applied before the limit.
   */
  search(query: string, limit: number, accept?: (chunkId: string) => boolean): LexicalHit[] {
    return this.rank(query, limit, limit, accept).hits;
  }

  /**
   * The `limit` best chunks, and the score of the `floorRank`-th best match (the lowest match when
   * there are fewer; NaN when none): what min–max fusion of a `floorRank`-long list needs, without
   * materialising that list.
   * @param accept as in {@link LexicalIndex.search}.
   * @param acceptRow when given, tests the snapshot segment's rows instead of `accept` (which then
   * applies to the delta's chunks only).
   */
  rank(
    query: string,
    limit: number,
    floorRank: number,
    accept?: (chunkId: string) => boolean,
    acceptRow?: (row: number) => boolean,
  ): { hits: LexicalHit[]; floorScore: number } {
    const none = { hits: [], floorScore: Number.NaN };
    if (limit <= 0) return none;
    const segment = this.segment;
    // Statistics over both parts (removed segment rows included, see the class comment).
    const documentCount = (segment?.rowCount ?? 0) + this.mutableChunks.size;
    if (documentCount === 0) return none;
    const averageLength = ((segment?.totalLength ?? 0) + this.mutableLength) / documentCount || 1;
    const { k1, b, d } = this.bm25;
    const termScore = (frequency: number, length: number) =>
      d + (frequency * (k1 + 1)) / (frequency + k1 * (1 - b + (b * length) / averageLength));

    const weights = new Map<string, number>();
    for (const term of analyzeEnglish(query)) weights.set(term, (weights.get(term) ?? 0) + 1);
    const frequencyOf = (term: string) =>
      (segment?.documentFrequency(term) ?? 0) + (this.postings.get(term)?.size ?? 0);
    if (weights.size > MAX_QUERY_TERMS) {
      // A long query (a pasted page) scores its rarest terms: they carry what common ones do not,
      // and the cost of a search grows with the terms it scores. Ties keep the query's order.
      const kept = [...weights.keys()]
        .map((term, order) => ({ term, order, frequency: frequencyOf(term) }))
        .filter((entry) => entry.frequency > 0)
        .sort((a, b) => a.frequency - b.frequency || a.order - b.order)
        .slice(0, MAX_QUERY_TERMS);
      const keep = new Set(kept.map((entry) => entry.term));
      for (const term of [...weights.keys()]) if (!keep.has(term)) weights.delete(term);
    }

    const mutableScores = new Map<string, number>();
    const scratch = segment ? this.scratch(segment.rowCount) : undefined;
    let touchedCount = 0;
    for (const [term, weight] of weights) {
      const frequency = frequencyOf(term);
      if (frequency === 0) continue;
      const idf = Math.log(1 + (documentCount - frequency + 0.5) / (frequency + 0.5));
      if (segment && scratch)
        touchedCount = segment.accumulate(
          term,
          weight * idf,
          scratch.scores,
          scratch.touched,
          touchedCount,
          this.norms(segment, averageLength),
        );
      for (const [chunkId, termFrequency] of this.postings.get(term) ?? []) {
        const length = this.mutableChunks.get(chunkId)?.length ?? 0;
        mutableScores.set(
          chunkId,
          (mutableScores.get(chunkId) ?? 0) + weight * idf * termScore(termFrequency, length),
        );
      }
    }

    const hits: LexicalHit[] = [];
    for (const [chunkId, score] of mutableScores)
      if (!accept || accept(chunkId)) hits.push({ chunkId, score });
    let floorScore = Number.NaN;
    if (!scratch || !this.segmentRows) {
      if (hits.length > 0) {
        const pool = Float64Array.from(hits, (hit) => hit.score);
        floorScore = kthLargest(pool, pool.length, Math.min(floorRank, pool.length));
      }
    } else {
      const { scores, touched, values, selection } = scratch;
      // Compact the touched rows that may be returned (in place) with their scores, resetting the
      // accumulator as we go.
      let kept = 0;
      for (let i = 0; i < touchedCount; i += 1) {
        const row = touched[i] as number;
        const score = scores[row] as number;
        scores[row] = 0;
        if (this.removedRows[row] === 1) continue;
        // A row predicate (the metadata index) tests a segment row without reading its record.
        if (acceptRow ? !acceptRow(row) : accept && !accept(this.segmentRows.chunkIdOf(row))) continue;
        touched[kept] = row;
        values[kept] = score;
        kept += 1;
      }
      // Keep rows scoring at least the limit-th best score: a linear-time selection instead of a
      // heap, which cost more than scoring itself at a limit of 1,000. The delta's scores join the
      // pool so that both ranks count every match.
      const total = kept + hits.length;
      const pool = total <= selection.length ? selection : new Float64Array(total);
      pool.set(values.subarray(0, kept));
      hits.forEach((hit, index) => {
        pool[kept + index] = hit.score;
      });
      const floorCount = Math.min(floorRank, total);
      if (total > 0) floorScore = kthLargest(pool, total, floorCount);
      // The first selection left the floorCount largest in front, so the limit-th is found among
      // them when limit ≤ floorCount (100k chunks: 0.70 → 0.59 ms per query).
      const threshold =
        total <= limit
          ? Number.NEGATIVE_INFINITY
          : kthLargest(pool, limit <= floorCount ? floorCount : total, limit);
      for (let i = 0; i < kept; i += 1) {
        const score = values[i] as number;
        if (score >= threshold) {
          const row = touched[i] as number;
          hits.push({ chunkId: this.segmentRows.chunkIdOf(row), score, row });
        }
      }
    }
    hits.sort((x, y) => y.score - x.score || (x.chunkId < y.chunkId ? -1 : x.chunkId > y.chunkId ? 1 : 0));
    return { hits: hits.slice(0, limit), floorScore };
  }

  private segmentRowOf(chunkId: string): number | undefined {
    const row = this.segmentRows?.rowOf(chunkId);
    return row !== undefined && row < this.removedRows.length ? row : undefined;
  }

  /** Length norms of the segment's rows for the current average length (recomputed when the delta changes it). */
  private norms(segment: LexicalSegment, averageLength: number): Float64Array {
    if (!this.cachedNorms || this.cachedNorms.averageLength !== averageLength)
      this.cachedNorms = { averageLength, norms: segment.lengthNorms(averageLength) };
    return this.cachedNorms.norms;
  }

  private scratch(rows: number): ScratchBuffers {
    if (!this.scratchBuffers)
      this.scratchBuffers = {
        scores: new Float64Array(rows),
        touched: new Uint32Array(rows),
        values: new Float64Array(rows),
        selection: new Float64Array(rows),
      };
    return this.scratchBuffers;
  }
}

/**
 * Builds a {@link LexicalSegment} one text at a time (row = order of {@link add}), so a snapshot
 * build streams its chunks instead of holding every text: only the postings grow (a few bytes per
 * distinct term of a text).
 */
export class LexicalSegmentBuilder {
  private readonly postingsByTerm = new Map<string, number[]>();
  private lengths = new Uint32Array(1_024);
  private count = 0;
  private totalLength = 0;

  /** Index the next text; returns its row. */
  add(text: string): number {
    const row = this.count;
    if (row === this.lengths.length) {
      const grown = new Uint32Array(this.lengths.length * 2);
      grown.set(this.lengths);
      this.lengths = grown;
    }
    const { frequencies, length } = termFrequencies(text);
    this.lengths[row] = length;
    this.totalLength += length;
    for (const [term, frequency] of frequencies) {
      let postings = this.postingsByTerm.get(term);
      if (!postings) {
        postings = [];
        this.postingsByTerm.set(term, postings);
      }
      // Interleaved (row, frequency) pairs: one array per term instead of two.
      postings.push(row, Math.min(frequency, MAX_STORED_FREQUENCY));
    }
    this.count += 1;
    return row;
  }

  /** The segment over every text added. */
  finish(bm25: Bm25Parameters = DEFAULT_BM25): LexicalSegment {
    return LexicalSegment.fromPostings(
      this.postingsByTerm,
      this.lengths.slice(0, this.count),
      this.totalLength,
      bm25,
    );
  }
}
