import MiniSearch, { type Options } from 'minisearch';
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

function miniSearchOptions(bm25: Bm25Parameters): Options<LexicalEntry> {
  return {
    idField: 'chunkId',
    fields: ['text'],
    storeFields: [],
    // MiniSearch calls tokenize then processTerm; doing all analysis in tokenize keeps one code path.
    tokenize: analyzeEnglish,
    processTerm: (term: string) => term,
    searchOptions: {
      prefix: false,
      fuzzy: false,
      combineWith: 'OR',
      bm25: { k: bm25.k1, b: bm25.b, d: bm25.d },
    },
  };
}

/**
 * A BM25 index over chunks, backed by MiniSearch (incremental add/remove, JSON serialisation),
 * with an English analyser. Used both inside immutable snapshots and in the mutable delta.
 */
export class LexicalIndex {
  private constructor(
    private readonly engine: MiniSearch<LexicalEntry>,
    /** BM25 parameters this index scores with. */
    readonly bm25: Bm25Parameters,
  ) {}

  /** An empty index. */
  static create(bm25: Bm25Parameters = DEFAULT_BM25): LexicalIndex {
    return new LexicalIndex(new MiniSearch<LexicalEntry>(miniSearchOptions(bm25)), bm25);
  }

  /** Restore an index written by {@link LexicalIndex.toJSON}. */
  static fromJSON(json: string): LexicalIndex {
    const { bm25, engine } = JSON.parse(json) as { bm25: Bm25Parameters; engine: unknown };
    return new LexicalIndex(MiniSearch.loadJS(engine as never, miniSearchOptions(bm25)), bm25);
  }

  /** Serialised form, for a snapshot file. */
  toJSON(): string {
    return JSON.stringify({ bm25: this.bm25, engine: this.engine.toJSON() });
  }

  /** Number of chunks indexed. */
  get size(): number {
    return this.engine.documentCount;
  }

  has(chunkId: string): boolean {
    return this.engine.has(chunkId);
  }

  /** Add chunks; a chunk id already present is replaced. */
  addAll(entries: Iterable<LexicalEntry>): void {
    for (const entry of entries) {
      if (this.engine.has(entry.chunkId)) this.engine.discard(entry.chunkId);
      this.engine.add(entry);
    }
  }

  /** Remove a chunk if present. */
  remove(chunkId: string): void {
    if (this.engine.has(chunkId)) this.engine.discard(chunkId);
  }

  /**
   * The `limit` best chunks by BM25, best first.
   * @param accept optional predicate on chunk ids (filters, tombstones), applied before the limit.
   */
  search(query: string, limit: number, accept?: (chunkId: string) => boolean): LexicalHit[] {
    const hits: LexicalHit[] = [];
    for (const result of this.engine.search(query)) {
      const chunkId = String(result.id);
      if (accept && !accept(chunkId)) continue;
      // MiniSearch multiplies the BM25 sum by the number of distinct query terms matched (a
      // coordination factor); dividing it back out gives classic BM25.
      hits.push({ chunkId, score: result.score / Math.max(result.queryTerms.length, 1) });
    }
    hits.sort((a, b) => b.score - a.score || (a.chunkId < b.chunkId ? -1 : 1));
    return hits.slice(0, limit);
  }
}
