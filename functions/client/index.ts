/**
 * `bisearch/client`: a typed client of the bisearch HTTP API (openapi-fetch over the types
 * openapi-typescript generated from `GET /openapi.json`), optionally SigV4-signed for a deployed
 * stack with IAM authorisation. The `bisearch` CLI talks to the API through it.
 *
 * ```ts
 * const api = createBisearchClient({ baseUrl: 'http://127.0.0.1:3000' });
 * const { data, error } = await api.POST('/search', { body: { query: 'refund', k: 3 } });
 * ```
 */
import createClient, { type Client } from 'openapi-fetch';
import type { components, operations, paths } from './api-types.js';
import { type SigV4Options, signingFetch } from './sigv4.js';

export type { components, operations, paths } from './api-types.js';
export {
  regionOfExecuteApiHost,
  type SigV4Credentials,
  type SigV4Options,
  signingFetch,
  signRequest,
} from './sigv4.js';

/** The typed client: `GET`, `POST`, `PUT`, `DELETE` over the API's paths, bodies and answers. */
export type BisearchClient = Client<paths>;
/** Body of `POST /search`. */
export type SearchRequest = operations['search']['requestBody']['content']['application/json'];
/** Answer of `POST /search`. */
export type SearchResponse = operations['search']['responses'][200]['content']['application/json'];
/** One result of `POST /search`. */
export type SearchResult = components['schemas']['SearchResult'];
/** `{"error": {"code", "message"}}`, every error answer. */
export type ApiError = operations['search']['responses'][400]['content']['application/json'];

/** Options of {@link createBisearchClient}. */
export interface BisearchClientOptions {
  /** The API's base URL: the local stack's (`http://127.0.0.1:3000`) or a deployed stack's `QueryApiUrl` output. */
  readonly baseUrl: string;
  /**
   * Sign every request with SigV4 (service `execute-api`) for an IAM-authorised deployment:
   * `true` for the defaults (region from the URL, credentials from the default provider chain),
   * or options. Default: unsigned.
   */
  readonly signing?: boolean | SigV4Options;
  /** The fetch to send with (after signing). Default: the global fetch. */
  readonly fetch?: (request: Request) => Promise<Response>;
  /** Headers sent with every request (e.g. `authorization: Bearer …` for a JWT-authorised stack). */
  readonly headers?: Record<string, string>;
}

/** A typed client of one bisearch API. */
export function createBisearchClient(options: BisearchClientOptions): BisearchClient {
  const send = options.fetch ?? ((request: Request) => fetch(request));
  const signing = options.signing === true ? {} : options.signing || undefined;
  return createClient<paths>({
    baseUrl: options.baseUrl.replace(/\/$/, ''),
    fetch: signing ? signingFetch(signing, send) : send,
    ...(options.headers ? { headers: options.headers } : {}),
  });
}
