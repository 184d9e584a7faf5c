import { Hono } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { z } from 'zod';
import { DocumentBucket } from '../adapters/aws/document-bucket.js';
import type { SearchTable } from '../adapters/aws/search-table.js';
import type { SearchRuntime } from '../adapters/services/search-runtime.js';
import {
  type documentAcceptedResponseSchema,
  documentIdParameterSchema,
  documentListQuerySchema,
  type documentListResponseSchema,
  type documentStatusResponseSchema,
  type healthResponseSchema,
  type searchResponseSchema,
} from '../core/api-contract.js';
import { documentBodySchema, isMultiDocumentFile } from '../core/documents.js';
import { BisearchError, InvalidRequestError } from '../core/errors.js';
import { buildOpenApiDocument, type OpenApiDocument } from '../core/openapi.js';
import type { SearchTimings } from '../core/search-engine.js';

/** What a route answers, as its contract schema (`api-contract.ts`) describes it: checked at compile time. */
type Answer<Schema extends z.ZodType> = z.input<Schema>;

/** Largest accepted `POST /search` body, bytes (a 32,768-character query of 4-byte characters, plus the rest). */
export const MAX_SEARCH_BODY_BYTES = 192 * 1024;
/** Largest accepted `PUT /documents/{docId}` body, bytes (API Gateway allows 10 MB; documents this big belong in S3 uploads). */
export const MAX_DOCUMENT_BODY_BYTES = 1024 * 1024;

export interface QueryRouteDependencies {
  readonly runtime: SearchRuntime;
  readonly table: SearchTable;
  readonly documents: DocumentBucket;
  /** Called with unexpected errors (logged with the stack; the client sees a generic 500). */
  readonly onUnexpectedError: (error: unknown) => void;
  /** Called after each search with its timings and result count (metrics). */
  readonly onSearch?: (timings: SearchTimings, results: number) => void;
}

const cursorSchema = z
  .object({ pk: z.string().min(1).max(2_048), sk: z.string().min(1).max(2_048) })
  .strict();

/** The table key a listing page ended on, as an opaque URL-safe string. */
function encodeCursor(key: { pk: string; sk: string }): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

