import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { documentIdFromFileName, parseDocumentFile } from '../../functions/core/documents.js';
import { DocumentParseError } from '../../functions/core/errors.js';

describe('parseDocumentFile', async () => {
  it('reads a text file as one document whose id is the path without extension', async () => {
    const { documents, failures } = await parseDocumentFile('docs/help/reset.txt', '  How to reset.\n');
    expect(failures).toEqual([]);
    expect(documents).toEqual([{ id: 'help/reset', text: 'How to reset.', metadata: {} }]);
  });

  it('strips Markdown markup and takes the first heading as the title', async () => {
    const markdown =
      '# Reset your *password*\n\nGo to [settings](https://x.test/s) and press **Reset**.\n\n![img](a.png)\n';
    const [document] = (await parseDocumentFile('reset.md', markdown)).documents;
    expect(document?.title).toBe('Reset your password');
    expect(document?.text).toContain('Go to settings and press Reset.');
    expect(document?.text).not.toMatch(/\*|\]\(|https:/);
  });

  it('keeps only visible HTML text: scripts and styles dropped, <title> as title, headings not upper-cased', async () => {
    const html = `<html><head><title>Billing FAQ</title><style>p{color:red}</style><script>track()</script></head>
      <body><h1>Invoices</h1><p>Download <a href="/x">your invoice</a>.</p><script>alert(1)</script></body></html>`;
    const [document] = (await parseDocumentFile('faq.html', html)).documents;
    expect(document?.title).toBe('Billing FAQ');
    expect(document?.text).toContain('Invoices');
    expect(document?.text).toContain('Download your invoice.');
    expect(document?.text).not.toMatch(/track|alert|color|\/x/);
  });

  it('reads a JSON document with id, title, text and metadata', async () => {
    const json = JSON.stringify({
      id: 'a1',
      title: 'T',
      text: 'body',
      metadata: { lang: 'en', tags: ['x', 'y'], v: 2 },
    });
    expect((await parseDocumentFile('a.json', json)).documents).toEqual([
      { id: 'a1', title: 'T', text: 'body', metadata: { lang: 'en', tags: ['x', 'y'], v: 2 } },
    ]);
  });

  it('accepts BEIR JSON Lines (_id) and reports a bad line by file and line without losing the others', async () => {
    const lines = [
      JSON.stringify({ _id: '1', title: 'One', text: 'first', metadata: {} }),
      '{not json',
      JSON.stringify({ _id: '3', text: 42 }),
      '',
      JSON.stringify({ _id: 4, text: 'numeric id' }),
    ].join('\r\n');
    const { documents, failures } = await parseDocumentFile('corpus.jsonl', lines);
    expect(documents.map((document) => document.id)).toEqual(['1', '4']);
    expect(failures).toHaveLength(2);
    expect(failures[0]).toBeInstanceOf(DocumentParseError);
    expect(failures.map((failure) => [failure.fileName, failure.line, failure.code])).toEqual([
      ['corpus.jsonl', 2, 'DOCUMENT_INVALID'],
      ['corpus.jsonl', 3, 'DOCUMENT_INVALID'],
    ]);
    expect(failures[0]?.message).toMatch(/^corpus\.jsonl:2: invalid JSON/);
    expect(failures[1]?.message).toMatch(/^corpus\.jsonl:3: text/);
  });

  it.each([
    ['unsupported type', 'a.doc', 'x', /unsupported file type ".doc"/],
    ['invalid UTF-8', 'a.txt', new Uint8Array([0xff, 0xfe, 0xfd]), /not valid UTF-8/],
    ['JSON without text', 'a.json', '{"id":"x"}', /text/],
    [
      'JSON with bad metadata',
      'a.json',
      '{"id":"x","text":"t","metadata":{"k":{"nested":1}}}',
      /metadata\.k/,
    ],
    ['an empty id', 'a.json', '{"id":"  ","text":"t"}', /id must not be empty/],
  ])('rejects %s with a typed error naming the file', async (_name, file, content, reason) => {
    const { documents, failures } = await parseDocumentFile(file, content);
    expect(documents).toEqual([]);
    expect(failures).toHaveLength(1);
    expect(failures[0]?.fileName).toBe(file);
    expect(failures[0]?.status).toBe(400);
    expect(failures[0]?.message).toMatch(reason);
  });

  it('derives ids from upload keys', async () => {
    expect(documentIdFromFileName('docs/a/b.md')).toBe('a/b');
    expect(documentIdFromFileName('./x.txt')).toBe('x');
    expect(documentIdFromFileName('noext')).toBe('noext');
  });
});

