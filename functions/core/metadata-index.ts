import type { DocumentMetadata } from './documents.js';
import {
  type FieldTest,
  type FilterScalar,
  fieldTests,
  inRange,
  isoDateMs,
  type MetadataFilter,
  type RangeTest,
} from './filters.js';

/**
 * A set of rows (snapshot rows, or delta keys) `0 … size-1` as a bitmap: intersection, union and
 * complement cost `size / 32` word operations (31k at a million rows, tens of microseconds), and
 * membership is one lookup, so a filtered search tests a candidate without reading its record.
 */
export class RowBitset {
  readonly words: Uint32Array;

  constructor(readonly size: number) {
    this.words = new Uint32Array(Math.ceil(size / 32));
  }

  /** Every row `0 … size-1`. */
  static full(size: number): RowBitset {
    const set = new RowBitset(size);
    set.words.fill(0xffffffff);
    set.clearTail();
    return set;
  }

  private clearTail(): void {
    const spare = this.words.length * 32 - this.size;
    if (spare > 0)
      this.words[this.words.length - 1] = (this.words[this.words.length - 1] as number) >>> spare;
  }

  add(row: number): void {
    this.words[row >>> 5] = (this.words[row >>> 5] as number) | (1 << (row & 31));
  }

  addAll(rows: ArrayLike<number>): void {
    const { words } = this;
    for (let i = 0; i < rows.length; i += 1) {
      const row = rows[i] as number;
      words[row >>> 5] = (words[row >>> 5] as number) | (1 << (row & 31));
    }
  }

  has(row: number): boolean {
    return row >= 0 && row < this.size && ((this.words[row >>> 5] as number) & (1 << (row & 31))) !== 0;
  }

  /** Keep only rows also in `other` (same size). */
  and(other: RowBitset): this {
    for (let i = 0; i < this.words.length; i += 1)
      this.words[i] = (this.words[i] as number) & (other.words[i] as number);
    return this;
  }

  /** Remove the rows of `other` (same size). */
  andNot(other: RowBitset): this {
    for (let i = 0; i < this.words.length; i += 1)
      this.words[i] = (this.words[i] as number) & ~(other.words[i] as number);
    return this;
  }