function decodeCursor(cursor: string): { pk: string; sk: string } {
  try {
    return cursorSchema.parse(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')));
  } catch {
    throw new BisearchError('INVALID_CURSOR', 400, 'cursor: not a cursor this API returned');
  }
}

class PayloadTooLargeError extends BisearchError {
  constructor(limit: number) {
    super('PAYLOAD_TOO_LARGE', 413, `request body is larger than ${limit} bytes`);
  }
}

/**
 * The HTTP API of the query Lambda: `POST /search`, `GET /documents` (a page of statuses),
 * `PUT|GET|DELETE /documents/{docId}`, `GET /health`, `GET /openapi.json` (the contract of all of them,
 * `core/api-contract.ts`). Every error is answered as `{"error": {"code", "message"}}` by one handler:
 * typed errors with their status, anything else as a generic 500 without internals.
 */
export function createQueryApp(dependencies: QueryRouteDependencies): Hono {
  const { runtime, table, documents } = dependencies;
  const app = new Hono();

  const readJson = async (body: string, limit: number, contentType: string | undefined): Promise<unknown> => {
    if (!/^application\/(.+\+)?json\b/i.test(contentType ?? '')) {
      throw new BisearchError('UNSUPPORTED_MEDIA_TYPE', 415, 'send the body as application/json');
    }
    if (Buffer.byteLength(body) > limit) throw new PayloadTooLargeError(limit);
    try {
      return JSON.parse(body);
    } catch {
      throw new BisearchError('INVALID_JSON', 400, 'the body is not valid JSON');
    }
  };
  /**
   * The document id of a `/documents/{docId}` request, decoded exactly once. On AWS, API Gateway
   * HTTP APIs deliver `rawPath` already URL-decoded, so it is taken as it is; decoding it again
   * would alias ids (`pct%2541` → `pct%41` → `pctA`) and fail on a literal `%`. Only when the app
   * runs without a Lambda event is the request URL decoded (strictly: bad encoding is a 400).
   */
  const documentId = (c: { env?: unknown; req: { url: string } }): string => {
    const event = (c.env as { event?: { rawPath?: string } } | undefined)?.event;
    let path = event?.rawPath;
    if (path === undefined) {
      try {
        path = decodeURIComponent(new URL(c.req.url).pathname);
      } catch {
        throw new InvalidRequestError('docId: the path is not valid URL encoding');
      }
    }
    const raw = path.slice(path.indexOf('/documents/') + '/documents/'.length);
    const parsed = documentIdParameterSchema.safeParse(raw);
    if (!parsed.success)
      throw new InvalidRequestError(`docId: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
    if (parsed.data !== raw) throw new InvalidRequestError('docId: must not start or end with whitespace');
    return parsed.data;
  };
  /** Whether the object's current version (or its removal) has not been processed yet. */
  const unprocessed = async (key: string): Promise<boolean> => {
    const [etag, source] = await Promise.all([documents.head(key), table.sourceHead(key)]);
    return (etag ?? '') !== (source?.etag ?? '');
  };

  app.post('/search', async (c) => {
    const request = await readJson(await c.req.text(), MAX_SEARCH_BODY_BYTES, c.req.header('content-type'));
    const response = await runtime.search(request as never);
    dependencies.onSearch?.(response.timingsMs, response.results.length);
    return c.json(response satisfies Answer<typeof searchResponseSchema>);
  });

  app.put('/documents/:docId{.+}', async (c) => {
    const docId = documentId(c);
    const body = documentBodySchema.safeParse(
      await readJson(await c.req.text(), MAX_DOCUMENT_BODY_BYTES, c.req.header('content-type')),
    );
    if (!body.success) {
      throw new InvalidRequestError(
        body.error.issues.map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`).join('; '),
      );
    }
    const key = DocumentBucket.keyForDocumentId(docId);
    const status = await table.documentStatus(docId);
    // One source per document: an id an uploaded file defines is changed through that file.
    if (status && status.status !== 'deleted' && status.sourceKey !== key) {
      throw new BisearchError(
        'CONFLICT',
        409,
        `document ${docId} comes from ${status.sourceKey}; change that file, or remove it before writing ${docId} here`,
      );
    }
    await documents.putDocument({ id: docId, ...body.data });
    return c.json(
      { docId, status: 'pending' } as const satisfies Answer<typeof documentAcceptedResponseSchema>,
      202,
    );
  });

  app.delete('/documents/:docId{.+}', async (c) => {
    const docId = documentId(c);
    const status = await table.documentStatus(docId);
    const apiKey = DocumentBucket.keyForDocumentId(docId);
    const key = status && status.status !== 'deleted' ? status.sourceKey : apiKey;
    if (isMultiDocumentFile(key)) {
      throw new BisearchError(
        'CONFLICT',
        409,
        `document ${docId} comes from ${key}, which holds other documents too; remove its line or row from that file instead`,
      );
    }
    if ((!status || status.status === 'deleted') && (await documents.head(apiKey)) === undefined)
      throw new BisearchError('NOT_FOUND', 404, `no document ${docId}`);
    await documents.delete(key);
    return c.json(
      { docId, status: 'pending' } as const satisfies Answer<typeof documentAcceptedResponseSchema>,
      202,
    );
  });

  app.get('/documents', async (c) => {
    const query = documentListQuerySchema.safeParse(c.req.query());
    if (!query.success)
      throw new InvalidRequestError(
        query.error.issues.map((issue) => `${issue.path.join('.') || 'query'}: ${issue.message}`).join('; '),
      );
    const { limit, cursor, status } = query.data;
    const page = await table.listStatuses({
      limit,
      ...(cursor ? { after: decodeCursor(cursor) } : {}),
      ...(status ? { state: status } : {}),
    });
    const answer: Answer<typeof documentListResponseSchema> = {
      documents: page.statuses.map((document) => ({
        docId: document.docId,
        status: document.status,
        chunks: document.chunks,
        updatedAt: document.updatedAt,
        ...(document.error ? { error: document.error } : {}),
      })),
      ...(page.next ? { nextCursor: encodeCursor(page.next) } : {}),
    };
    return c.json(answer);
  });

  app.get('/documents/:docId{.+}', async (c) => {
    const docId = documentId(c);
    const status = await table.documentStatus(docId);
    const apiKey = DocumentBucket.keyForDocumentId(docId);
    // Pending while a write or removal of its object is not processed yet: compared by ETag with
    // what the encoder recorded, so nothing can stay pending once the object's events are done.
    const keys = [...new Set([status?.sourceKey, apiKey].filter((key): key is string => Boolean(key)))];
    const pending = (await Promise.all(keys.map(unprocessed))).some(Boolean);
    if (!status && !pending) throw new BisearchError('NOT_FOUND', 404, `no document ${docId}`);
    const answer: Answer<typeof documentStatusResponseSchema> = {
      docId,
      status: pending ? 'pending' : (status?.status ?? 'pending'),
      chunks: status?.chunks ?? 0,
      ...(status?.updatedAt ? { updatedAt: status.updatedAt } : {}),
      ...(status?.error && !pending ? { error: status.error } : {}),
    };
    return c.json(answer);
  });

  app.get('/health', async (c) => {
    await runtime.refreshIfDue();
    return c.json(runtime.health() satisfies Answer<typeof healthResponseSchema>);
  });

  // Built on the first request (a few ms), then kept: the contract never changes at run time.
  let openApi: OpenApiDocument | undefined;
  app.get('/openapi.json', (c) => {
    openApi ??= buildOpenApiDocument();
    return c.json(openApi);
  });

  app.notFound((c) =>
    c.json({ error: { code: 'NOT_FOUND', message: `no route ${c.req.method} ${c.req.path}` } }, 404),
  );
  app.onError((error, c) => {
    if (error instanceof BisearchError && error.status < 500) {
      return c.json(
        { error: { code: error.code, message: error.message } },
        error.status as ContentfulStatusCode,
      );
    }
    dependencies.onUnexpectedError(error);
    return c.json({ error: { code: 'INTERNAL', message: 'internal error' } }, 500);
  });
  return app;
}