describe('JSON Lines failures', () => {
  it('a repeated id fails its line alone and keeps the first; a bad line with a readable id names it, without content', async () => {
    const parsed = await parseDocumentFile(
      'docs/x.jsonl',
      [
        JSON.stringify({ id: 'a', text: 'first' }),
        JSON.stringify({ id: 'a', text: 'second' }),
        '{"id": "b", "text": 5}',
        '{"id": "c", "text": "secretword',
      ].join('\n'),
    );
    expect(parsed.documents.map((document) => document.text)).toEqual(['first']);
    expect(parsed.failures.map((failure) => [failure.line, failure.code, failure.documentId])).toEqual([
      [2, 'DOCUMENT_ID_DUPLICATE', undefined],
      [3, 'DOCUMENT_INVALID', 'b'],
      [4, 'DOCUMENT_INVALID', undefined],
    ]);
    expect(parsed.failures.map((failure) => failure.message).join(' ')).not.toMatch(/secretword/);
  });
});

/** Files made by other tools (test/fixtures/documents/README.md says which and how). */
const fixture = (name: string) =>
  new Uint8Array(readFileSync(fileURLToPath(new URL(`../fixtures/documents/${name}`, import.meta.url))));

describe('PDF, DOCX and CSV', () => {
  it('reads the text layer of a PDF page by page, with the offset where each page starts', async () => {
    const { documents, failures } = await parseDocumentFile(
      'docs/specs/shared-mime-info-spec.pdf',
      fixture('shared-mime-info-spec.pdf'),
    );
    expect(failures).toEqual([]);
    const [document] = documents;
    expect(document?.id).toBe('specs/shared-mime-info-spec');
    expect(document?.pageStarts).toHaveLength(17);
    const page = (n: number) =>
      document?.text.slice(document.pageStarts?.[n - 1], document.pageStarts?.[n] ?? document.text.length) ??
      '';
    expect(page(1)).toContain('This is version 0.21 of the Shared MIME-info Database specification');
    expect(page(2)).toContain('Language used in this specification');
    expect(page(1)).not.toContain('Language used in this specification');
    // pdfTeX prints the page number as the page's last line; it is dropped (it would be a "sentence").
    expect(page(8).trimEnd()).not.toMatch(/\n8$/);
    expect(page(8).length).toBeGreaterThan(500);
  });

  it('fails a PDF without a text layer with DOCUMENT_NO_TEXT_LAYER (no OCR)', async () => {
    const { documents, failures } = await parseDocumentFile(
      'docs/scanned-page.pdf',
      fixture('scanned-page.pdf'),
    );
    expect(documents).toEqual([]);
    expect(failures.map((failure) => [failure.code, failure.documentId, failure.line])).toEqual([
      ['DOCUMENT_NO_TEXT_LAYER', 'scanned-page', undefined],
    ]);
    expect(failures[0]?.message).toMatch(
      /^docs\/scanned-page\.pdf: the PDF has no text layer .*does not run OCR/,
    );
  });

  it('fails bytes that are not a PDF, or a PDF given as text, with a reason', async () => {
    const notPdf = await parseDocumentFile('docs/manual.pdf', new TextEncoder().encode('%PDF-1.4 nothing'));
    expect(notPdf.failures.map((failure) => [failure.code, failure.reason])).toEqual([
      ['DOCUMENT_INVALID', expect.stringMatching(/PDF/)],
    ]);
    expect((await parseDocumentFile('a.pdf', 'text')).failures[0]?.reason).toMatch(/given as bytes/);
  });

  it('reads a DOCX made by pandoc: the Title paragraph as title, headings, paragraphs and table cells as text', async () => {
    const { documents, failures } = await parseDocumentFile(
      'docs/hr/travel-policy.docx',
      fixture('travel-policy.docx'),
    );
    expect(failures).toEqual([]);
    const [document] = documents;
    expect(document?.id).toBe('hr/travel-policy');
    expect(document?.title).toBe('Travel expense policy');
    expect(document?.text).toContain('Mileage reimbursement');
    expect(document?.text).toContain('thirty cents per kilometre');
    expect(document?.text).toMatch(/Europe\s+60 EUR/);
    expect(document?.pageStarts).toBeUndefined();
  });

  it('fails a .docx that is not a Word file', async () => {
    const { failures } = await parseDocumentFile('old.docx', fixture('scanned-page.pdf'));
    expect(failures.map((failure) => [failure.code, failure.reason])).toEqual([
      ['DOCUMENT_INVALID', 'not a readable Word (.docx) file'],
    ]);
  });

  it('reads one document per CSV row by the id/title/text header; other columns are metadata; bad rows fail alone', async () => {
    const { documents, failures } = await parseDocumentFile('docs/faq.csv', fixture('faq.csv'));
    expect(documents.map((document) => document.id)).toEqual(['ship-1', 'ship-2', 'pay-1', 'pay-2']);
    expect(documents[2]).toEqual({
      id: 'pay-1',
      title: 'Refund timing',
      text: 'Refunds go back to the original payment method within five to ten working days.',
      metadata: { category: 'payments', audience: 'customers, partners' },
    });
    expect(failures.map((failure) => [failure.line, failure.code, failure.documentId])).toEqual([
      [4, 'DOCUMENT_INVALID', undefined],
      [6, 'DOCUMENT_ID_DUPLICATE', undefined],
    ]);
    expect(failures[0]?.message).toMatch(/^docs\/faq\.csv:4: id: /);
    expect(failures[1]?.message).toBe('docs/faq.csv:6: repeats the id of line 2; the first is kept');
  });

  it('names CSV rows by the line they start on (quoted line breaks), fails a short row alone and keeps the rows before a syntax error', async () => {
    const csv = [
      '\uFEFFkey,body,lang',
      'a,"two',
      'lines",en',
      'b,short',
      '',
      'c,"fine, with a comma",fr',
      'd,"never closed,en',
      'e,lost,en',
    ].join('\r\n');
    const columns = { id: 'key', text: 'body', metadata: ['lang'] };
    const { documents, failures } = await parseDocumentFile('t.csv', csv, { csvColumns: columns });
    expect(documents).toEqual([
      { id: 'a', text: 'two\nlines', metadata: { lang: 'en' } },
      { id: 'c', text: 'fine, with a comma', metadata: { lang: 'fr' } },
    ]);
    expect(failures.map((failure) => [failure.line, failure.documentId, failure.reason])).toEqual([
      [4, 'b', 'has 2 fields; the header has 3'],
      [8, undefined, 'a quoted field is never closed; the rows from here on are not read'],
    ]);
  });

  it('fails a whole CSV whose header lacks the id or a mapped column', async () => {
    expect((await parseDocumentFile('t.csv', 'name,text\nx,y\n')).failures[0]?.message).toBe(
      't.csv:1: the header has no "id" (or "_id") column; name one, or map one',
    );
    const mapped = await parseDocumentFile('t.csv', 'id,text\nx,y\n', { csvColumns: { text: 'body' } });
    expect(mapped.failures.map((failure) => failure.reason)).toEqual([
      'the text column "body" is not in the header',
    ]);
    expect(mapped.documents).toEqual([]);
  });

  it('takes column roles as JSON text (S3 metadata) and fails the file on bad JSON or unknown roles', async () => {
    const csv = 'sku,name,description,notes,shelf\nA-1,Kettle,Boils water.,Descale monthly.,B2\n';
    const roles = JSON.stringify({
      id: 'sku',
      title: 'name',
      text: ['description', 'notes'],
      metadata: ['shelf'],
    });
    expect((await parseDocumentFile('p.csv', csv, { csvColumns: roles })).documents).toEqual([
      { id: 'A-1', title: 'Kettle', text: 'Boils water.\n\nDescale monthly.', metadata: { shelf: 'B2' } },
    ]);
    const notJson = await parseDocumentFile('p.csv', csv, { csvColumns: '{id:' });
    expect(notJson.failures.map((failure) => [failure.line, failure.reason])).toEqual([
      [undefined, 'the CSV column roles are not valid JSON'],
    ]);
    const unknown = await parseDocumentFile('p.csv', csv, { csvColumns: '{"key":"sku"}' });
    expect(unknown.failures[0]?.reason).toMatch(/^the CSV column roles are invalid: .*key/);
  });
});
