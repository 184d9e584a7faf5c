import type { LocalStatus } from './local-stack.js';

/** `bisearch status`'s line on the served version's HNSW recall and the ef that gives it. */
export function annRecallLine(index: LocalStatus['index']): string {
  if (!index.version) return '-';
  const ef = `ef ${index.expansionSearch ?? '?'}`;
  if (!index.recall) return `${ef} (version built before recall tuning: not measured)`;
  const { recall } = index;
  return `${recall.measured.toFixed(4)} recall@${recall.k} on held-out queries, target ${recall.target}${recall.reached ? '' : ' NOT reached'} (${ef}, connectivity ${recall.connectivity})`;
}
