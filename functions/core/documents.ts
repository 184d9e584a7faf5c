import { parse as parseCsvText } from 'csv-parse/sync';
import { compile as compileHtmlToText } from 'html-to-text';
import removeMarkdown from 'remove-markdown';
import { z } from 'zod';
import { parseDocx, parsePdf } from './binary-documents.js';
import { documentIdProblem, MAX_DOCUMENT_ID_LENGTH } from './document-ids.js';
import { DocumentParseError } from './errors.js';

/** A metadata value: scalars, or a list of scalars (filters match any element of a list). */
export type MetadataValue = string | number | boolean | Array<string | number | boolean>;

/** Free-form document metadata, used for equality / `in` filters and returned with results. */
export type DocumentMetadata = Record<string, MetadataValue>;

/** One logical document, the unit users upload, update and delete. */
export interface SourceDocument {
  /** Caller-chosen identifier; stable across updates. */
  readonly id: string;
  readonly title?: string;
  /** Plain text: markup is already removed. */
  readonly text: string;
  readonly metadata: DocumentMetadata;
  /**
   * For paged sources (PDF): the offset in `text` where each page begins, page 1 first. The chunker
   * turns it into the `page` / `pageEnd` metadata of every chunk, so results can cite pages.
   */
  readonly pageStarts?: readonly number[];
}

/** The outcome of parsing one file: the good documents and one error per bad file or line. */
export interface ParsedDocuments {
  readonly documents: SourceDocument[];
  readonly failures: DocumentParseError[];
}

/** Longest accepted document id; ids end up in S3 keys and DynamoDB keys (rules: `document-ids.ts`). */
export { MAX_DOCUMENT_ID_LENGTH };

const metadataValueSchema = z.union([
  z.string(),
  z.number().finite(),
  z.boolean(),
  z.array(z.union([z.string(), z.number().finite(), z.boolean()])),
]);

/**
 * A document id: trimmed, then checked by {@link documentIdProblem} (1–512 characters, no control
 * characters, no empty, `.` or `..` segments, segments ≤ 200 bytes). Numbers are accepted as text.
 */
export const documentIdSchema = z
  .union([z.string(), z.number().int()])
  .transform((value) => String(value).trim())
  .superRefine((value, context) => {
    const problem = documentIdProblem(value);
    if (problem) context.addIssue({ code: 'custom', message: problem });
  });

/** Body of `PUT /documents/{docId}`: the id comes from the path. */
export const documentBodySchema = z
  .object({
    title: z.string().max(2_000).optional(),
    text: z.string({ error: 'text must be a string' }),
    metadata: z.record(z.string(), metadataValueSchema).optional(),
  })
  .strict();

/** Schema of a JSON document; BEIR's `_id` is accepted as an alias of `id`. */
const jsonDocumentSchema = z
  .object({
    id: documentIdSchema.optional(),
    _id: documentIdSchema.optional(),
    title: z.string().optional(),
    text: z.string({ error: 'text must be a string' }),
    metadata: z.record(z.string(), metadataValueSchema).optional(),
  })
  .loose();

type Format = 'text' | 'markdown' | 'html' | 'json' | 'jsonl' | 'csv' | 'pdf' | 'docx';

/** File extensions the parser understands, mapped to their format. */
const FORMAT_BY_EXTENSION: Record<string, Format> = {
  '.txt': 'text',
  '.text': 'text',
  '.md': 'markdown',
  '.markdown': 'markdown',
  '.html': 'html',
  '.htm': 'html',
  '.json': 'json',
  '.jsonl': 'jsonl',
  '.ndjson': 'jsonl',
  '.csv': 'csv',
  '.pdf': 'pdf',
  '.docx': 'docx',
};

/** Formats whose files hold many documents (one per line or row), each failing on its own. */
const MULTI_DOCUMENT_FORMATS: ReadonlySet<Format> = new Set(['jsonl', 'csv']);

/** Formats read from their bytes by an asynchronous library (see `office-documents.ts`). */
const BINARY_FORMATS: ReadonlySet<Format> = new Set(['pdf', 'docx']);

