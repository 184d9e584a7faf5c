/**
 * Time passing, with a clock the test advances and DynamoDB TTL emulated as AWS applies it:
 * nothing that expires may remove what is still counted on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dynamoDocumentClient } from '../../functions/adapters/aws-clients.js';
import { SearchTable } from '../../functions/adapters/search-table.js';
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
