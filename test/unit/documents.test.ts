import { describe, expect, it } from 'vitest';
import { documentIdFromFileName, parseDocumentFile } from '../../functions/core/documents.js';
import { DocumentParseError } from '../../functions/core/errors.js';

describe('parseDocumentFile', () => {
  it('reads a text file as one document whose id is the path without extension', () => {
    const { documents, failures } = parseDocumentFile('docs/help/reset.txt', '  How to reset.\n');
    expect(failures).toEqual([]);
    expect(documents).toEqual([{ id: 'help/reset', text: 'How to reset.', metadata: {} }]);
  });

  it('strips Markdown markup and takes the first heading as the title', () => {
    const markdown =
      '# Reset your *password*\n\nGo to [settings](https://x.test/s) and press **Reset**.\n\n![img](a.png)\n';
    const [document] = parseDocumentFile('reset.md', markdown).documents;
    expect(document?.title).toBe('Reset your password');
    expect(document?.text).toContain('Go to settings and press Reset.');
    expect(document?.text).not.toMatch(/\*|\]\(|https:/);
  });

  it('keeps only visible HTML text: scripts and styles dropped, <title> as title, headings not upper-cased', () => {
    const html = `<html><head><title>Billing FAQ</title><style>p{color:red}</style><script>track()</script></head>
      <body><h1>Invoices</h1><p>Download <a href="/x">your invoice</a>.</p><script>alert(1)</script></body></html>`;
    const [document] = parseDocumentFile('faq.html', html).documents;
    expect(document?.title).toBe('Billing FAQ');
    expect(document?.text).toContain('Invoices');
    expect(document?.text).toContain('Download your invoice.');
    expect(document?.text).not.toMatch(/track|alert|color|\/x/);
  });

  it('reads a JSON document with id, title, text and metadata', () => {
    const json = JSON.stringify({
      id: 'a1',
      title: 'T',
      text: 'body',
      metadata: { lang: 'en', tags: ['x', 'y'], v: 2 },
    });
    expect(parseDocumentFile('a.json', json).documents).toEqual([
      { id: 'a1', title: 'T', text: 'body', metadata: { lang: 'en', tags: ['x', 'y'], v: 2 } },
    ]);
  });

  it('accepts BEIR JSON Lines (_id) and reports a bad line by file and line without losing the others', () => {
    const lines = [
      JSON.stringify({ _id: '1', title: 'One', text: 'first', metadata: {} }),
      '{not json',
      JSON.stringify({ _id: '3', text: 42 }),
      '',
      JSON.stringify({ _id: 4, text: 'numeric id' }),
    ].join('\r\n');
    const { documents, failures } = parseDocumentFile('corpus.jsonl', lines);
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
    ['unsupported type', 'a.pdf', 'x', /unsupported file type ".pdf"/],
    ['invalid UTF-8', 'a.txt', new Uint8Array([0xff, 0xfe, 0xfd]), /not valid UTF-8/],
    ['JSON without text', 'a.json', '{"id":"x"}', /text/],
    [
      'JSON with bad metadata',
      'a.json',
      '{"id":"x","text":"t","metadata":{"k":{"nested":1}}}',
      /metadata\.k/,
    ],
    ['an empty id', 'a.json', '{"id":"  ","text":"t"}', /id must not be empty/],
  ])('rejects %s with a typed error naming the file', (_name, file, content, reason) => {
    const { documents, failures } = parseDocumentFile(file, content);
    expect(documents).toEqual([]);
    expect(failures).toHaveLength(1);
    expect(failures[0]?.fileName).toBe(file);
    expect(failures[0]?.status).toBe(400);
    expect(failures[0]?.message).toMatch(reason);
  });

  it('derives ids from upload keys', () => {
    expect(documentIdFromFileName('docs/a/b.md')).toBe('a/b');
    expect(documentIdFromFileName('./x.txt')).toBe('x');
    expect(documentIdFromFileName('noext')).toBe('noext');
  });
});

describe('JSON Lines failures', () => {
  it('a repeated id fails its line alone and keeps the first; a bad line with a readable id names it, without content', () => {
    const parsed = parseDocumentFile(
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
