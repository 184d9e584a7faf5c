/**
 * `bisearch/langchain`: a LangChain.js retriever over the bisearch HTTP API. Needs
 * `@langchain/core` (an optional peer dependency: install it beside bisearch); nothing in the
 * Lambda bundles imports this module.
 *
 * ```ts
 * const retriever = new BisearchRetriever({ url: 'http://127.0.0.1:3000', k: 4 });
 * const documents = await retriever.invoke('how do I get a refund');
 * ```
 */
import type { CallbackManagerForRetrieverRun } from '@langchain/core/callbacks/manager';
import { Document } from '@langchain/core/documents';
import { BaseRetriever, type BaseRetrieverInput } from '@langchain/core/retrievers';
import { type BisearchClient, createBisearchClient, type SearchRequest, type SearchResult } from './index.js';
import type { SigV4Options } from './sigv4.js';

/** What a retrieved Document's metadata holds, besides the document's own metadata fields. */
export interface BisearchDocumentMetadata extends Record<string, unknown> {
  readonly docId: string;
  readonly chunkId: string;
  readonly title?: string;
  /** The result's score (its meaning depends on the mode, see the API). */
  readonly score: number;
  /** Its parts: `dense`, `lexical`, `fused`, `rerank` when present. */
  readonly scores: SearchResult['scores'];
  /** `[start, end)` offset pairs of the query terms in `pageContent`. */
  readonly highlights: ReadonlyArray<readonly number[]>;
  /** First and last page of a PDF chunk (1-based). */
  readonly page?: number;
  readonly pageEnd?: number;
}

/** Options of {@link BisearchRetriever}. */
export interface BisearchRetrieverInput extends BaseRetrieverInput {
  /** Base URL of the API (the local stack's, or a deployed stack's `QueryApiUrl`). */
  readonly url: string;
  /** Documents per query, 1–100. Default 4. */
  readonly k?: number;
  /** Retrieval mode. Default `hybrid`. */
  readonly mode?: SearchRequest['mode'];
  /** Metadata filter sent with every query (see the API's `filter`). */
  readonly filter?: SearchRequest['filter'];
  /** Rerank with the deployment's cross-encoder (the API's default when one is configured). */
  readonly rerank?: boolean;
  /**
   * SigV4-sign requests (service `execute-api`) for an IAM-authorised deployment: `true` for the
   * default credential chain and the region of the URL, or options (`credentials`, `region`).
   */
  readonly signing?: boolean | SigV4Options;
  /** Headers for every request (e.g. a JWT `authorization`). */
  readonly headers?: Record<string, string>;
  /** Send through this client instead of one made from the options above. */
  readonly client?: BisearchClient;
}

/**
 * A retriever over `POST /search`: each result becomes a Document whose `pageContent` is the
 * matching chunk's text and whose metadata holds the document's metadata (e.g. `page`, `pageEnd`
 * for PDFs, any uploaded fields) plus `docId`, `chunkId`, `title`, `score`, `scores` and
 * `highlights` (these win over document fields of the same name). `id` is the chunk id.
 */
export class BisearchRetriever extends BaseRetriever<BisearchDocumentMetadata> {
  static override lc_name(): string {
    return 'BisearchRetriever';
  }

  override lc_namespace = ['bisearch', 'retrievers'];

  private readonly client: BisearchClient;
  private readonly request: Omit<SearchRequest, 'query'>;

  constructor(fields: BisearchRetrieverInput) {
    super(fields);
    this.client =
      fields.client ??
      createBisearchClient({
        baseUrl: fields.url,
        ...(fields.signing ? { signing: fields.signing } : {}),
        ...(fields.headers ? { headers: fields.headers } : {}),
      });
    this.request = {
      k: fields.k ?? 4,
      ...(fields.mode ? { mode: fields.mode } : {}),
      ...(fields.filter ? { filter: fields.filter } : {}),
      ...(fields.rerank !== undefined ? { rerank: fields.rerank } : {}),
    };
  }

  override async _getRelevantDocuments(
    query: string,
    _runManager?: CallbackManagerForRetrieverRun,
  ): Promise<Document<BisearchDocumentMetadata>[]> {
    const { data, error, response } = await this.client.POST('/search', {
      body: { ...this.request, query },
    });
    if (!data)
      throw new Error(
        `bisearch search failed: ${error?.error?.code ?? response.status} ${error?.error?.message ?? ''}`.trim(),
      );
    return data.results.map(
      (result) =>
        new Document<BisearchDocumentMetadata>({
          id: result.chunkId,
          pageContent: result.text,
          metadata: {
            ...result.metadata,
            docId: result.docId,
            chunkId: result.chunkId,
            ...(result.title !== undefined ? { title: result.title } : {}),
            score: result.score,
            scores: result.scores,
            highlights: result.highlights,
          },
        }),
    );
  }
}
