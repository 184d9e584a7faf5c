import { stemmer } from 'stemmer';
import { eng as englishStopWords } from 'stopword';
import { type Chunk, documentIdOfChunk } from './chunking.js';
import { RowBitset } from './metadata-index.js';

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
  /** The chunk's id; for a document-level entry, the id of the document's first chunk. */
  readonly chunkId: string;
  /** Title and text, indexed as one field (Anserini's "flat" BEIR setting). */
  readonly text: string;
}

/**
 * What one BM25 entry is. `document` (the default): a document's whole text, title repeated
 * {@link TITLE_REPEATS} times, under the id of its first chunk, with statistics (document count,
 * average length) over documents; long documents stay chunked for dense retrieval only.
 * `chunk`: every chunk (title + window) is its own entry, as before; snapshots written before the
 * unit existed are chunk-level. On SciFact, document-level BM25 scores nDCG@10 0.682 where windows
 * score 0.660 (README "Retrieval quality").
 */
export type LexicalUnit = 'chunk' | 'document';

export const DEFAULT_LEXICAL_UNIT: LexicalUnit = 'document';

/**
 * Times a document's title is indexed in a document-level entry: a title weighted twice, the
 * simplest form of a boosted title field (BM25F with one shared length). On SciFact: 0.6756 with
 * the title once, 0.6820 twice.
 */
export const TITLE_REPEATS = 2;

/**
 * A document's text from its chunks (sorted by ordinal): the windows joined with the overlap that
 * each window repeats from the previous one removed, so that BM25 counts every word once.
 */
export function documentTextOf(chunks: readonly Pick<Chunk, 'text'>[]): string {
  let text = chunks[0]?.text ?? '';
  for (let i = 1; i < chunks.length; i += 1) {
    const previous = (chunks[i - 1] as Pick<Chunk, 'text'>).text;
    const next = (chunks[i] as Pick<Chunk, 'text'>).text;
    const rest = next.slice(overlapLength(previous, next)).trimStart();
    if (rest !== '') text += ` ${rest}`;
  }
  return text;
}

/** Length of the longest suffix of `previous` that starts `next` (the carried-over sentences). */
function overlapLength(previous: string, next: string): number {
  const probe = next.slice(0, 8);
  if (probe === '') return 0;
  for (let at = previous.indexOf(probe, Math.max(0, previous.length - next.length)); at >= 0; ) {
    if (next.startsWith(previous.slice(at))) return previous.length - at;
    at = previous.indexOf(probe, at + 1);
  }
  return 0;
}

/**
 * The lexical entries of some chunks under `unit`: one per chunk, or one per document (its chunks
 * grouped by document id and sorted by ordinal).
 */
export function lexicalEntries(
  chunks: readonly Pick<Chunk, 'chunkId' | 'docId' | 'ordinal' | 'title' | 'text'>[],
  unit: LexicalUnit,
): LexicalEntry[] {
  if (unit === 'chunk')
    return chunks.map((chunk) => ({
      chunkId: chunk.chunkId,
      text: chunk.title ? `${chunk.title} ${chunk.text}` : chunk.text,
    }));
  const byDocument = new Map<string, Pick<Chunk, 'chunkId' | 'ordinal' | 'title' | 'text'>[]>();
  for (const chunk of chunks) {
    const list = byDocument.get(chunk.docId);
    if (list) list.push(chunk);
    else byDocument.set(chunk.docId, [chunk]);
  }
  return [...byDocument.values()].map((list) => {
    const sorted = [...list].sort((a, b) => a.ordinal - b.ordinal);
    const first = sorted[0] as Pick<Chunk, 'chunkId' | 'title'>;
    const title = first.title ? `${first.title} `.repeat(TITLE_REPEATS) : '';
    return { chunkId: first.chunkId, text: `${title}${documentTextOf(sorted)}` };
  });
}

/**
 * Texts of a snapshot's segment rows (chunks in row order, a document's chunks adjacent): per
 * chunk, or the document's entry on its first chunk's row and nothing on its other rows (rows
 * without terms count in no statistic).
 */
