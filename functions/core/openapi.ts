/**
 * The OpenAPI 3.1 document of the HTTP API, built from {@link API_ROUTES} with zod's own JSON
 * Schema output. OpenAPI 3.1's Schema Object is JSON Schema draft 2020-12, which is what
 * `z.toJSONSchema` emits, so the schemas go in as they are: request schemas as their input side
 * (what a client may send, defaults optional), response schemas as their output side.
 */
import { z } from 'zod';
import { API_ROUTES, API_VERSION, type ApiRoute, searchResultSchema } from './api-contract.js';

/** An OpenAPI 3.1 document as plain JSON. */
export type OpenApiDocument = Record<string, unknown> & {
  readonly openapi: string;
  readonly paths: Record<string, Record<string, unknown>>;
};

/** Schemas given a name under `components.schemas` (and so a named type in the generated client). */
const NAMED_SCHEMAS: ReadonlyArray<[string, z.ZodType]> = [['SearchResult', searchResultSchema]];

type JsonSchema = Record<string, unknown>;

function jsonSchema(schema: z.ZodType, io: 'input' | 'output', named: Map<unknown, string>): JsonSchema {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, {
    target: 'draft-2020-12',
    io,
    // A named schema inside another becomes a reference to its component.
    override: (context) => {
      const name = (context.zodSchema as unknown) !== schema ? named.get(context.zodSchema) : undefined;
      if (name) {
        for (const key of Object.keys(context.jsonSchema)) delete context.jsonSchema[key];
        context.jsonSchema.$ref = `#/components/schemas/${name}`;
      }
    },
  }) as JsonSchema;
  return rest;
}

function operation(route: ApiRoute, named: Map<unknown, string>): Record<string, unknown> {
  const parameters: unknown[] = [];
  for (const [name, schema] of Object.entries(route.pathParameters ?? {})) {
    const described = jsonSchema(schema, 'input', named);
    parameters.push({
      name,
      in: 'path',
      required: true,
      ...(typeof described.description === 'string' ? { description: described.description } : {}),
      schema: described,
    });
  }
  if (route.query) {
    const described = jsonSchema(route.query, 'input', named) as {
      properties?: Record<string, JsonSchema>;
      required?: string[];
    };
    for (const [name, schema] of Object.entries(described.properties ?? {})) {
      parameters.push({
        name,
        in: 'query',
        required: described.required?.includes(name) ?? false,
        ...(typeof schema.description === 'string' ? { description: schema.description } : {}),
        schema,
      });
    }
  }
  const responses: Record<string, unknown> = {};
  for (const [status, response] of Object.entries(route.responses)) {
    responses[status] = {
      description: response.description,
      content: { 'application/json': { schema: jsonSchema(response.schema, 'output', named) } },
    };
  }
  return {
    operationId: route.operationId,
    summary: route.summary,
    ...(route.description ? { description: route.description } : {}),
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(route.body
      ? {
          requestBody: {
            required: true,
            content: { 'application/json': { schema: jsonSchema(route.body, 'input', named) } },
          },
        }
      : {}),
    responses,
  };
}

/**
 * Build the OpenAPI 3.1 document of `routes` (default: the whole API). Pure and deterministic:
 * the same routes give the same JSON, so the generated client types can be compared with it.
 */
export function buildOpenApiDocument(routes: readonly ApiRoute[] = API_ROUTES): OpenApiDocument {
  const named = new Map<unknown, string>(NAMED_SCHEMAS.map(([name, schema]) => [schema, name]));
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    paths[route.path] ??= {};
    (paths[route.path] as Record<string, unknown>)[route.method] = operation(route, named);
  }
  const schemas = Object.fromEntries(
    NAMED_SCHEMAS.map(([name, schema]) => {
      // The component itself is written out, not a reference to itself.
      const self = new Map(named);
      self.delete(schema);
      return [name, jsonSchema(schema, 'output', self)];
    }),
  );
  return {
    openapi: '3.1.0',
    info: {
      title: 'bisearch',
      version: API_VERSION,
      description:
        'Semantic search over your documents: hybrid (dense + BM25), dense or lexical retrieval with metadata filters; documents written through the API or uploaded to S3.',
    },
    paths,
    components: {
      schemas,
      securitySchemes: {
        sigv4: {
          type: 'apiKey',
          name: 'Authorization',
          in: 'header',
          description:
            'AWS Signature Version 4 (service `execute-api`): the default authorisation of a deployed stack (IAM). The local stack needs none.',
          'x-amazon-apigateway-authtype': 'awsSigv4',
        },
        jwt: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description: 'a JWT from the configured issuer, when the stack is deployed with `-c auth=jwt`',
        },
      },
    },
    // Anonymous (the local stack), or one of the two a deployment is configured with.
    security: [{}, { sigv4: [] }, { jwt: [] }],
  };
}
