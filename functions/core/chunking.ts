import type { DocumentMetadata, SourceDocument } from './documents.js';
import { canonicalJson, sha256Hex } from './hashing.js';

/** Counts a model's content tokens (no special tokens) for a piece of text. */
export interface TokenCounter {
  countTokens(text: string): number;
}

/** How documents are cut into chunks. */
export interface ChunkingOptions {
  /**
   * Content tokens one chunk may hold, title included: the model's max tokens minus its special
   * tokens (126 for a 128-token BERT, 128 for USE-lite).
   */
  readonly maxTokens: number;
  /** Tokens of trailing sentences repeated at the start of the next chunk. Default: 15% of maxTokens. */
  readonly overlapTokens?: number;
  /**
   * `window` (default) cuts long documents into overlapping windows; `truncate` keeps one chunk
   * per document and lets the model truncate it (the BEIR evaluation convention).
   */
  readonly strategy?: 'window' | 'truncate';
}

/** One embeddable piece of a document. */
export interface Chunk {
  /** `<docId>#<ordinal>`: stable for the same document content and chunking settings. */
  readonly chunkId: string;
  readonly docId: string;
  /** 0-based position of the chunk in its document. */
  readonly ordinal: number;
  readonly title?: string;
  /** The chunk's own text, without the title. */
  readonly text: string;
  readonly metadata: DocumentMetadata;
  /**
   * sha256 of the text that is embedded ({@link embeddingInput}); unchanged content keeps its
   * hash, so its vector can be reused instead of re-embedded.
   */
  readonly contentHash: string;
}

/** The document id in a chunk id (`<docId>#<ordinal>`); undefined when it holds no `#`. */
export function documentIdOfChunk(chunkId: string): string | undefined {
  const separator = chunkId.lastIndexOf('#');
  return separator < 0 ? undefined : chunkId.slice(0, separator);
}

/** Text that is fed to the embedding model for a chunk: the title carried into every chunk. */
export function embeddingInput(chunk: Pick<Chunk, 'title' | 'text'>): string {
  return chunk.title ? `${chunk.title} ${chunk.text}` : chunk.text;
}

/** sha256 over everything that defines a document version (id, title, text, metadata, pages). */
export function documentContentHash(document: SourceDocument): string {
  return sha256Hex(
    canonicalJson({
      id: document.id,
      title: document.title ?? '',
      text: document.text,
      metadata: document.metadata,
      // Only when present, so the hashes of unpaged documents stay what they were.
      ...(document.pageStarts ? { pageStarts: document.pageStarts } : {}),
    }),
  );
}

interface TextUnit {
  text: string;
  tokens: number;
  /** True when this unit begins a paragraph: the preferred place to cut. */
  startsParagraph: boolean;
  /** 1-based page the unit comes from (paged documents only). */
  page?: number;
}

/** A window's text and, for paged documents, the first and last page it draws from. */
interface Window {
  text: string;
  pages?: [first: number, last: number];
}

const sentenceSegmenter = new Intl.Segmenter('en', { granularity: 'sentence' });

/**
 * Cut a document into chunks that fit the model.
 *
 * Windows hold at most `maxTokens` tokens including the title (which is repeated in every chunk),
 * are cut at sentence boundaries, prefer paragraph boundaries when one falls in the second half of
 * a window, and start with up to `overlapTokens` of the previous window's last sentences. A
 * sentence longer than a window is split between words. A document without text yields no chunk:
 * an empty chunk would match short or unfamiliar queries best and show as a blank result (the
 * encoder reports such a document as a `DOCUMENT_EMPTY` failure instead).
 */
export function chunkDocument(
  document: SourceDocument,
  tokenizer: TokenCounter,
  options: ChunkingOptions,
): Chunk[] {
  if (document.text.trim() === '') return [];
  const windows: Window[] =
    options.strategy === 'truncate'
      ? [{ text: document.text.trim(), ...pagesOf(pagedUnits(document, () => 0)) }]
      : windowTexts(document, tokenizer, options);
  return windows.map(({ text, pages }, ordinal) => {
    const chunk = { title: document.title, text };
    return {
      chunkId: `${document.id}#${ordinal}`,
      docId: document.id,
      ordinal,
      ...(document.title ? { title: document.title } : {}),
      text,
      metadata: pages ? { ...document.metadata, page: pages[0], pageEnd: pages[1] } : document.metadata,
      contentHash: sha256Hex(embeddingInput(chunk)),
    };
  });
}

/** The first and last page of some units, when they carry pages. */
function pagesOf(units: readonly TextUnit[]): Pick<Window, 'pages'> {
  const pages = units.flatMap((unit) => (unit.page === undefined ? [] : [unit.page]));
  if (pages.length === 0) return {};
  return { pages: [Math.min(...pages), Math.max(...pages)] };
}

/**
 * The text units of a document, page by page when it has `pageStarts`: a page break is a
 * paragraph break, and every unit knows its page.
 */
function pagedUnits(
  document: SourceDocument,
  countTokens: (text: string) => number,
  budget = Infinity,
): TextUnit[] {
  const starts = document.pageStarts;
  if (!starts || starts.length === 0) return textUnits(document.text, countTokens, budget);
  return starts.flatMap((start, index) =>
    textUnits(document.text.slice(start, starts[index + 1] ?? document.text.length), countTokens, budget).map(
      (unit) => ({ ...unit, page: index + 1 }),
    ),
  );
}