export function lexicalRowTexts(
  chunks: readonly Pick<Chunk, 'chunkId' | 'docId' | 'ordinal' | 'title' | 'text'>[],
  unit: LexicalUnit,
): string[] {
  if (unit === 'chunk') return lexicalEntries(chunks, unit).map((entry) => entry.text);
  const texts = new Map(lexicalEntries(chunks, unit).map((entry) => [entry.chunkId, entry.text]));
  return chunks.map((chunk) => texts.get(chunk.chunkId) ?? '');
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
  /** Per term, its largest BM25 term score at the segment's own average length; −1 until first needed. */
  private readonly maxFactors: Float64Array;

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
    this.maxFactors = new Float64Array(vocabulary.length).fill(-1);
    let indexed = 0;
    for (let row = 0; row < rowCount; row += 1) if ((lengths[row] as number) > 0) indexed += 1;
    this.indexedRows = indexed;
  }

  /** Rows holding at least one term: the document count of BM25 (a row without terms is no document). */
  readonly indexedRows: number;

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
   * Add `weight × BM25 term score` of every posting of term `id` into `scores` (indexed by row), and
   * append rows scored for the first time to `touched` from `touchedCount` on; returns the new
   * count. `lengthNorms[row]` is BM25's `k1 × (1 − b + b × length / average length)`.
   */
  accumulate(
    id: number,
    weight: number,
    scores: Float64Array,
    touched: Uint32Array,
    touchedCount: number,
    lengthNorms: Float64Array,
  ): number {
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

  /**
   * Score rows for `terms` (segment term ids with their weights `repetitions × idf`, in the
   * canonical order of {@link canonicalTermOrder}, which every scorer of this index sums in, so
   * that a row's score is the same float whichever way it was reached), leaving each scored row's
   * score in `scratch.scores` and its row in `scratch.touched[0…returned count)`.
   *
   * With `keep` set, MaxScore dynamic pruning (Turtle & Flood): terms are scored one at a time
   * (term-at-a-time, as exhaustively); once the `keep` best eligible partial scores all exceed
   * what the remaining terms can add at most (their {@link LexicalSegment.upperBound}s), no row
   * outside the current candidates can reach the `keep`-th best score, so the remaining terms only
   * add to candidates, looked up by galloping through their (row-sorted) postings; a candidate
   * that can no longer reach the `keep`-th best partial score is dropped. Every row whose final
   * score is at least the `keep`-th best eligible score is returned with its exact score; rows
   * strictly below it may be missing. Without `keep`, every row of every term is scored.
   *
   * @param eligible rows that may be returned (not removed, accepted by a filter): only they set
   *   the pruning threshold; ineligible rows may still be returned and must be dropped by the caller.
   */
  scoreRows(
    terms: readonly { readonly id: number; readonly weight: number }[],
    lengthNorms: Float64Array,
    averageLength: number,
    scratch: { readonly scores: Float64Array; readonly touched: Uint32Array; readonly values: Float64Array },
    keep: number | undefined,
    eligible: (row: number) => boolean,
    stats?: LexicalSearchStats,
  ): number {
    const { scores, touched, values } = scratch;
    let count = 0;
    let postings = 0;
    // rest[i]: the most terms i… can add to any row.
    const rest = new Float64Array(terms.length + 1);
    // restPostings[i]: postings of terms i…, what switching to candidates-only scoring can save.
    const restPostings = new Float64Array(terms.length + 1);
    if (keep !== undefined)
      for (let i = terms.length - 1; i >= 0; i -= 1) {
        const term = terms[i] as { id: number; weight: number };
        rest[i] = (rest[i + 1] as number) + this.upperBound(term.id, term.weight, averageLength);
        restPostings[i] =
          (restPostings[i + 1] as number) +
          (this.offsets[term.id + 1] as number) -
          (this.offsets[term.id] as number);
      }
    let next = 0;
    let threshold = Number.NaN;
    // After a failed check, check again only once the remaining bound has fallen by a quarter:
    // each check reads every touched row, and one that just failed is likely to fail again.
    let checkBelow = Number.POSITIVE_INFINITY;
    for (; next < terms.length; next += 1) {
      const term = terms[next] as { id: number; weight: number };
      count = this.accumulate(term.id, term.weight, scores, touched, count, lengthNorms);
      postings += (this.offsets[term.id + 1] as number) - (this.offsets[term.id] as number);
      const remaining = rest[next + 1] as number;
      // The check reads every touched row: only worth it when the remaining postings outnumber them.
      if (
        keep === undefined ||
        remaining === 0 ||
        remaining > checkBelow ||
        count < keep ||
        (restPostings[next + 1] as number) < count
      )
        continue;
      checkBelow = remaining * 0.75;
      // Enough eligible rows above what the remaining terms can add? Then the keep-th best of them
      // is the threshold (a lower bound of the final keep-th best score: scores only grow).
      let above = 0;
      for (let i = 0; i < count; i += 1) {
        const row = touched[i] as number;
        const score = scores[row] as number;
        if (score * SAFETY > remaining && eligible(row)) {
          values[above] = score;
          above += 1;
        }
      }
      if (above >= keep) {
        threshold = kthLargest(values, above, keep);
        next += 1;
        break;
      }
    }
    if (!Number.isNaN(threshold)) {
      // `cut` absorbs rounding: a row strictly below it mathematically stays below the threshold in floats.
      const cut = threshold * SAFETY;
      let remaining = rest[next] as number;
      let candidates = 0;
      for (let i = 0; i < count; i += 1) {
        const row = touched[i] as number;
        if ((scores[row] as number) + remaining >= cut && eligible(row)) {
          touched[candidates] = row;
          candidates += 1;
        } else scores[row] = 0;
      }
      let sorted = false;
      const { rows, frequencies } = this;
      const { k1, d } = this.bm25;
      for (; next < terms.length && candidates > 0; next += 1) {
        const { id, weight } = terms[next] as { id: number; weight: number };
        const start = this.offsets[id] as number;
        const end = this.offsets[id + 1] as number;
        if (end - start < 4 * candidates) {
          // A short list: walk it, adding to the rows that are candidates (non-zero score).
          postings += end - start;
          for (let p = start; p < end; p += 1) {
            const row = rows[p] as number;
            const previous = scores[row] as number;
            if (previous === 0) continue;
            const frequency = frequencies[p] as number;
            scores[row] =
              previous + weight * (d + (frequency * (k1 + 1)) / (frequency + (lengthNorms[row] as number)));
          }
        } else {
          // A long list: gallop to each candidate (both sorted by row; filtering keeps the order).
          if (!sorted) {
            touched.subarray(0, candidates).sort();
            sorted = true;
          }
          let p = start;
          for (let i = 0; i < candidates && p < end; i += 1) {
            const row = touched[i] as number;
            if ((rows[p] as number) < row) {
              let low = p;
              let step = 1;
              let high = p + 1;
              while (high < end && (rows[high] as number) < row) {
                low = high;
                step *= 2;
                high = p + step;
              }
              if (high > end) high = end;
              // rows[low] < row ≤ rows[high] (or high = end): binary search the first ≥ row.
              while (low + 1 < high) {
                const middle = (low + high) >>> 1;
                if ((rows[middle] as number) < row) low = middle;
                else high = middle;
              }
              p = high;
              postings += 1;
              if (p >= end) break;
            }
            if ((rows[p] as number) === row) {
              const frequency = frequencies[p] as number;
              const previous = scores[row] as number;
              scores[row] =
                previous + weight * (d + (frequency * (k1 + 1)) / (frequency + (lengthNorms[row] as number)));
              p += 1;
            }
          }
        }
        remaining = rest[next + 1] as number;
        // Raise the threshold from the candidates' partial scores when there are many to drop.
        if (candidates > 2 * (keep as number)) {
          for (let i = 0; i < candidates; i += 1) values[i] = scores[touched[i] as number] as number;
          threshold = Math.max(threshold, kthLargest(values, candidates, keep as number));
        }
        const newCut = threshold * SAFETY;
        let kept = 0;
        for (let i = 0; i < candidates; i += 1) {
          const row = touched[i] as number;
          if ((scores[row] as number) + remaining >= newCut) {
            touched[kept] = row;
            kept += 1;
          } else scores[row] = 0;
        }
        candidates = kept;
      }
      count = candidates;
    }
    if (stats) {
      stats.postings += postings;
      stats.pruned ||= !Number.isNaN(threshold);
    }
    return count;
  }

  /**
   * The most term `id` with weight `weight` adds to any row's score at average length
   * `averageLength`. Computed once per term at the segment's own average length A₀ (one pass over
   * its postings, on first use) and carried to A: a row's length norm at A is at least
   * min(1, A₀/A) times its norm at A₀, so its term score at most max(1, A/A₀) times (and never
   * above k1 + 1).
   */
  upperBound(id: number, weight: number, averageLength: number): number {
    const { k1, b, d } = this.bm25;
    const ownAverage = this.totalLength / Math.max(this.indexedRows, 1);
    let factor = this.maxFactors[id] as number;
    if (factor < 0) {
      factor = 0;
      const end = this.offsets[id + 1] as number;
      for (let p = this.offsets[id] as number; p < end; p += 1) {
        const frequency = this.frequencies[p] as number;
        const norm = k1 * (1 - b + (b * (this.lengths[this.rows[p] as number] as number)) / ownAverage);
        factor = Math.max(factor, (frequency * (k1 + 1)) / (frequency + norm));
      }
      this.maxFactors[id] = factor;
    }
    return weight * (d + Math.min(k1 + 1, factor * Math.max(1, averageLength / ownAverage)));
  }

  /** Segment id of `term`, if any row holds it. */
  termId(term: string): number | undefined {
    return this.termIds.get(term);
  }

  /**
   * Where the entries are, built on first use: per row, the nearest row at or before it that holds
   * terms (−1 when none), and the rows holding terms as a bitset. In a document-level segment the
   * first is the row of the entry that stands for the row's document (rows without terms are its
   * other chunks, or a document without terms, which callers tell apart).
   */
  entryRows(): { readonly entryOf: Int32Array; readonly entries: RowBitset } {
    if (!this.entryRowsCache) {
      const entryOf = new Int32Array(this.rowCount);
      const entries = new RowBitset(this.rowCount);
      let last = -1;
      for (let row = 0; row < this.rowCount; row += 1) {
        if ((this.lengths[row] as number) > 0) {
          last = row;
          entries.add(row);
        }
        entryOf[row] = last;
      }
      this.entryRowsCache = { entryOf, entries };
    }
    return this.entryRowsCache;
  }

  private entryRowsCache: { readonly entryOf: Int32Array; readonly entries: RowBitset } | undefined;

  /** BM25's per-row length normalisation `k1 × (1 − b + b × length / averageLength)`. */
  lengthNorms(averageLength: number): Float64Array {
    const { k1, b } = this.bm25;
    const norms = new Float64Array(this.rowCount);
    for (let row = 0; row < this.rowCount; row += 1)
      norms[row] = k1 * (1 - b + (b * (this.lengths[row] as number)) / averageLength);
    return norms;
  }
}