/**
 * True when a file of this name defines many documents (`.jsonl`, `.ndjson`, `.csv`): one of its
 * documents cannot be deleted alone, only by editing the file.
 */
export function isMultiDocumentFile(fileName: string): boolean {
  const format = FORMAT_BY_EXTENSION[extensionOf(fileName)];
  return format !== undefined && MULTI_DOCUMENT_FORMATS.has(format);
}

/**
 * S3 user metadata (`x-amz-meta-bisearch-csv-columns`) that carries a CSV file's column roles
 * as JSON ({@link csvColumnsSchema}). It travels with the object, so it can never arrive after
 * the CSV or change without it (a separate sidecar object could): changing it is an upload,
 * which re-ingests the file. `bisearch ingest` sets it from a `<file>.csv.bisearch.json` beside it.
 */
export const CSV_COLUMNS_METADATA_KEY = 'bisearch-csv-columns';

/** Name of the local sidecar file `bisearch ingest` reads a CSV file's column roles from. */
export function csvSidecarName(csvFileName: string): string {
  return `${csvFileName}.bisearch.json`;
}

/** Per-file parsing options that do not live in the file itself. */
export interface ParseOptions {
  /**
   * CSV only: which columns hold the id, title, text and metadata, as an object or as its JSON
   * text (the {@link CSV_COLUMNS_METADATA_KEY} metadata); validated by {@link csvColumnsSchema}.
   * Default: the columns named `id` (or `_id`), `title` and `text`, every other column as
   * string metadata.
   */
  readonly csvColumns?: CsvColumns | string;
}

/**
 * Column roles from their JSON text (S3 metadata, a sidecar file). Throws a DocumentParseError
 * naming `fileName` when the text is not JSON or does not fit {@link csvColumnsSchema}.
 */
export function parseCsvColumns(fileName: string, value: CsvColumns | string): CsvColumns {
  let json: unknown = value;
  if (typeof value === 'string') {
    try {
      json = JSON.parse(value);
    } catch (cause) {
      throw new DocumentParseError(fileName, undefined, `the CSV column roles are not valid JSON`, { cause });
    }
  }
  const parsed = csvColumnsSchema.safeParse(json);
  if (!parsed.success)
    throw new DocumentParseError(
      fileName,
      undefined,
      `the CSV column roles are invalid: ${parsed.error.issues.map((issue) => `${issue.path.length ? `${issue.path.join('.')}: ` : ''}${issue.message}`).join('; ')}`,
    );
  return parsed.data;
}

/** The extensions {@link parseDocumentFile} accepts, lower case with the dot. */
export const SUPPORTED_EXTENSIONS: readonly string[] = Object.keys(FORMAT_BY_EXTENSION);

function extensionOf(fileName: string): string {
  const base = fileName.slice(fileName.lastIndexOf('/') + 1);
  const dot = base.lastIndexOf('.');
  return dot <= 0 ? '' : base.slice(dot).toLowerCase();
}