function windowTexts(document: SourceDocument, tokenizer: TokenCounter, options: ChunkingOptions): Window[] {
  if (!Number.isInteger(options.maxTokens) || options.maxTokens < 8) {
    throw new RangeError(`maxTokens must be an integer >= 8, got ${options.maxTokens}`);
  }
  const titleTokens = document.title ? tokenizer.countTokens(document.title) : 0;
  // A very long title must not starve the text: it keeps at most half of the window.
  const budget = Math.max(options.maxTokens - titleTokens, Math.floor(options.maxTokens / 2));
  const overlap = Math.min(
    options.overlapTokens ?? Math.floor(options.maxTokens * 0.15),
    Math.floor(budget / 2),
  );
  const units = pagedUnits(document, (text) => tokenizer.countTokens(text), budget);
  if (units.length === 0) return [{ text: '' }];

  const windows: Window[] = [];
  let start = 0;
  while (start < units.length) {
    let end = start;
    let used = 0;
    while (end < units.length && used + (units[end]?.tokens ?? 0) <= budget) {
      used += units[end]?.tokens ?? 0;
      end += 1;
    }
    if (end === start) end = start + 1; // cannot happen after splitting, kept as a guard against loops
    if (end < units.length) end = preferParagraphCut(units, start, end);
    let text = joinUnits(units.slice(start, end));
    // Token counts of separate sentences do not always add up exactly (sub-word merges across the
    // joint); re-count the window and give back its last sentence when it overflows.
    while (end - start > 1 && tokenizer.countTokens(text) > budget) {
      end -= 1;
      text = joinUnits(units.slice(start, end));
    }
    windows.push({ text, ...pagesOf(units.slice(start, end)) });
    if (end >= units.length) break;
    start = overlapStart(units, start, end, overlap);
  }
  return windows;
}

/** Move the cut back to a paragraph start that lies in the second half of the window, if any. */
function preferParagraphCut(units: TextUnit[], start: number, end: number): number {
  for (let cut = end - 1; cut > start + (end - start) / 2; cut -= 1) {
    if (units[cut]?.startsParagraph) return cut;
  }
  return end;
}

/** First unit of the next window: trailing units of this one worth at most `overlap` tokens. */
function overlapStart(units: TextUnit[], start: number, end: number, overlap: number): number {
  let next = end;
  let carried = 0;
  while (next - 1 > start && carried + (units[next - 1]?.tokens ?? 0) <= overlap) {
    next -= 1;
    carried += units[next]?.tokens ?? 0;
  }
  return next;
}

function joinUnits(units: TextUnit[]): string {
  return units
    .map((unit, index) => (index === 0 ? unit.text : `${unit.startsParagraph ? '\n\n' : ' '}${unit.text}`))
    .join('');
}

/** Sentences (paragraph starts marked), with any sentence longer than `budget` split between words. */
function textUnits(text: string, countTokens: (text: string) => number, budget: number): TextUnit[] {
  const units: TextUnit[] = [];
  for (const paragraph of text.split(/\n[ \t]*\n+/)) {
    let startsParagraph = true;
    for (const { segment } of sentenceSegmenter.segment(paragraph)) {
      const sentence = segment.replace(/\s+/g, ' ').trim();
      if (!sentence) continue;
      const tokens = countTokens(sentence);
      if (tokens <= budget) {
        units.push({ text: sentence, tokens, startsParagraph });
      } else {
        for (const [index, piece] of splitBetweenWords(sentence, { countTokens }, budget).entries()) {
          units.push({ ...piece, startsParagraph: startsParagraph && index === 0 });
        }
      }
      startsParagraph = false;
    }
  }
  return units;
}

function splitBetweenWords(
  sentence: string,
  tokenizer: TokenCounter,
  budget: number,
): Array<{ text: string; tokens: number }> {
  const pieces: Array<{ text: string; tokens: number }> = [];
  let words: string[] = [];
  let used = 0;
  for (const word of sentence.split(' ')) {
    let wordTokens = tokenizer.countTokens(word);
    let rest = word;
    if (wordTokens > budget && words.length > 0) {
      pieces.push({ text: words.join(' '), tokens: used });
      words = [];
      used = 0;
    }
    // A single "word" longer than the window (a URL, a base64 blob) is cut by characters.
    while (wordTokens > budget) {
      const cut = Math.max(1, Math.floor((rest.length * budget) / wordTokens) - 1);
      pieces.push({ text: rest.slice(0, cut), tokens: tokenizer.countTokens(rest.slice(0, cut)) });
      rest = rest.slice(cut);
      wordTokens = tokenizer.countTokens(rest);
    }
    if (used + wordTokens > budget && words.length > 0) {
      pieces.push({ text: words.join(' '), tokens: used });
      words = [];
      used = 0;
    }
    words.push(rest);
    used += wordTokens;
  }
  if (words.length > 0) pieces.push({ text: words.join(' '), tokens: used });
  return pieces;
}
