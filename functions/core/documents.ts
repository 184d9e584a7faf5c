import { compile as compileHtmlToText } from 'html-to-text';
import removeMarkdown from 'remove-markdown';
import { z } from 'zod';
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

/** File extensions the parser understands, mapped to their format. */
const FORMAT_BY_EXTENSION: Record<string, 'text' | 'markdown' | 'html' | 'json' | 'jsonl'> = {
  '.txt': 'text',
  '.text': 'text',
  '.md': 'markdown',
  '.markdown': 'markdown',
  '.html': 'html',
  '.htm': 'html',
  '.json': 'json',
  '.jsonl': 'jsonl',
  '.ndjson': 'jsonl',
};

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
 * `id`, `title`, `text`, `metadata`) and `.jsonl` (one document per line; BEIR `_id` accepted).
 * A bad file yields one failure naming the file; a bad JSON Lines line yields a failure naming
 * the line and the other lines still parse.
 *
 * @param fileName path or key of the file; used for the default id and in error messages.
 * @param content the file's bytes (decoded as UTF-8) or text.
 */
export function parseDocumentFile(fileName: string, content: string | Uint8Array): ParsedDocuments {
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
  try {
    const document =
      format === 'json'
        ? parseJsonDocument(fileName, undefined, JSON.parse(text), documentIdFromFileName(fileName))
        : parseMarkupDocument(fileName, format, text);
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
  const documents: SourceDocument[] = [];
  const failures: DocumentParseError[] = [];
  const lines = text.split(/\r?\n/);
  const lineOfId = new Map<string, number>();
  for (const [index, line] of lines.entries()) {
    if (line.trim() === '') continue;
    const lineNumber = index + 1;
    let value: unknown;
    try {
      value = JSON.parse(line);
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
      // A line whose id is readable fails that document (GET /documents/{id} says why), once.
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