/** Document id for a single-document file: its path without the extension (`docs/a/b.md` → `a/b`). */
export function documentIdFromFileName(fileName: string): string {
  const extension = extensionOf(fileName);
  const withoutExtension = extension ? fileName.slice(0, -extension.length) : fileName;
  return withoutExtension.replace(/^\.?\/+/, '').replace(/^docs\//, '');
}

/**
 * Parse one uploaded file into documents.
 *
 * Supported: `.txt`, `.md` (markup removed, first `#` heading is the title), `.html` (text only,
 * scripts and styles dropped, `<title>` or first `<h1>` is the title), `.json` (one document:
 * `id`, `title`, `text`, `metadata`), `.jsonl` (one document per line; BEIR `_id` accepted),
 * `.csv` (one document per row, see {@link ParseOptions.csvColumns}), `.pdf` (the text layer, with
 * the offset of every page in `pageStarts`; a PDF without one fails with `DOCUMENT_NO_TEXT_LAYER`:
 * there is no OCR) and `.docx` (Word; the `Title` paragraph or first heading is the title).
 * A bad file yields one failure naming the file; a bad JSON Lines line or CSV row yields a failure
 * naming its line and the other lines still parse.
 *
 * Asynchronous because the PDF parser is; everything happens in memory on the given bytes.
 *
 * @param fileName path or key of the file; used for the default id and in error messages.
 * @param content the file's bytes (text formats are decoded as UTF-8) or text.
 */
export async function parseDocumentFile(
  fileName: string,
  content: string | Uint8Array,
  options: ParseOptions = {},
): Promise<ParsedDocuments> {
  const format = FORMAT_BY_EXTENSION[extensionOf(fileName)];
  if (format === undefined || !BINARY_FORMATS.has(format))
    return parseTextDocumentFile(fileName, content, options);
  if (typeof content === 'string')
    return failed(
      new DocumentParseError(fileName, undefined, `a ${format.toUpperCase()} file must be given as bytes`),
    );
  try {
    const document =
      format === 'pdf'
        ? await parsePdf(fileName, content, documentIdFromFileName(fileName))
        : await parseDocx(fileName, content, documentIdFromFileName(fileName), htmlToPlainText);
    if (document.text.trim() === '') return failed(emptyDocumentError(fileName, undefined, document.id));
    return { documents: [document], failures: [] };
  } catch (error) {
    return failed(asParseError(fileName, undefined, error));
  }
}

function failed(failure: DocumentParseError): ParsedDocuments {
  return { documents: [], failures: [failure] };
}

/**
 * The synchronous part of {@link parseDocumentFile}: every text format (all but `.pdf` and
 * `.docx`, which it reports as needing {@link parseDocumentFile}). For callers that read a known
 * text format outside the ingest path (the BEIR reader).
 */
export function parseTextDocumentFile(
  fileName: string,
  content: string | Uint8Array,
  options: ParseOptions = {},
): ParsedDocuments {
  const format = FORMAT_BY_EXTENSION[extensionOf(fileName)];
  if (!format) {
    return {
      documents: [],
      failures: [
        new DocumentParseError(
          fileName,
          undefined,
          `unsupported file type "${extensionOf(fileName) || '(none)'}"; expected one of ${SUPPORTED_EXTENSIONS.join(', ')}`,
        ),
      ],
    };
  }
  if (BINARY_FORMATS.has(format))
    return failed(
      new DocumentParseError(fileName, undefined, `${format} files are parsed by parseDocumentFile`),
    );
  let text: string;
  try {
    text = typeof content === 'string' ? content : new TextDecoder('utf-8', { fatal: true }).decode(content);
  } catch (cause) {
    return {
      documents: [],
      failures: [new DocumentParseError(fileName, undefined, 'file is not valid UTF-8', { cause })],
    };
  }
  text = text.replace(/^\uFEFF/, '');
  if (format === 'jsonl') return parseJsonLines(fileName, text);
  if (format === 'csv') return parseCsv(fileName, text, options.csvColumns);
  try {
    const document =
      format === 'json'
        ? parseJsonDocument(fileName, undefined, JSON.parse(text), documentIdFromFileName(fileName))
        : parseMarkupDocument(fileName, format as 'text' | 'markdown' | 'html', text);
    if (document.text.trim() === '')
      return { documents: [], failures: [emptyDocumentError(fileName, undefined, document.id)] };
    return { documents: [document], failures: [] };
  } catch (error) {
    return { documents: [], failures: [asParseError(fileName, undefined, error)] };
  }
}

function asParseError(fileName: string, line: number | undefined, error: unknown): DocumentParseError {
  if (error instanceof DocumentParseError) return error;
  return new DocumentParseError(fileName, line, describeJsonError(error), { cause: error });
}

/**
 * A JSON syntax error as a position, never as the text around it: V8's messages quote the input
 * (`Unexpected token 'a', "secret…" is not valid JSON`), and these messages reach logs and API answers.
 */
function describeJsonError(error: unknown): string {
  if (!(error instanceof SyntaxError)) return 'could not be parsed';
  const position = /at position (\d+)/.exec(error.message)?.[1];
  if (position !== undefined) return `invalid JSON at character ${Number(position) + 1}`;
  if (/end of (JSON )?input/i.test(error.message)) return 'invalid JSON: unexpected end of input';
  return 'invalid JSON';
}

/** A document without text: nothing to search, so a per-document failure, never an empty chunk. */
function emptyDocumentError(fileName: string, line: number | undefined, documentId: string) {
  return new DocumentParseError(fileName, line, 'the document has no text', {
    code: 'DOCUMENT_EMPTY',
    documentId,
  });
}

function parseJsonLines(fileName: string, text: string): ParsedDocuments {
  const records: RawRecord[] = [];
  for (const [index, line] of text.split(/\r?\n/).entries()) {
    if (line.trim() === '') continue;
    try {
      records.push({ line: index + 1, value: JSON.parse(line) });
    } catch (error) {
      records.push({ line: index + 1, problem: error });
    }
  }
  return parseRecords(fileName, records);
}

/** One record of a multi-document file: its value as read, or why it could not be read. */
interface RawRecord {
  /** 1-based line where the record starts. */
  readonly line: number;
  /** A JSON document shape (`id`, `title`, `text`, `metadata`), possibly invalid. */
  readonly value?: unknown;
  /** Set when the record is unusable even if its id is readable (bad JSON, wrong field count). */
  readonly problem?: unknown;
}

/**
 * The documents of a multi-document file (JSON Lines, CSV), each record failing alone: a bad
 * record whose id is readable fails that document (GET /documents/{id} says why), once; a record
 * repeating an earlier record's id fails only itself (the first is kept).
 */
function parseRecords(fileName: string, records: Iterable<RawRecord>): ParsedDocuments {
  const documents: SourceDocument[] = [];
  const failures: DocumentParseError[] = [];
  const lineOfId = new Map<string, number>();
  for (const { line: lineNumber, value, problem } of records) {
    try {
      if (problem !== undefined) throw problem;
      const document = parseJsonDocument(fileName, lineNumber, value, undefined);
      const earlier = lineOfId.get(document.id);
      if (earlier !== undefined) {
        failures.push(
          new DocumentParseError(
            fileName,
            lineNumber,
            `repeats the id of line ${earlier}; the first is kept`,
            // No documentId: this failure must not touch the document the first line defines.
            { code: 'DOCUMENT_ID_DUPLICATE' },
          ),
        );
      } else if (document.text.trim() === '') {
        lineOfId.set(document.id, lineNumber);
        failures.push(emptyDocumentError(fileName, lineNumber, document.id));
      } else {
        lineOfId.set(document.id, lineNumber);
        documents.push(document);
      }
    } catch (error) {
      const id = readableId(value);
      const owned = id !== undefined && !lineOfId.has(id);
      const reason = error instanceof DocumentParseError ? error.reason : describeJsonError(error);
      failures.push(
        new DocumentParseError(fileName, lineNumber, reason, {
          cause: error,
          ...(error instanceof DocumentParseError ? { code: error.code } : {}),
          ...(owned ? { documentId: id } : {}),
        }),
      );
      if (owned) lineOfId.set(id, lineNumber);
    }
  }
  return { documents, failures };
}

/** CSV column roles of one file; validated by {@link csvColumnsSchema}. */
export type CsvColumns = z.infer<typeof csvColumnsSchema>;

/**
 * Which CSV columns make a document. Every field is a header name. Defaults: `id` (or `_id`),
 * `title` (optional), `text`; `metadata` defaults to every other column. Several text columns are
 * joined as paragraphs (in the order given).
 */
export const csvColumnsSchema = z
  .object({
    id: z.string().min(1).optional(),
    title: z.string().min(1).optional(),
    text: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
    metadata: z.array(z.string().min(1)).optional(),
  })
  .strict();

/** Where each role's column sits in the rows, resolved against the header. */
interface CsvLayout {
  readonly id: number;
  readonly title: number | undefined;
  readonly text: number[];
  readonly metadata: Array<[name: string, index: number]>;
}

function csvLayout(fileName: string, header: string[], columns: CsvColumns | undefined): CsvLayout {
  const names = header.map((name) => name.trim());
  const indexOf = (role: string, name: string): number => {
    const index = names.indexOf(name);
    if (index < 0)
      throw new DocumentParseError(fileName, 1, `the ${role} column "${name}" is not in the header`);
    return index;
  };
  const optional = (name: string) => (names.includes(name) ? names.indexOf(name) : undefined);
  const id = columns?.id !== undefined ? indexOf('id', columns.id) : (optional('id') ?? optional('_id'));
  if (id === undefined)
    throw new DocumentParseError(
      fileName,
      1,
      'the header has no "id" (or "_id") column; name one, or map one',
    );
  const title = columns?.title !== undefined ? indexOf('title', columns.title) : optional('title');
  const textNames = columns?.text === undefined ? ['text'] : [columns.text].flat();
  const text = textNames.map((name) => indexOf('text', name));
  const used = new Set([id, title, ...text]);
  const metadata: Array<[string, number]> =
    columns?.metadata !== undefined
      ? columns.metadata.map((name) => [name, indexOf('metadata', name)])
      : names.flatMap(
          (name, index): Array<[string, number]> => (used.has(index) || !name ? [] : [[name, index]]),
        );
  return { id, title, text, metadata };
}

/** Names the problem of a csv-parse error by its code: its messages quote the input. */
function describeCsvError(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  if (code === 'CSV_QUOTE_NOT_CLOSED') return 'a quoted field is never closed';
  if (code === 'CSV_INVALID_CLOSING_QUOTE' || code === 'INVALID_OPENING_QUOTE')
    return 'a quote in the middle of a field (quote the whole field and double inner quotes)';
  return `invalid CSV${typeof code === 'string' ? ` (${code})` : ''}`;
}

/**
 * One document per CSV row after the header (RFC 4180: quoted fields may hold commas, quotes
 * doubled, line breaks). A row with the wrong number of fields, no id or no text fails alone,
 * named by the line it starts on. A syntax error (an unclosed quote) leaves row boundaries unknown
 * from there on: the rows before it are kept and one failure names the line where reading stopped.
 */
function parseCsv(fileName: string, text: string, roles: CsvColumns | string | undefined): ParsedDocuments {
  let columns: CsvColumns | undefined;
  try {
    columns = roles === undefined ? undefined : parseCsvColumns(fileName, roles);
  } catch (error) {
    return failed(asParseError(fileName, undefined, error));
  }
  const rows: Array<{ line: number; fields: string[] }> = [];
  let syntaxError: DocumentParseError | undefined;
  try {
    // Line endings normalised first: csv-parse counts a CRLF inside a quoted field as two lines.
    parseCsvText(text.replace(/\r\n?/g, '\n'), {
      relax_column_count: true,
      skip_empty_lines: true,
      // `lines` is where the record ends; only quoted fields hold line breaks, so count back theirs.
      on_record: (fields: string[], context: { lines: number }) => {
        const breaks = fields.reduce((sum, field) => sum + field.split('\n').length - 1, 0);
        rows.push({ line: context.lines - breaks, fields });
        return null;
      },
    });
  } catch (error) {
    const line = (error as { lines?: unknown }).lines;
    syntaxError = new DocumentParseError(
      fileName,
      typeof line === 'number' ? line : undefined,
      `${describeCsvError(error)}; the rows from here on are not read`,
      { cause: error },
    );
  }
  const [header, ...body] = rows;
  if (!header)
    return failed(syntaxError ?? new DocumentParseError(fileName, undefined, 'the CSV file is empty'));
  let layout: CsvLayout;
  try {
    layout = csvLayout(fileName, header.fields, columns);
  } catch (error) {
    return failed(asParseError(fileName, 1, error));
  }
  const records = body.map(({ line, fields }): RawRecord => {
    const value = {
      id: fields[layout.id],
      ...(layout.title !== undefined && fields[layout.title]?.trim() ? { title: fields[layout.title] } : {}),
      text: layout.text
        .map((index) => fields[index]?.trim() ?? '')
        .filter(Boolean)
        .join('\n\n'),
      metadata: Object.fromEntries(
        layout.metadata.flatMap(([name, index]) =>
          fields[index]?.trim() ? [[name, fields[index].trim()]] : [],
        ),
      ),
    };
    if (fields.length === header.fields.length) return { line, value };
    const problem = new DocumentParseError(
      fileName,
      line,
      `has ${fields.length} fields; the header has ${header.fields.length}`,
    );
    return { line, value, problem };
  });
  const parsed = parseRecords(fileName, records);
  return syntaxError ? { ...parsed, failures: [...parsed.failures, syntaxError] } : parsed;
}

/** The id of a JSON Lines value, if it has a valid one (its other fields may be bad). */
function readableId(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const record = value as { id?: unknown; _id?: unknown };
  const parsed = documentIdSchema.safeParse(record.id ?? record._id);
  return parsed.success ? parsed.data : undefined;
}

function parseJsonDocument(
  fileName: string,
  line: number | undefined,
  value: unknown,
  fallbackId: string | undefined,
): SourceDocument {
  const parsed = jsonDocumentSchema.safeParse(value);
  if (!parsed.success) {
    const reason = parsed.error.issues
      .map((issue) => `${issue.path.length ? `${issue.path.join('.')}: ` : ''}${issue.message}`)
      .join('; ');
    throw new DocumentParseError(fileName, line, reason);
  }
  const { id, _id, title, text, metadata } = parsed.data;
  const documentId = id ?? _id ?? fallbackId;
  if (!documentId) throw new DocumentParseError(fileName, line, 'missing "id" (or BEIR "_id")');
  return {
    id: documentId,
    ...(title?.trim() ? { title: title.trim() } : {}),
    text,
    metadata: metadata ?? {},
  };
}

function parseMarkupDocument(
  fileName: string,
  format: 'text' | 'markdown' | 'html',
  text: string,
): SourceDocument {
  const id = documentIdFromFileName(fileName);
  if (format === 'text') return { id, text: text.trim(), metadata: {} };
  if (format === 'markdown') {
    const heading = /^#{1,6}[ \t]+(.+?)[ \t#]*$/m.exec(text)?.[1];
    return {
      id,
      ...(heading ? { title: removeMarkdown(heading).trim() } : {}),
      text: removeMarkdown(text).trim(),
      metadata: {},
    };
  }
  const titleTag = /<title[^>]*>([\s\S]*?)<\/title>/i.exec(text)?.[1];
  const firstHeading = /<h1[^>]*>([\s\S]*?)<\/h1>/i.exec(text)?.[1];
  const title = htmlToPlainText(titleTag ?? firstHeading ?? '').trim();
  return { id, ...(title ? { title } : {}), text: htmlToPlainText(text).trim(), metadata: {} };
}

/** html-to-text settings compiled once: visible text only, no upper-casing, no link targets. */
const convertHtml = compileHtmlToText({
  wordwrap: false,
  selectors: [
    { selector: 'a', options: { ignoreHref: true } },
    { selector: 'img', format: 'skip' },
    { selector: 'script', format: 'skip' },
    { selector: 'style', format: 'skip' },
    { selector: 'head', format: 'skip' },
    { selector: 'nav', format: 'skip' },
    ...['h1', 'h2', 'h3', 'h4', 'h5', 'h6'].map((selector) => ({ selector, options: { uppercase: false } })),
    { selector: 'table', format: 'dataTable', options: { uppercaseHeaderCells: false } },
  ],
});

/** Visible text of an HTML page: scripts, styles, images and link targets dropped; no upper-casing. */
export function htmlToPlainText(html: string): string {
  return convertHtml(html);
}
