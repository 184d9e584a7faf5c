/**
 * Time passing, with a clock the test advances and DynamoDB TTL emulated as AWS applies it:
 * nothing that expires may remove what is still counted on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectionFromEnvironment, dynamoDocumentClient } from '../../functions/adapters/aws/aws-clients.js';
import { SearchTable } from '../../functions/adapters/aws/search-table.js';
import { expireItems } from '../../infra/local/dynamodb-ttl.js';
import { type LocalAws, startLocalAws } from '../../infra/local/emulators.js';

let aws: LocalAws;
beforeAll(async () => {
  aws = await startLocalAws();
});
afterAll(() => aws?.stop());

describe('a quiet week', () => {
  it('change-log sequences never go backwards after TTL removed every entry', async () => {
    let now = Date.parse('2026-12-01T00:00:00Z');
    const client = dynamoDocumentClient(aws.connection);
    const table = new SearchTable(client, aws.names.tableName, { clock: () => now });
    for (const docId of ['a', 'b', 'c']) await table.announce(docId);
    expect(await table.latestSequence()).toBe(3);
    // A snapshot built now would hold watermark 3; then nothing happens for eight days.
    now += 8 * 24 * 3600 * 1000;
    expect(await expireItems(client, aws.names.tableName, Math.floor(now / 1000))).toBe(3);
    expect(await table.changesAfter(0)).toEqual([]);
    expect(await table.latestSequence()).toBe(3);
    // The next change is numbered above the watermark, so query instances and the reindex see it.
    expect(await table.announce('d')).toBe(4);
  });
});

describe('modelled AWS latency (BISEARCH_SIMULATED_LATENCY_MS)', () => {
  it('delays every call, so a loop of sequential calls costs what it would on AWS', async () => {
    const connection = connectionFromEnvironment({ ...aws.environment, BISEARCH_SIMULATED_LATENCY_MS: '20' });
    expect(connection.latencyMs).toBe(20);
    const table = new SearchTable(dynamoDocumentClient(connection), aws.names.tableName);
    const started = performance.now();
    for (let call = 0; call < 10; call += 1) await table.documentStatus(`missing-${call}`);
    // A lower bound only: each call waited its 20 ms before it was sent.
    expect(performance.now() - started).toBeGreaterThanOrEqual(200);
    expect(connectionFromEnvironment(aws.environment).latencyMs).toBeUndefined();
  });
});
