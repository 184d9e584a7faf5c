/**
 * PDF and Word (.docx) documents, read from bytes in memory (no file system, no network).
 *
 * Libraries: unpdf for PDF, a build of Mozilla's pdf.js made for serverless runtimes (no worker
 * thread, no canvas, no DOM; it bundles with esbuild as plain JavaScript), and mammoth for DOCX,
 * which maps Word paragraph styles to HTML that the HTML path already turns into text.
 */
import mammoth from 'mammoth';
import { extractText, getDocumentProxy } from 'unpdf';
import type { SourceDocument } from './documents.js';
import { DocumentParseError } from './errors.js';

/**
 * The text layer of a PDF, page by page (joined by blank lines, so a page break is a paragraph
 * break for the chunker), with the offset where each page starts. The document's Info title, when
 * it has one, is the title. A PDF whose pages hold no text (a scan) fails with
 * `DOCUMENT_NO_TEXT_LAYER`: bisearch does not run OCR.
 */
export async function parsePdf(fileName: string, bytes: Uint8Array, id: string): Promise<SourceDocument> {
  let pages: string[];
  let title: string | undefined;
  try {
    // pdf.js takes ownership of (detaches) the buffer it is given: hand it a copy.
    // Verbosity 0: pdf.js's warnings about fonts and damaged objects stay out of the logs.
    const pdf = await getDocumentProxy(new Uint8Array(bytes), { verbosity: 0 });
    try {
      const metadata = await pdf.getMetadata().catch(() => undefined);
      const infoTitle = (metadata?.info as { Title?: unknown } | undefined)?.Title;
      title = typeof infoTitle === 'string' && infoTitle.trim() ? infoTitle.trim() : undefined;
      pages = (await extractText(pdf, { mergePages: false })).text;
    } finally {
      // Frees pdf.js's per-document state in a long-lived Lambda instance.
      await pdf.loadingTask.destroy();
    }
  } catch (error) {
    const name = (error as { name?: unknown }).name;
    const reason =
      name === 'PasswordException'
        ? 'the PDF is password-protected'
        : name === 'InvalidPDFException'
          ? 'not a readable PDF file'
          : 'the PDF could not be read';
    throw new DocumentParseError(fileName, undefined, reason, { cause: error });
  }
  const pageStarts: number[] = [];
  let text = '';
  for (const [index, page] of pages.entries()) {
    if (text) text += '\n\n';
    pageStarts.push(text.length);
    text += withoutPageNumber(page, index + 1);
  }
  if (text.trim() === '') {
    throw new DocumentParseError(
      fileName,
      undefined,
      `the PDF has no text layer (${pages.length} page${pages.length === 1 ? '' : 's'} without text, e.g. scanned images); bisearch does not run OCR: upload a PDF with text, or its text`,
      { code: 'DOCUMENT_NO_TEXT_LAYER', documentId: id },
    );
  }
  return { id, ...(title ? { title } : {}), text, metadata: {}, pageStarts };
}

/**
 * A page's text without a first or last line that is only its page number (a printed folio): as
 * a chunk's overlap it would make the chunk cite a page it has no text from.
 */
function withoutPageNumber(page: string, pageNumber: number): string {
  const lines = page.trim().split('\n');
  if (lines.length > 1 && lines.at(-1)?.trim() === String(pageNumber)) lines.pop();
  if (lines.length > 1 && lines[0]?.trim() === String(pageNumber)) lines.shift();
  return lines.join('\n').trim();
}

/**
 * Word paragraph styles mammoth does not map by default. Pandoc and Word name the document title
 * `Title`; it becomes the first `<h1>`, which the HTML path takes as the title.
 */
const DOCX_STYLE_MAP = ["p[style-name='Title'] => h1:fresh", "p[style-name='Subtitle'] => p:fresh"];

/**
 * The text of a Word document (.docx): headings, paragraphs, lists and tables, through mammoth's
 * HTML (images are dropped). The `Title` paragraph, or else the first Heading 1, is the title.
 */
export async function parseDocx(
  fileName: string,
  bytes: Uint8Array,
  id: string,
  htmlToPlainText: (html: string) => string,
): Promise<SourceDocument> {
  let html: string;
  try {
    const result = await mammoth.convertToHtml(
      { buffer: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) },
      { styleMap: DOCX_STYLE_MAP, convertImage: mammoth.images.imgElement(async () => ({ src: '' })) },
    );
    html = result.value;
  } catch (error) {
    // mammoth fails on anything that is not a zip holding word/document.xml (e.g. an old .doc).
    throw new DocumentParseError(fileName, undefined, 'not a readable Word (.docx) file', { cause: error });
  }
  const firstHeading = /<h1[^>]*>([\s\S]*?)<\/h1>/i.exec(html)?.[1];
  const title = firstHeading ? htmlToPlainText(firstHeading).trim() : '';
  return { id, ...(title ? { title } : {}), text: htmlToPlainText(html).trim(), metadata: {} };
}
