import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseTextDocumentFile, type SourceDocument } from '../core/documents.js';
import type { Qrels } from '../core/eval-metrics.js';

/** A BEIR-layout dataset: `corpus.jsonl`, `queries.jsonl`, `qrels/<split>.tsv`. */
export interface BeirDataset {
  readonly corpus: SourceDocument[];
  /** Query id → text, for the judged queries of the split. */
  readonly queries: Map<string, string>;
  readonly qrels: Qrels;
}

/**
 * Read a BEIR dataset directory. Corpus lines go through the same parser as uploads (a bad line is
 * reported, not fatal); qrels accept CRLF line endings and a header line, as BEIR ships them.
 */
export function readBeirDataset(directory: string, split = 'test'): BeirDataset {
  for (const file of ['corpus.jsonl', 'queries.jsonl', join('qrels', `${split}.tsv`)]) {
    if (!existsSync(join(directory, file)))
      throw new Error(`${directory} is not a BEIR dataset: ${file} is missing`);
  }
  const parsed = parseTextDocumentFile('corpus.jsonl', readFileSync(join(directory, 'corpus.jsonl')));
  if (parsed.failures.length > 0) {
    throw new Error(`corpus has ${parsed.failures.length} bad lines, first: ${parsed.failures[0]?.message}`);
  }
  const qrels = new Map<string, Map<string, number>>();
  for (const line of readFileSync(join(directory, 'qrels', `${split}.tsv`), 'utf8').split(/\r?\n/)) {
    const [queryId, docId, grade] = line.split('\t');
    if (!queryId || !docId || grade === undefined || queryId === 'query-id') continue;
    const judgements = qrels.get(queryId) ?? new Map<string, number>();
    judgements.set(docId, Number(grade));
    qrels.set(queryId, judgements);
  }
  const queries = new Map<string, string>();
  for (const line of readFileSync(join(directory, 'queries.jsonl'), 'utf8').split(/\r?\n/)) {
    if (!line.trim()) continue;
    const { _id, text } = JSON.parse(line) as { _id: string; text: string };
    if (qrels.has(String(_id))) queries.set(String(_id), text);
  }
  return { corpus: parsed.documents, queries, qrels };
}
