import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createBisearchClient, regionOfExecuteApiHost, signRequest } from '../../functions/client/index.js';

/** AWS's example credentials and clock of the SigV4 test suite (aws-sig-v4-test-suite). */
const ACCESS_KEY = 'AKIDEXAMPLE';
const SECRET_KEY = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
const AMZ_DATE = '20150830T123600Z';
const NOW = () => new Date('2015-08-30T12:36:00Z');

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();

/**
 * An independent SigV4 verifier (node:crypto, written from AWS's description of the algorithm):
 * the signature of a canonical request. Checked against AWS's published vector below.
 */
function expectedSignature(request: {
  method: string;
  canonicalPath: string;
  canonicalQuery: string;
  headers: Record<string, string>;
  signedHeaders: string[];
  payloadHash: string;
  region: string;
  service: string;
}): string {
  const canonical = [
    request.method,
    request.canonicalPath,
    request.canonicalQuery,
    ...request.signedHeaders.map((name) => `${name}:${request.headers[name]?.trim()}`),
    '',
    request.signedHeaders.join(';'),
    request.payloadHash,
  ].join('\n');
  const scope = `${AMZ_DATE.slice(0, 8)}/${request.region}/${request.service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', AMZ_DATE, scope, sha256(canonical)].join('\n');
  let key = hmac(`AWS4${SECRET_KEY}`, AMZ_DATE.slice(0, 8));
  for (const part of [request.region, request.service, 'aws4_request']) key = hmac(key, part);
  return hmac(key, stringToSign).toString('hex');
}

describe('SigV4 signing (bisearch/client)', () => {
  it("the verifier reproduces AWS's published get-vanilla signature", () => {
    expect(
      expectedSignature({
        method: 'GET',
        canonicalPath: '/',
        canonicalQuery: '',
        headers: { host: 'example.amazonaws.com', 'x-amz-date': AMZ_DATE },
        signedHeaders: ['host', 'x-amz-date'],
        payloadHash: sha256(''),
        region: 'us-east-1',
        service: 'service',
      }),
    ).toBe('5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31');
  });

  it('signs a POST /search for execute-api: signed headers present, the signature verifies, the body is sent as signed', async () => {
    const body = JSON.stringify({ query: 'refund', k: 3 });
    const signed = await signRequest(
      new Request('https://abc123.execute-api.eu-west-1.amazonaws.com/search?b=2&a=1', {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json' },
      }),
      {
        credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY, sessionToken: 'session-token' },
        now: NOW,
      },
    );
    const headers = Object.fromEntries(signed.headers);
    expect(headers['x-amz-date']).toBe(AMZ_DATE);
    expect(headers['x-amz-content-sha256']).toBe(sha256(body));
    expect(headers['x-amz-security-token']).toBe('session-token');
    const authorization =
      /^AWS4-HMAC-SHA256 Credential=(.+?), SignedHeaders=(.+?), Signature=([0-9a-f]{64})$/.exec(
        headers.authorization ?? '',
      );
    // Region from the execute-api host name, service execute-api.
    expect(authorization?.[1]).toBe(`${ACCESS_KEY}/20150830/eu-west-1/execute-api/aws4_request`);
    const signedHeaders = (authorization?.[2] ?? '').split(';');
    expect(signedHeaders).toEqual(
      expect.arrayContaining([
        'content-type',
        'host',
        'x-amz-content-sha256',
        'x-amz-date',
        'x-amz-security-token',
      ]),
    );
    const verify = (payload: string) =>
      expectedSignature({
        method: 'POST',
        canonicalPath: '/search',
        canonicalQuery: 'a=1&b=2',
        headers: { ...headers, host: 'abc123.execute-api.eu-west-1.amazonaws.com' },
        signedHeaders,
        payloadHash: sha256(payload),
        region: 'eu-west-1',
        service: 'execute-api',
      });
    expect(authorization?.[3]).toBe(verify(body));
    expect(authorization?.[3]).not.toBe(verify(`${body} `));
    expect(await signed.text()).toBe(body);
    // fetch sets Host from the URL; the signed value is that one.
    expect(signed.headers.has('host')).toBe(false);
  });

  it('the typed client signs every request when asked, and only then', async () => {
    const sent: Request[] = [];
    const capture = async (request: Request) => {
      sent.push(request);
      return Response.json({ status: 'ok' });
    };
    const credentials = { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY };
    await createBisearchClient({
      baseUrl: 'http://127.0.0.1:9/',
      signing: { region: 'us-east-1', credentials, now: NOW },
      fetch: capture,
    }).GET('/health');
    await createBisearchClient({ baseUrl: 'http://127.0.0.1:9', fetch: capture }).GET('/health');
    expect(sent[0]?.url).toBe('http://127.0.0.1:9/health');
    expect(sent[0]?.headers.get('authorization')).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/20150830\/us-east-1\/execute-api\/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=/,
    );
    expect(sent[1]?.headers.get('authorization')).toBeNull();
  });

  it('reads the region of API Gateway host names', () => {
    expect(regionOfExecuteApiHost('a1b2c3.execute-api.ap-southeast-2.amazonaws.com')).toBe('ap-southeast-2');
    expect(regionOfExecuteApiHost('search.example.com')).toBeUndefined();
  });
});
