/**
 * SigV4 signing of fetch requests for the IAM-authorised HTTP API (API Gateway, service
 * `execute-api`), with @smithy/signature-v4, the signer the AWS SDK itself uses.
 */
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';

/** AWS credentials (`accessKeyId`, `secretAccessKey`, `sessionToken`?) or an async provider of them, as the AWS SDK takes them. */
export type SigV4Credentials = ConstructorParameters<typeof SignatureV4>[0]['credentials'];

/** How to sign. Every field has a default. */
export interface SigV4Options {
  /**
   * AWS region of the API. Default: read from an `execute-api` host name
   * (`{api}.execute-api.{region}.amazonaws.com`), else `AWS_REGION`, else `us-east-1`.
   */
  readonly region?: string;
  /** Credentials or a provider of them. Default: the AWS SDK's default provider chain (env, profile, SSO, instance/container role). */
  readonly credentials?: SigV4Credentials;
  /** Signing service name. Default `execute-api` (API Gateway). */
  readonly service?: string;
  /** The signing clock (tests fix it). Default: now. */
  readonly now?: () => Date;
}

/** The region named by an API Gateway host name, if it is one. */
export function regionOfExecuteApiHost(hostname: string): string | undefined {
  return /^[^.]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$/.exec(hostname)?.[1];
}

async function defaultCredentials(): Promise<SigV4Credentials> {
  // Loaded only when signing without given credentials: the unsigned client does not need it.
  const { defaultProvider } = await import('@aws-sdk/credential-provider-node');
  return defaultProvider();
}

/**
 * Sign `request` and return a new Request carrying `authorization`, `x-amz-date`,
 * `x-amz-content-sha256` (the body's sha256) and, for temporary credentials,
 * `x-amz-security-token`. The body is read once (as text: the API takes JSON) and sent as signed.
 */
export async function signRequest(request: Request, options: SigV4Options = {}): Promise<Request> {
  const url = new URL(request.url);
  const region =
    options.region ?? regionOfExecuteApiHost(url.hostname) ?? process.env.AWS_REGION ?? 'us-east-1';
  const signer = new SignatureV4({
    service: options.service ?? 'execute-api',
    region,
    credentials: options.credentials ?? (await defaultCredentials()),
    sha256: Sha256,
  });
  const body = request.body === null ? undefined : await request.text();
  const headers: Record<string, string> = {};
  request.headers.forEach((value, name) => {
    headers[name] = value;
  });
  // The Host header fetch will send: the host name, and the port when it is not the default.
  headers.host = url.host;
  const query: Record<string, string | string[]> = {};
  for (const [name, value] of url.searchParams) {
    const previous = query[name];
    query[name] =
      previous === undefined ? value : [...(Array.isArray(previous) ? previous : [previous]), value];
  }
  const signed = await signer.sign(
    {
      method: request.method,
      protocol: url.protocol,
      hostname: url.hostname,
      ...(url.port ? { port: Number(url.port) } : {}),
      path: url.pathname,
      query,
      headers,
      ...(body !== undefined ? { body } : {}),
    },
    { signingDate: options.now?.() ?? new Date() },
  );
  const sent = new Headers();
  for (const [name, value] of Object.entries(signed.headers)) {
    // fetch sets Host from the URL itself (the same value was signed above).
    if (name.toLowerCase() !== 'host') sent.set(name, String(value));
  }
  return new Request(request.url, {
    method: request.method,
    headers: sent,
    ...(body !== undefined ? { body } : {}),
    signal: request.signal,
  });
}

/** A fetch that signs every request with {@link signRequest} before sending it with `send`. */
export function signingFetch(
  options: SigV4Options = {},
  send: (request: Request) => Promise<Response> = (request) => fetch(request),
): (input: Request) => Promise<Response> {
  return async (input) => send(await signRequest(input, options));
}
