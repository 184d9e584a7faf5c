import { DeleteCommand, type DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { TABLE_KEYS } from '../resources.js';

/**
 * DynamoDB Time to Live, which dynalite lacks: delete every item whose TTL attribute (epoch
 * seconds) is before `nowSeconds`. AWS does this in the background, typically within a few days
 * of expiry; the local stack runs it every minute and tests call it with a clock they advance,
 * so anything that expires is exercised here before it meets AWS.
 *
 * @returns how many items were deleted.
 */
export async function expireItems(
  client: DynamoDBDocumentClient,
  tableName: string,
  nowSeconds: number,
): Promise<number> {
  let deleted = 0;
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await client.send(
      new ScanCommand({
        TableName: tableName,
        FilterExpression: '#ttl < :now',
        ExpressionAttributeNames: { '#ttl': TABLE_KEYS.timeToLiveAttribute },
        ExpressionAttributeValues: { ':now': nowSeconds },
        ProjectionExpression: 'pk, sk',
        ...(startKey ? { ExclusiveStartKey: startKey } : {}),
      }),
    );
    for (const item of page.Items ?? []) {
      await client.send(new DeleteCommand({ TableName: tableName, Key: { pk: item.pk, sk: item.sk } }));
      deleted += 1;
    }
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return deleted;
}
