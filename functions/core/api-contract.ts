/**
 * The HTTP API's contract as zod schemas: what each route takes (the very schemas that validate
 * requests: `searchRequestSchema`, `documentBodySchema`, `documentIdSchema`, the listing query
 * below) and what it answers. `openapi.ts` turns this table into the OpenAPI 3.1 document served at
 * `GET /openapi.json`; the typed client (`functions/client`) is generated from that document.
 */
import { z } from 'zod';
import { MAX_DOCUMENT_ID_LENGTH } from './document-ids.js';
import { documentBodySchema, documentIdSchema } from './documents.js';
import { searchRequestSchema } from './search-engine.js';

/** Version of the HTTP API (the OpenAPI document's `info.version`), raised when the contract changes. */
export const API_VERSION = '1.1.0';

const scalarSchema = z.union([z.string(), z.number(), z.boolean()]);
/** A metadata value as stored and returned: a scalar or a list of scalars. */
const metadataSchema = z
  .record(z.string(), z.union([scalarSchema, z.array(scalarSchema)]))
  .meta({ description: 'Document metadata; PDF chunks carry `page` and `pageEnd` (1-based).' });

/** Query of `GET /documents`: `limit` 1–1,000 (default 100), an opaque `cursor`, a `status`. */
export const documentListQuerySchema = z
  .object({
    limit: z.coerce.number().int().min(1).max(1_000).default(100),
    cursor: z.string().max(4_096).optional().meta({ description: 'the `nextCursor` of the previous page' }),
    status: z.enum(['indexed', 'failed', 'deleted']).optional(),
  })
  .strict();

/**
 * The `{docId}` path parameter: the path's text, checked by {@link documentIdSchema} (the path
 * carries a string, never the number a JSON body may hold). Ids may contain `/`.
 */
export const documentIdParameterSchema = z
  .string()
  .min(1)
  .max(MAX_DOCUMENT_ID_LENGTH)
  .meta({ description: 'document id; may contain `/` (the route is greedy)' })
  // documentIdSchema also takes the numbers a JSON body may hold; a path only ever gives it text.
  .pipe(documentIdSchema as unknown as z.ZodType<string, string>);

/** `{"error": {"code", "message"}}`: every error answer. */
export const errorResponseSchema = z
  .object({
    error: z.object({ code: z.string(), message: z.string() }).strict(),
  })
  .strict();

/** A document's state: `pending` while a change of it is not processed yet. */
const documentStateSchema = z.enum(['pending', 'indexed', 'failed', 'deleted']);

const documentErrorSchema = z.object({ code: z.string(), message: z.string() }).strict();

/** One result of `POST /search`: a document represented by its best-matching chunk. */
export const searchResultSchema = z
  .object({
    docId: z.string(),
    chunkId: z.string(),
    score: z.number().meta({
      description: 'cosine similarity (dense), BM25 (lexical), fused score (hybrid) or reranker logit',
    }),
    scores: z
      .object({
        dense: z.number().optional(),
        lexical: z.number().optional(),
        fused: z.number().optional(),
        rerank: z.number().optional(),
      })
      .strict()
      .meta({
        description: 'the parts of the score; a part is absent when its ranking did not produce the result',
      }),
    text: z.string(),
    highlights: z
      .array(z.tuple([z.number().int(), z.number().int()]))
      .meta({ description: '`[start, end)` offsets in `text` of the query terms as BM25 matches them' }),
    title: z.string().optional(),
    metadata: metadataSchema,
  })
  .strict();

/** Answer of `POST /search`. */
export const searchResponseSchema = z
  .object({
    results: z.array(searchResultSchema),
    index: z
      .object({
        version: z.string().nullable(),
        deltaSize: z.number().int(),
        lagMs: z.number().meta({
          description:
            'every change announced longer ago than this is in the answer; -1 before the first read',
        }),
      })
      .strict(),
    timingsMs: z
      .object({
        embed: z.number(),
        dense: z.number(),
        lexical: z.number(),
        fusion: z.number(),
        search: z.number(),
        rerank: z.number(),
        hydrate: z.number(),
        total: z.number(),
      })
      .strict()
      .meta({ description: 'milliseconds spent in each stage' }),
  })
  .strict();

/** Answer of `GET /health`. */
export const healthResponseSchema = z
  .object({
    status: z.enum(['ok', 'degraded']),
    index: z
      .object({
        version: z.string().nullable(),
        vectors: z.number().int(),
        builtAt: z.string().nullable(),
        deltaSize: z.number().int(),
        expansionSearch: z.number().int().nullable().meta({
          description: "the served version's HNSW search ef, chosen at build for its recall target",
        }),
        recall: z
          .object({
            target: z.number(),
            k: z.number().int(),
            measured: z.number(),
            reached: z.boolean(),
            connectivity: z.number().int(),
          })
          .strict()
          .nullable()
          .meta({
            description:
              "ANN recall@k against exact search, as the version's build measured it on held-out queries; null for versions built before tuning",
          }),
      })
      .strict(),
    model: z
      .object({ id: z.string(), dimensions: z.number().int(), fingerprint: z.string().optional() })
      .strict(),
    autoReindex: z
      .object({
        deltaChunks: z.number().int(),
        requestedAt: z.string().nullable(),
        outcome: z.enum(['started', 'already-started', 'failed']).nullable(),
      })
      .strict()
      .optional(),
    freshness: z.object({ lagMs: z.number(), sequence: z.number().int(), catchingUp: z.boolean() }).strict(),
  })
  .strict();

