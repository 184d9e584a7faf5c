import { Annotations, CfnOutput, Duration } from 'aws-cdk-lib';
import {
  type CfnStage,
  CorsHttpMethod,
  HttpApi,
  HttpMethod,
  type IHttpRouteAuthorizer,
} from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer, HttpJwtAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { Metric, type MetricOptions } from 'aws-cdk-lib/aws-cloudwatch';
import { Alias } from 'aws-cdk-lib/aws-lambda';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { StackConfig } from '../config.js';
import { bisearchFunction } from './bisearch-function.js';
import type { RuntimeLayers } from './layers.js';
import { acknowledgeBucketGrants } from './nag.js';
import type { SearchStorage } from './storage.js';

export interface QueryApiProps {
  readonly storage: SearchStorage;
  readonly layers: RuntimeLayers;
  readonly config: Pick<
    StackConfig,
    | 'provisionedConcurrency'
    | 'queryMemoryMb'
    | 'ephemeralStorageMb'
    | 'auth'
    | 'jwtIssuer'
    | 'jwtAudience'
    | 'corsOrigins'
    | 'throttleRateLimit'
    | 'throttleBurstLimit'
  >;
}

/** Request headers CORS allows: JSON bodies, SigV4 (IAM) or JWT authorisation. */
export const CORS_ALLOW_HEADERS = [
  'content-type',
  'authorization',
  'x-amz-date',
  'x-amz-security-token',
  'x-amz-content-sha256',
] as const;

/**
 * Routes of the HTTP API (greedy `{docId+}`: ids may contain `/`): the paths of the OpenAPI
 * document (`functions/core/api-contract.ts`; test/unit/openapi.test.ts keeps the two equal).
 */
export const QUERY_ROUTES: Array<{ path: string; methods: HttpMethod[] }> = [
  { path: '/search', methods: [HttpMethod.POST] },
  { path: '/documents', methods: [HttpMethod.GET] },
  { path: '/documents/{docId+}', methods: [HttpMethod.PUT, HttpMethod.GET, HttpMethod.DELETE] },
  { path: '/health', methods: [HttpMethod.GET] },
  // The API description, behind the same authoriser as the API it describes.
  { path: '/openapi.json', methods: [HttpMethod.GET] },
];

/**
 * API Gateway HTTP API → query Lambda through the `live` alias, with provisioned concurrency
 * (0 turns it off), /tmp sized for the index, IAM authorisation by default (JWT as an option),
 * stage throttling, access logs and optional CORS.
 */
export class QueryApi extends Construct {
  /**
   * API Gateway's latency (ms, request in to response out: cold starts, init and the gateway's
   * own time included) of one route, from the stage's detailed metrics.
   */
  routeLatency(method: string, path: string, props: MetricOptions = {}): Metric {
    return new Metric({
      namespace: 'AWS/ApiGateway',
      metricName: 'Latency',
      dimensionsMap: { ApiId: this.httpApi.apiId, Stage: this.stageName, Method: method, Resource: path },
      ...props,
    });
  }

  readonly queryFunction: NodejsFunction;
  readonly alias: Alias;
  readonly httpApi: HttpApi;
  /** Name of the stage requests arrive on (`$default`). */
  readonly stageName: string;