  /** Rows in the set. */
  count(): number {
    let total = 0;
    for (let i = 0; i < this.words.length; i += 1) {
      let word = (this.words[i] as number) - (((this.words[i] as number) >>> 1) & 0x55555555);
      word = (word & 0x33333333) + ((word >>> 2) & 0x33333333);
      total += (((word + (word >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
    }
    return total;
  }

  /** The rows in ascending order. */
  *rows(): IterableIterator<number> {
    for (let i = 0; i < this.words.length; i += 1) {
      let word = this.words[i] as number;
      while (word !== 0) {
        const bit = 31 - Math.clz32(word & -word);
        yield i * 32 + bit;
        word &= word - 1;
      }
    }
  }

  /** The rows as an ascending array. */
  toArray(): Uint32Array {
    const rows = new Uint32Array(this.count());
    let next = 0;
    for (let i = 0; i < this.words.length; i += 1) {
      let word = this.words[i] as number;
      while (word !== 0) {
        rows[next++] = i * 32 + (31 - Math.clz32(word & -word));
        word &= word - 1;
      }
    }
    return rows;
  }
}

/**
 * What the filter evaluator needs of an index: rows are `0 … rowCount-1`; each lookup adds the
 * rows it finds to `into`. Implemented over the snapshot's file ({@link MetadataIndex}) and over
 * the delta's live chunks ({@link LiveMetadataIndex}).
 */
export interface MetadataPostings {
  readonly rowCount: number;
  /** Rows that exist (the delta's keys of removed chunks do not). */
  universe(): RowBitset;
  /** Rows whose metadata has `field`. */
  addPresent(field: string, into: RowBitset): void;
  /** Rows where `field` is, or is a list holding, exactly `value` (typed). */
  addEqual(field: string, value: FilterScalar, into: RowBitset): void;
  /** Rows where `field` is, or is a list holding, a value in `range`. */
  addRange(field: string, range: RangeTest, into: RowBitset): void;
}

function evaluateTest(field: string, test: FieldTest, index: MetadataPostings): RowBitset {
  const rows = new RowBitset(index.rowCount);
  switch (test.kind) {
    case 'anyOf':
      for (const value of test.values) index.addEqual(field, value, rows);
      return rows;
    case 'range':
      index.addRange(field, test.range, rows);
      return rows;
    case 'exists':
      index.addPresent(field, rows);
      return test.present ? rows : index.universe().andNot(rows);
    case 'not': {
      const inner = index.universe();
      for (const nested of test.tests) inner.and(evaluateTest(field, nested, index));
      return index.universe().andNot(inner);
    }
  }
}

/**
 * The rows matching `filter`, from postings only: no record is read. Equal, row for row, to
 * `matchesFilter` over each row's metadata (the property test in metadata-index.test.ts).
 */
export function rowsMatching(filter: MetadataFilter, index: MetadataPostings): RowBitset {
  const result = index.universe();
  for (const [field, clause] of Object.entries(filter))
    for (const test of fieldTests(clause)) result.and(evaluateTest(field, test, index));
  return result;
}

function elementsOf(value: DocumentMetadata[string] | undefined): FilterScalar[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

/** First index in sorted `values` whose value is ≥ (or > when `strict`) `target`. */
function lowerBound(values: Float64Array, target: number, strict: boolean): number {
  let low = 0;
  let high = values.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    const value = values[middle] as number;
    if (strict ? value <= target : value < target) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** Values sorted ascending, each with its row: a range is two binary searches and a slice. */
interface SortedPostings {
  readonly values: Float64Array;
  readonly rows: Uint32Array;
}

function addSortedRange(postings: SortedPostings | undefined, range: RangeTest, into: RowBitset): void {
  if (!postings) return;
  const start = range.low === undefined ? 0 : lowerBound(postings.values, range.low, !range.lowInclusive);
  const end =
    range.high === undefined
      ? postings.values.length
      : lowerBound(postings.values, range.high, range.highInclusive);
  if (end > start) into.addAll(postings.rows.subarray(start, end));
}

/** One field's postings in a snapshot index. */
interface FieldPostings {
  readonly present: Uint32Array;
  readonly trueRows: Uint32Array;
  readonly falseRows: Uint32Array;
  /** Distinct string values, sorted, each with its rows. */
  readonly strings: Map<string, Uint32Array>;
  readonly numbers: SortedPostings;
  /** String values that are ISO-8601 dates, by instant. */
  readonly dates: SortedPostings;
}

const MAGIC = 0x494d5342; // "BSMI" little-endian
const FORMAT = 1;

/** Where a field's JSON dictionary and arrays are in the file (byte offsets, element counts). */
interface FieldHeader {
  readonly name: string;
  /** `[byteOffset, length]` of each array, Uint32 rows or Float64 values. */
  readonly present: [number, number];
  readonly trueRows: [number, number];
  readonly falseRows: [number, number];
  readonly numberValues: [number, number];
  readonly numberRows: [number, number];
  readonly dateValues: [number, number];
  readonly dateRows: [number, number];
  /** Byte offset and length of the field's string dictionary (JSON `[[value, offset, length], …]`). */
  readonly strings: [number, number];
}

/**
 * The snapshot's metadata index (`metadata.index`): per field, the rows where it is present,
 * posting lists per boolean and string value, and (value, row) pairs sorted by value for numbers
 * and for ISO-date strings, so equality, any-of, ranges, negation and existence are answered from
 * postings in time proportional to the rows they name.
 *
 * File: `u32 magic "BSMI", u32 format 1, u32 rows, u32 header bytes`, the header JSON (one
 * {@link FieldHeader} per field), then 8-byte-aligned arrays. A field's string dictionary is parsed
 * on its first use, so a field of unique ids costs nothing until a query names it.
 */
export class MetadataIndex implements MetadataPostings {
  private readonly parsed = new Map<string, FieldPostings>();
  private readonly headers: Map<string, FieldHeader>;

  private constructor(
    readonly rowCount: number,
    private readonly bytes: Uint8Array,
    headers: readonly FieldHeader[],
  ) {
    this.headers = new Map(headers.map((header) => [header.name, header]));
  }

  /** Build the index of `metadata[row]` for every row. */
  static build(metadata: ArrayLike<DocumentMetadata>): MetadataIndex {
    return MetadataIndex.fromBytes(MetadataIndex.encode(metadata));
  }

  /** The file's bytes for `metadata[row]` of every row. */
  static encode(metadata: ArrayLike<DocumentMetadata>): Uint8Array {
    interface Gathered {
      present: number[];
      trueRows: number[];
      falseRows: number[];
      strings: Map<string, number[]>;
      numbers: Array<[number, number]>;
      dates: Array<[number, number]>;
    }
    const fields = new Map<string, Gathered>();
    for (let row = 0; row < metadata.length; row += 1) {
      const record = metadata[row] as DocumentMetadata;
      for (const field of Object.keys(record)) {
        let gathered = fields.get(field);
        if (!gathered) {
          gathered = { present: [], trueRows: [], falseRows: [], strings: new Map(), numbers: [], dates: [] };
          fields.set(field, gathered);
        }
        gathered.present.push(row);
        // A list naming one value twice is one posting: `seen` keeps each row's lists duplicate-free.
        const seen = new Set<FilterScalar>();
        for (const element of elementsOf(record[field])) {
          if (seen.has(element)) continue;
          seen.add(element);
          if (element === true) gathered.trueRows.push(row);
          else if (element === false) gathered.falseRows.push(row);
          else if (typeof element === 'number') gathered.numbers.push([element, row]);
          else {
            const rows = gathered.strings.get(element);
            if (rows) rows.push(row);
            else gathered.strings.set(element, [row]);
            const instant = isoDateMs(element);
            if (instant !== undefined) gathered.dates.push([instant, row]);
          }
        }
      }
    }
    const arrays: Array<Uint32Array | Float64Array> = [];
    let offset = 0;
    const place = (array: Uint32Array | Float64Array): [number, number] => {
      const at = offset;
      arrays.push(array);
      offset += Math.ceil(array.byteLength / 8) * 8;
      return [at, array.length];
    };
    const dictionaries: Uint8Array[] = [];
    const headers: FieldHeader[] = [];
    const sortedPairs = (pairs: Array<[number, number]>) => {
      pairs.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
      return {
        values: Float64Array.from(pairs, (pair) => pair[0]),
        rows: Uint32Array.from(pairs, (pair) => pair[1]),
      };
    };
    for (const [name, gathered] of [...fields].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const numbers = sortedPairs(gathered.numbers);
      const dates = sortedPairs(gathered.dates);
      const dictionary: Array<[string, number, number]> = [];
      for (const [value, rows] of [...gathered.strings].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
        dictionary.push([value, ...place(Uint32Array.from(rows))]);
      const dictionaryBytes = new TextEncoder().encode(JSON.stringify(dictionary));
      dictionaries.push(dictionaryBytes);
      headers.push({
        name,
        present: place(Uint32Array.from(gathered.present)),
        trueRows: place(Uint32Array.from(gathered.trueRows)),
        falseRows: place(Uint32Array.from(gathered.falseRows)),
        numberValues: place(numbers.values),
        numberRows: place(numbers.rows),
        dateValues: place(dates.values),
        dateRows: place(dates.rows),
        strings: [-1, dictionaryBytes.length],
      });
    }
    // Dictionaries follow the arrays; their offsets are known once every array is placed.
    const dictionaryStart = offset;
    let dictionaryOffset = dictionaryStart;
    const placedHeaders = headers.map((header, index) => {
      const at = dictionaryOffset;
      dictionaryOffset += (dictionaries[index] as Uint8Array).length;
      return { ...header, strings: [at, header.strings[1]] as [number, number] };
    });
    const headerBytes = new TextEncoder().encode(JSON.stringify(placedHeaders));
    const bodyStart = Math.ceil((16 + headerBytes.length) / 8) * 8;
    const file = new Uint8Array(bodyStart + dictionaryOffset);
    const view = new DataView(file.buffer);
    view.setUint32(0, MAGIC, true);
    view.setUint32(4, FORMAT, true);
    view.setUint32(8, metadata.length, true);
    view.setUint32(12, headerBytes.length, true);
    file.set(headerBytes, 16);
    let at = bodyStart;
    for (const array of arrays) {
      file.set(new Uint8Array(array.buffer, array.byteOffset, array.byteLength), at);
      at += Math.ceil(array.byteLength / 8) * 8;
    }
    for (const dictionary of dictionaries) {
      file.set(dictionary, at);
      at += dictionary.length;
    }
    return file;
  }

  /**
   * Open the bytes of a `metadata.index` file (kept, not copied; arrays are views into them).
   * @throws Error naming what is wrong when the bytes are not an index.
   */
  static fromBytes(bytes: Uint8Array): MetadataIndex {
    // Views of Float64 need 8-byte alignment, which a small file's buffer may not have.
    const aligned = bytes.byteOffset % 8 === 0 ? bytes : Uint8Array.from(bytes);
    if (aligned.byteLength < 16) throw new Error('metadata index is shorter than its header');
    const view = new DataView(aligned.buffer, aligned.byteOffset, aligned.byteLength);
    if (view.getUint32(0, true) !== MAGIC) throw new Error('not a metadata index (bad magic)');
    if (view.getUint32(4, true) !== FORMAT)
      throw new Error(`metadata index format ${view.getUint32(4, true)} is not supported`);
    const rowCount = view.getUint32(8, true);
    const headerLength = view.getUint32(12, true);
    if (16 + headerLength > aligned.byteLength) throw new Error('metadata index header is truncated');
    const headers = JSON.parse(
      new TextDecoder().decode(aligned.subarray(16, 16 + headerLength)),
    ) as FieldHeader[];
    const bodyStart = Math.ceil((16 + headerLength) / 8) * 8;
    const index = new MetadataIndex(rowCount, aligned.subarray(bodyStart), headers);
    for (const header of headers) {
      const end = header.strings[0] + header.strings[1];
      if (end > aligned.byteLength - bodyStart)
        throw new Error(`metadata index field ${header.name} is truncated`);
    }
    return index;
  }

  /** Fields that appear in at least one row's metadata. */
  get fields(): string[] {
    return [...this.headers.keys()];
  }

  private uint32s([offset, length]: [number, number]): Uint32Array {
    return new Uint32Array(this.bytes.buffer, this.bytes.byteOffset + offset, length);
  }

  private float64s([offset, length]: [number, number]): Float64Array {
    return new Float64Array(this.bytes.buffer, this.bytes.byteOffset + offset, length);
  }

  private field(name: string): FieldPostings | undefined {
    const cached = this.parsed.get(name);
    if (cached) return cached;
    const header = this.headers.get(name);
    if (!header) return undefined;
    const [offset, length] = header.strings;
    const dictionary = JSON.parse(
      new TextDecoder().decode(this.bytes.subarray(offset, offset + length)),
    ) as Array<[string, number, number]>;
    const postings: FieldPostings = {
      present: this.uint32s(header.present),
      trueRows: this.uint32s(header.trueRows),
      falseRows: this.uint32s(header.falseRows),
      strings: new Map(dictionary.map(([value, at, count]) => [value, this.uint32s([at, count])])),
      numbers: { values: this.float64s(header.numberValues), rows: this.uint32s(header.numberRows) },
      dates: { values: this.float64s(header.dateValues), rows: this.uint32s(header.dateRows) },
    };
    this.parsed.set(name, postings);
    return postings;
  }

  universe(): RowBitset {
    return RowBitset.full(this.rowCount);
  }

  addPresent(field: string, into: RowBitset): void {
    const postings = this.field(field);
    if (postings) into.addAll(postings.present);
  }

  addEqual(field: string, value: FilterScalar, into: RowBitset): void {
    const postings = this.field(field);
    if (!postings) return;
    if (value === true) into.addAll(postings.trueRows);
    else if (value === false) into.addAll(postings.falseRows);
    else if (typeof value === 'number')
      addSortedRange(
        postings.numbers,
        { type: 'number', low: value, lowInclusive: true, high: value, highInclusive: true },
        into,
      );
    else {
      const rows = postings.strings.get(value);
      if (rows) into.addAll(rows);
    }
  }

  addRange(field: string, range: RangeTest, into: RowBitset): void {
    const postings = this.field(field);
    if (postings) addSortedRange(range.type === 'number' ? postings.numbers : postings.dates, range, into);
  }
}

/** Keys by value, for one field of the live index. */
interface LiveField {
  readonly present: Set<number>;
  readonly values: Map<FilterScalar, Set<number>>;
}

/**
 * The delta's metadata index: postings per field value over the delta's integer chunk keys,
 * updated as chunks come and go. Ranges walk the field's distinct values (the delta is bounded:
 * past its size limit a reindex folds it into a snapshot).
 */
export class LiveMetadataIndex implements MetadataPostings {
  private readonly fields = new Map<string, LiveField>();
  private readonly live = new Set<number>();
  private keyLimit = 0;

  get rowCount(): number {
    return this.keyLimit;
  }

  add(key: number, metadata: DocumentMetadata): void {
    this.live.add(key);
    this.keyLimit = Math.max(this.keyLimit, key + 1);
    for (const name of Object.keys(metadata)) {
      let field = this.fields.get(name);
      if (!field) {
        field = { present: new Set(), values: new Map() };
        this.fields.set(name, field);
      }
      field.present.add(key);
      for (const element of elementsOf(metadata[name])) {
        const keys = field.values.get(element);
        if (keys) keys.add(key);
        else field.values.set(element, new Set([key]));
      }
    }
  }

  remove(key: number, metadata: DocumentMetadata): void {
    this.live.delete(key);
    for (const name of Object.keys(metadata)) {
      const field = this.fields.get(name);
      if (!field) continue;
      field.present.delete(key);
      for (const element of elementsOf(metadata[name])) {
        const keys = field.values.get(element);
        keys?.delete(key);
        if (keys?.size === 0) field.values.delete(element);
      }
      if (field.present.size === 0) this.fields.delete(name);
    }
  }

  universe(): RowBitset {
    const set = new RowBitset(this.keyLimit);
    for (const key of this.live) set.add(key);
    return set;
  }

  addPresent(field: string, into: RowBitset): void {
    for (const key of this.fields.get(field)?.present ?? []) into.add(key);
  }

  addEqual(field: string, value: FilterScalar, into: RowBitset): void {
    for (const key of this.fields.get(field)?.values.get(value) ?? []) into.add(key);
  }

  addRange(field: string, range: RangeTest, into: RowBitset): void {
    for (const [value, keys] of this.fields.get(field)?.values ?? []) {
      if (!inRange(value, range)) continue;
      for (const key of keys) into.add(key);
    }
  }
}
