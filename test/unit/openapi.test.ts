import { readFileSync } from 'node:fs';
import { Validator } from '@seriousme/openapi-schema-validator';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { documentBodySchema } from '../../functions/core/documents.js';
import { buildOpenApiDocument } from '../../functions/core/openapi.js';
import { searchRequestSchema } from '../../functions/core/search-engine.js';
import { createQueryApp, type QueryRouteDependencies } from '../../functions/handlers/query-routes.js';
import { QUERY_ROUTES } from '../../infra/constructs/query-api.js';
import { API_TYPES_FILE, generateApiTypes } from '../../infra/local/api-types.js';

const document = buildOpenApiDocument();
const operations = (paths: Record<string, Record<string, unknown>>) =>
  Object.entries(paths)
    .flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`))
    .sort();

describe('OpenAPI document', () => {
  it('is a valid OpenAPI 3.1 document (checked against the official 3.1 JSON Schema)', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(document));
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
  });

  it('documents every route of the query app, and no route the app does not have', () => {
    // Routes are registered without touching their dependencies: the app is only listed here.
    const app = createQueryApp({} as QueryRouteDependencies);
    const appRoutes = [
      ...new Set(
        app.routes
          .filter((route) => route.method !== 'ALL')
          .map(
            (route) =>
              `${route.method} ${route.path.replace(/:(\w+)(\{[^}]*\})?/g, (_match, name: string) => `{${name}}`)}`,
          ),
      ),
    ].sort();
    expect(appRoutes).toEqual(operations(document.paths));
    expect(appRoutes).toContain('GET /openapi.json');
  });

  it('API Gateway routes exactly the documented operations (greedy {docId+} is {docId})', () => {
    const gateway = QUERY_ROUTES.flatMap((route) =>
      route.methods.map((method) => `${method} ${route.path.replace('{docId+}', '{docId}')}`),
    ).sort();
    expect(gateway).toEqual(operations(document.paths));
  });

  it('describes requests with the schemas that validate them (input side: defaults optional)', () => {
    const strip = (schema: Record<string, unknown>) => {
      const { $schema: _dialect, ...rest } = schema;
      return rest;
    };
    const body = (path: string, method: string) =>
      (
        document.paths[path]?.[method] as
          | { requestBody: { content: Record<string, { schema: unknown }> } }
          | undefined
      )?.requestBody.content['application/json']?.schema;
    expect(body('/search', 'post')).toEqual(strip(z.toJSONSchema(searchRequestSchema, { io: 'input' })));
    expect(body('/documents/{docId}', 'put')).toEqual(
      strip(z.toJSONSchema(documentBodySchema, { io: 'input' })),
    );
    // The filter is described as what it accepts, not as "anything" (its check runs before the record).
    expect(body('/search', 'post')).toMatchObject({
      properties: { filter: { type: 'object', additionalProperties: { anyOf: expect.any(Array) } } },
      required: ['query'],
      additionalProperties: false,
    });
    const listing = document.paths['/documents']?.get as {
      parameters: Array<{ name: string; schema: unknown }>;
    };
    expect(listing.parameters.map((parameter) => parameter.name)).toEqual(['limit', 'cursor', 'status']);
    expect(listing.parameters[0]?.schema).toMatchObject({
      type: 'integer',
      minimum: 1,
      maximum: 1000,
      default: 100,
    });
  });

  it('the committed client types are what the current contract generates (npm run generate:client)', async () => {
    expect(await generateApiTypes(document)).toBe(readFileSync(API_TYPES_FILE, 'utf8'));
  });
});