/**
 * Relative margin of pruning decisions: a row is skipped only when its bound is below the
 * threshold by more than rounding of a sum of up to 256 terms could move it (~10⁻¹³).
 */
const SAFETY = 1 - 1e-9;

/** What one lexical search did, for tests and benchmarks. */
export interface LexicalSearchStats {
  /** Segment postings read (scanned, or landed on by galloping). */
  postings: number;
  /** Whether dynamic pruning cut the search short. */
  pruned: boolean;
}

/**
 * The query's distinct terms with their weights (repetitions × idf, `documentCount` documents),
 * in the one order every scorer sums them in: heaviest first (the order pruning wants), ties by
 * term. Floating-point addition is not associative, so a fixed order is what makes a pruned and
 * an exhaustive search give bit-identical scores. Terms no document holds are left out.
 */
export function canonicalTermOrder(
  repetitions: ReadonlyMap<string, number>,
  documentFrequency: (term: string) => number,
  documentCount: number,
): { term: string; weight: number }[] {
  const terms: { term: string; weight: number }[] = [];
  for (const [term, count] of repetitions) {
    const frequency = documentFrequency(term);
    if (frequency === 0) continue;
    const idf = Math.log(1 + (documentCount - frequency + 0.5) / (frequency + 0.5));
    terms.push({ term, weight: count * idf });
  }
  return terms.sort((x, y) => y.weight - x.weight || (x.term < y.term ? -1 : x.term > y.term ? 1 : 0));
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
  /** Mutable entries holding at least one term (the delta's share of BM25's document count). */
  private mutableIndexed = 0;
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
    /** What an entry is; {@link LexicalIndex.addChunks} builds entries of this unit. */
    readonly unit: LexicalUnit,
  ) {
    this.removedRows = new Uint8Array(segment?.rowCount ?? 0);
  }

  /** An empty index. */
  static create(bm25: Bm25Parameters = DEFAULT_BM25, unit: LexicalUnit = DEFAULT_LEXICAL_UNIT): LexicalIndex {
    return new LexicalIndex(bm25, undefined, undefined, unit);
  }

  /**
   * An index whose frozen part is `segment` (shared, never modified), with nothing removed.
   * @param rows names the segment's rows; it must cover every row of the segment.
   * @param unit the unit the segment was built with (default `chunk`, what older snapshots hold).
   */
  static over(segment: LexicalSegment, rows: SegmentRows, unit: LexicalUnit = 'chunk'): LexicalIndex {
    return new LexicalIndex(segment.bm25, segment, rows, unit);
  }

  /**
   * Index a document's chunks (all of them, as one change) as entries of this index's unit; a
   * document-level entry replaces any entry under its first chunk's id.
   */
  addChunks(chunks: readonly Pick<Chunk, 'chunkId' | 'docId' | 'ordinal' | 'title' | 'text'>[]): void {
    this.addAll(lexicalEntries(chunks, this.unit));
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
      if (analysed.length > 0) this.mutableIndexed += 1;
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
      if (mutable.length > 0) this.mutableIndexed -= 1;
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
   *
   * The frozen segment is searched with MaxScore dynamic pruning (see
   * {@link LexicalSegment.scoreRows}), which returns exactly what scoring every posting returns
   * (same chunks, same float scores, same ties); `options.exhaustive` scores every posting, the
   * reference the property tests compare against.
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
    options: { readonly exhaustive?: boolean; readonly stats?: LexicalSearchStats } = {},
  ): { hits: LexicalHit[]; floorScore: number } {
    const none = { hits: [], floorScore: Number.NaN };
    if (limit <= 0) return none;
    const segment = this.segment;
    // Statistics over both parts (removed segment rows included, see the class comment).
    const documentCount = (segment?.indexedRows ?? 0) + this.mutableIndexed;
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
    const terms = canonicalTermOrder(weights, frequencyOf, documentCount);

    const mutableScores = new Map<string, number>();
    for (const { term, weight } of terms)
      for (const [chunkId, termFrequency] of this.postings.get(term) ?? []) {
        const length = this.mutableChunks.get(chunkId)?.length ?? 0;
        mutableScores.set(
          chunkId,
          (mutableScores.get(chunkId) ?? 0) + weight * termScore(termFrequency, length),
        );
      }
    const scratch = segment ? this.scratch(segment.rowCount) : undefined;
    let touchedCount = 0;
    if (segment && scratch) {
      const segmentTerms: { id: number; weight: number }[] = [];
      for (const { term, weight } of terms) {
        const id = segment.termId(term);
        if (id !== undefined) segmentTerms.push({ id, weight });
      }
      const rows = this.segmentRows;
      const removed = this.removedRows;
      const eligible = (row: number) =>
        removed[row] === 0 && (acceptRow ? acceptRow(row) : !accept || !rows || accept(rows.chunkIdOf(row)));
      touchedCount = segment.scoreRows(
        segmentTerms,
        this.norms(segment, averageLength),
        averageLength,
        scratch,
        options.exhaustive ? undefined : Math.max(limit, floorRank),
        eligible,
        options.stats,
      );
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

  /**
   * The segment rows to score for a filter that matched the snapshot rows `matching`: the rows
   * themselves for chunk entries; for document entries, the entry row of every document with at
   * least one matching chunk (a filter on chunk metadata such as a PDF's `page` matches chunks
   * other than the first, whose row holds the document's entry). Costs a word-wise AND with the
   * entry rows, a look at each matching row that is no entry, and two record reads per document
   * admitted only through such a row.
   */
  entryRowsMatching(matching: RowBitset): RowBitset {
    const segment = this.segment;
    if (this.unit === 'chunk' || !segment || !this.segmentRows) return matching;
    const { entryOf: entries, entries: entryBits } = segment.entryRows();
    // Entry rows that match themselves, a word at a time (all of them for a filter on document
    // metadata); then only the matching rows that are no entry are looked at one by one.
    const admitted = new RowBitset(matching.size);
    const { words } = matching;
    const count = Math.min(words.length, entryBits.words.length);
    for (let i = 0; i < count; i += 1)
      admitted.words[i] = (words[i] as number) & (entryBits.words[i] as number);
    for (let i = 0; i < words.length; i += 1) {
      let word = (words[i] as number) & ~(i < count ? (entryBits.words[i] as number) : 0);
      while (word !== 0) {
        const row = i * 32 + (31 - Math.clz32(word & -word));
        word &= word - 1;
        const entry = row < entries.length ? (entries[row] as number) : -1;
        if (entry < 0 || admitted.has(entry)) continue;
        // A row without terms after an entry is that document's chunk, unless it belongs to a
        // document without terms (which no query matches): compare the documents.
        if (
          documentIdOfChunk(this.segmentRows.chunkIdOf(row)) ===
          documentIdOfChunk(this.segmentRows.chunkIdOf(entry))
        )
          admitted.add(entry);
      }
    }
    return admitted;
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