/** Answer of `GET /documents/{docId}`. */
export const documentStatusResponseSchema = z
  .object({
    docId: z.string(),
    status: documentStateSchema,
    chunks: z.number().int(),
    updatedAt: z.string().optional(),
    error: documentErrorSchema.optional(),
  })
  .strict();

/** Answer of `GET /documents`: one page of document states. */
export const documentListResponseSchema = z
  .object({
    documents: z.array(
      z
        .object({
          docId: z.string(),
          status: documentStateSchema,
          chunks: z.number().int(),
          updatedAt: z.string(),
          error: documentErrorSchema.optional(),
        })
        .strict(),
    ),
    nextCursor: z.string().optional().meta({ description: 'absent on the last page' }),
  })
  .strict();

/** Answer of `PUT` and `DELETE /documents/{docId}`: accepted, processed asynchronously. */
export const documentAcceptedResponseSchema = z
  .object({ docId: z.string(), status: z.literal('pending') })
  .strict();

/** Answer of `GET /openapi.json`: an OpenAPI 3.1 document. */
export const openApiDocumentSchema = z.record(z.string(), z.unknown()).meta({
  description: 'the OpenAPI 3.1 document of this API',
});

/** One response of a route: its description and body schema. */
export interface ApiResponse {
  readonly description: string;
  readonly schema: z.ZodType;
}

/** One route of the HTTP API, in OpenAPI terms (`{docId}` path templates). */
export interface ApiRoute {
  readonly method: 'get' | 'post' | 'put' | 'delete';
  readonly path: string;
  readonly operationId: string;
  readonly summary: string;
  readonly description?: string;
  readonly pathParameters?: Readonly<Record<string, z.ZodType>>;
  readonly query?: z.ZodObject;
  readonly body?: z.ZodType;
  readonly responses: Readonly<Record<number, ApiResponse>>;
}

const error = (description: string): ApiResponse => ({ description, schema: errorResponseSchema });
const badRequest = error('invalid request (`INVALID_REQUEST`, `INVALID_JSON`, …)');
const internal = error('internal error (details are logged, never returned)');

/** Every route of the HTTP API. `createQueryApp` registers each (a test checks both ways). */
export const API_ROUTES: readonly ApiRoute[] = [
  {
    method: 'post',
    path: '/search',
    operationId: 'search',
    summary: 'Search the index (hybrid, dense or lexical), with metadata filters and optional rerank',
    body: searchRequestSchema,
    responses: {
      200: { description: 'the best document per result, best first', schema: searchResponseSchema },
      400: badRequest,
      413: error('body larger than 192 KiB'),
      415: error('body not sent as application/json'),
      500: internal,
    },
  },
  {
    method: 'get',
    path: '/documents',
    operationId: 'listDocuments',
    summary: 'List documents with their state, page by page',
    description: 'Pages follow the table order; the cursor is stable while documents change.',
    query: documentListQuerySchema,
    responses: {
      200: { description: 'one page', schema: documentListResponseSchema },
      400: badRequest,
      500: internal,
    },
  },
  {
    method: 'put',
    path: '/documents/{docId}',
    operationId: 'putDocument',
    summary: 'Create or replace a document (indexed asynchronously)',
    pathParameters: { docId: documentIdParameterSchema },
    body: documentBodySchema,
    responses: {
      202: {
        description: 'accepted; follow it with GET /documents/{docId}',
        schema: documentAcceptedResponseSchema,
      },
      400: badRequest,
      409: error('the id belongs to an uploaded file'),
      413: error('body larger than 1 MiB'),
      415: error('body not sent as application/json'),
      500: internal,
    },
  },
  {
    method: 'get',
    path: '/documents/{docId}',
    operationId: 'getDocument',
    summary: 'The state of one document',
    pathParameters: { docId: documentIdParameterSchema },
    responses: {
      200: {
        description: 'its state (`pending` while a change is not processed)',
        schema: documentStatusResponseSchema,
      },
      400: badRequest,
      404: error('no such document'),
      500: internal,
    },
  },
  {
    method: 'delete',
    path: '/documents/{docId}',
    operationId: 'deleteDocument',
    summary: 'Remove a document (asynchronously)',
    pathParameters: { docId: documentIdParameterSchema },
    responses: {
      202: { description: 'accepted', schema: documentAcceptedResponseSchema },
      400: badRequest,
      404: error('no such document'),
      409: error('the document is one line or row of a multi-document file'),
      500: internal,
    },
  },
  {
    method: 'get',
    path: '/health',
    operationId: 'health',
    summary: 'Index version, model, delta size and freshness of the answering instance',
    responses: { 200: { description: 'health', schema: healthResponseSchema }, 500: internal },
  },
  {
    method: 'get',
    path: '/openapi.json',
    operationId: 'openApi',
    summary: 'This API description (OpenAPI 3.1)',
    responses: { 200: { description: 'the document', schema: openApiDocumentSchema } },
  },
];
