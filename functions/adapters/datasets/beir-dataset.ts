import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseTextDocumentFile, type SourceDocument } from '../../core/documents.js';
import type { Qrels } from '../../core/eval-metrics.js';

/** A BEIR-layout dataset: `corpus.jsonl`, `queries.jsonl`, `qrels/<split>.tsv`. */
export interface BeirDataset {
  readonly corpus: SourceDocument[];
  /** Query id → text, for the judged queries of the split. */
  readonly queries: Map<string, string>;
  readonly qrels: Qrels;
  /** Lines left out, and why (a bad line never aborts a run). */
  readonly skipped: {
    readonly corpus: Array<{ line?: number; reason: string }>;
    readonly queries: Array<{ line: number; queryId?: string; reason: string }>;
    readonly qrels: Array<{ line: number; reason: string }>;
  };
}

/**
 * Read a BEIR dataset directory. Corpus lines go through the same parser as uploads; every file
 * may have CRLF line ends; qrels may have a header line and graded judgements (any integer grade,
 * > 0 relevant). A bad line of any file is left out and reported in `skipped`, never fatal.
 */
export function readBeirDataset(directory: string, split = 'test'): BeirDataset {
  for (const file of ['corpus.jsonl', 'queries.jsonl', join('qrels', `${split}.tsv`)]) {
    if (!existsSync(join(directory, file)))
      throw new Error(`${directory} is not a BEIR dataset: ${file} is missing`);
  }
  const parsed = parseTextDocumentFile('corpus.jsonl', readFileSync(join(directory, 'corpus.jsonl')));
  const skipped: BeirDataset['skipped'] = {
    corpus: parsed.failures.map((failure) => ({
      ...(failure.line !== undefined ? { line: failure.line } : {}),
      reason: failure.message,
    })),
    queries: [],
    qrels: [],
  };
  const qrels = new Map<string, Map<string, number>>();
  const qrelLines = readFileSync(join(directory, 'qrels', `${split}.tsv`), 'utf8').split(/\r?\n/);
  qrelLines.forEach((line, index) => {
    if (!line.trim()) return;
    const [queryId, docId, grade, extra] = line.split('\t');
    if (index === 0 && queryId === 'query-id') return;
    // TREC-style qrels carry an iteration column: query, 0, doc, grade.
    const [query, doc, value] = extra !== undefined ? [queryId, grade, extra] : [queryId, docId, grade];
    const number = Number(value);
    if (!query || !doc || value === undefined || !Number.isInteger(number)) {
      skipped.qrels.push({ line: index + 1, reason: 'expected query-id, corpus-id and an integer score' });
      return;
    }
    const judgements = qrels.get(query) ?? new Map<string, number>();
    judgements.set(doc, number);
    qrels.set(query, judgements);
  });
  const queries = new Map<string, string>();
  readFileSync(join(directory, 'queries.jsonl'), 'utf8')
    .split(/\r?\n/)
    .forEach((line, index) => {
      if (!line.trim()) return;
      let query: { _id?: unknown; text?: unknown };
      try {
        query = JSON.parse(line) as typeof query;
      } catch {
        skipped.queries.push({ line: index + 1, reason: 'invalid JSON' });
        return;
      }
      const id = query?._id === undefined || query?._id === null ? '' : String(query._id);
      if (!id || typeof query.text !== 'string') {
        skipped.queries.push({
          line: index + 1,
          ...(id ? { queryId: id } : {}),
          reason: 'needs _id and text',
        });
        return;
      }
      if (qrels.has(id)) queries.set(id, query.text);
    });
  return { corpus: parsed.documents, queries, qrels, skipped };
}