  constructor(scope: Construct, id: string, props: QueryApiProps) {
    super(scope, id);
    const { storage, config } = props;
    this.queryFunction = bisearchFunction(this, 'Query', {
      handlerFile: 'query',
      description: 'bisearch: search API over the memory-mapped index and its delta',
      memoryMb: config.queryMemoryMb,
      timeout: Duration.seconds(29),
      ephemeralStorageMb: config.ephemeralStorageMb,
      layers: props.layers,
      // The reranker ships in its own layer: the synth machine's path means nothing in Lambda.
      ...(props.layers.reranker ? { extraLayers: [props.layers.reranker] } : {}),
      environment: {
        ...storage.functionEnvironment(),
        ...(props.layers.rerankerMountPath ? { BISEARCH_RERANKER_DIR: props.layers.rerankerMountPath } : {}),
      },
    });
    // Reads everything it serves; writes API uploads/deletes. Reads the documents bucket too:
    // GET /documents/{id} compares an object's ETag with the one processed (HEAD needs
    // s3:GetObject, and s3:ListBucket for a missing key to answer 404 rather than 403).
    storage.table.grantReadWriteData(this.queryFunction);
    storage.indexBucket.grantRead(this.queryFunction);
    storage.documentsBucket.grantRead(this.queryFunction);
    storage.documentsBucket.grantPut(this.queryFunction);
    storage.documentsBucket.grantDelete(this.queryFunction);
    acknowledgeBucketGrants(this.queryFunction, storage.indexBucket, [
      's3:GetObject*',
      's3:GetBucket*',
      's3:List*',
    ]);
    acknowledgeBucketGrants(this.queryFunction, storage.documentsBucket, [
      's3:DeleteObject*',
      's3:Abort*',
      's3:GetObject*',
      's3:GetBucket*',
      's3:List*',
    ]);

    this.alias = new Alias(this, 'Live', {
      aliasName: 'live',
      version: this.queryFunction.currentVersion,
      ...(config.provisionedConcurrency > 0
        ? { provisionedConcurrentExecutions: config.provisionedConcurrency }
        : {}),
    });
    if (config.provisionedConcurrency === 0) {
      Annotations.of(this.alias).addInfo(
        'bisearch: provisioned concurrency is off (the default), so the first query after idle pays a cold start. ' +
          'Turn it on with -c provisionedConcurrency=1 once the account has concurrency to spare ' +
          '(it reserves from the regional quota, which is 10 on new accounts).',
      );
    }

    const authorizer: IHttpRouteAuthorizer =
      config.auth === 'jwt'
        ? new HttpJwtAuthorizer('Jwt', config.jwtIssuer as string, {
            jwtAudience: config.jwtAudience as string[],
          })
        : new HttpIamAuthorizer();
    this.httpApi = new HttpApi(this, 'Api', {
      description: 'bisearch search API',
      defaultAuthorizer: authorizer,
      ...(config.corsOrigins.length > 0
        ? {
            corsPreflight: {
              allowOrigins: config.corsOrigins,
              allowMethods: [
                CorsHttpMethod.GET,
                CorsHttpMethod.POST,
                CorsHttpMethod.PUT,
                CorsHttpMethod.DELETE,
              ],
              // What a browser's SigV4 signing sends (x-amz-content-sha256 included).
              allowHeaders: [...CORS_ALLOW_HEADERS],
              maxAge: Duration.hours(1),
            },
          }
        : {}),
    });
    const integration = new HttpLambdaIntegration('QueryIntegration', this.alias);
    for (const route of QUERY_ROUTES)
      this.httpApi.addRoutes({ path: route.path, methods: route.methods, integration });

    const accessLogs = new LogGroup(this, 'AccessLogs', { retention: RetentionDays.ONE_MONTH });
    const stage = this.httpApi.defaultStage?.node.defaultChild as CfnStage;
    stage.defaultRouteSettings = {
      throttlingRateLimit: config.throttleRateLimit,
      throttlingBurstLimit: config.throttleBurstLimit,
      // Per-route metrics (ApiId, Stage, Method, Resource): the latency alarm watches /search alone.
      detailedMetricsEnabled: true,
    };
    stage.accessLogSettings = {
      destinationArn: accessLogs.logGroupArn,
      format: JSON.stringify({
        requestId: '$context.requestId',
        ip: '$context.identity.sourceIp',
        requestTime: '$context.requestTime',
        routeKey: '$context.routeKey',
        status: '$context.status',
        responseLength: '$context.responseLength',
        latency: '$context.responseLatency',
        integrationError: '$context.integrationErrorMessage',
      }),
    };
    this.stageName = this.httpApi.defaultStage?.stageName ?? '$default';
    new CfnOutput(this, 'ApiUrl', {
      value: this.httpApi.apiEndpoint,
      description: 'bisearch HTTP API endpoint',
    });
  }
}
