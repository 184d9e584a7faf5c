import type { EmbeddedChunk } from './delta.js';

/**
 * One document of an incremental export: its chunks as they are now, or none when it was
 * deleted (or never got any) since the base version's watermark.
 */
export interface DocumentChange {
  readonly docId: string;
  readonly chunks: readonly EmbeddedChunk[];
}

/**
 * The rows of a new snapshot version from the rows of the previous one and the documents changed
 * since its watermark: every base chunk of an unchanged document, in place; a changed document's
 * chunks instead of its base chunks (nothing for a removed one); new documents where their id
 * sorts. Streams: holds one changed document at a time.
 *
 * @param base the previous version's chunks in row order (document id, then ordinal).
 * @param changes changed documents in strictly increasing document id order.
 * @throws RangeError when `changes` is out of order or a change holds another document's chunk.
 */
export async function* mergeDocumentChanges(
  base: AsyncIterable<EmbeddedChunk>,
  changes: AsyncIterable<DocumentChange>,
): AsyncGenerator<EmbeddedChunk> {
  const iterator = changes[Symbol.asyncIterator]();
  let previousId: string | undefined;
  const nextChange = async (): Promise<DocumentChange | undefined> => {
    const next = await iterator.next();
    if (next.done) return undefined;
    const change = next.value;
    if (previousId !== undefined && change.docId <= previousId)
      throw new RangeError(`changes are not in document order: ${change.docId} follows ${previousId}`);
    for (const chunk of change.chunks)
      if (chunk.docId !== change.docId)
        throw new RangeError(`the change of ${change.docId} holds chunk ${chunk.chunkId}`);
    previousId = change.docId;
    return change;
  };
  const inOrder = (change: DocumentChange) => [...change.chunks].sort((a, b) => a.ordinal - b.ordinal);

  let change = await nextChange();
  // The base document whose rows are being skipped: it was replaced or removed.
  let replaced: string | undefined;
  for await (const chunk of base) {
    if (chunk.docId === replaced) continue;
    while (change && change.docId <= chunk.docId) {
      yield* inOrder(change);
      if (change.docId === chunk.docId) replaced = chunk.docId;
      change = await nextChange();
    }
    if (chunk.docId !== replaced) yield chunk;
  }
  for (; change; change = await nextChange()) yield* inOrder(change);
}
