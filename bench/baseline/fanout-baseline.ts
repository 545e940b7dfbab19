import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { ApiGatewayManagementApiClient, PostToConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';

/**
 * The BASELINE of the fan-out benchmark: a faithful copy of the pattern in the public AWS
 * samples (e.g. the "simple websockets chat app" and most blog posts): one unpaginated Query for
 * every subscriber of the topic, then one awaited `PostToConnection` per subscriber with a
 * default SDK client, deleting the row on `GoneException`. Not used by the product; it exists so
 * each benchmark run measures our fan-out against it on the same machine at the same moment.
 */

export interface BaselineOptions {
  readonly subscriptionsTable: string;
  readonly managementEndpoint: string;
  readonly region: string;
  readonly dynamodbEndpoint: string;
  readonly credentials: { accessKeyId: string; secretAccessKey: string };
}

interface StreamEvent {
  Records: { dynamodb?: { NewImage?: Record<string, unknown> } }[];
}

export function createBaselineHandler(o: BaselineOptions) {
  // Module-scope clients in the samples; here per handler so the benchmark can point them locally.
  const ddb = DynamoDBDocumentClient.from(new DynamoDBClient({ region: o.region, endpoint: o.dynamodbEndpoint, credentials: o.credentials }));
  const api = new ApiGatewayManagementApiClient({ region: o.region, endpoint: o.managementEndpoint, credentials: o.credentials });

  const handler = async (event: StreamEvent) => {
    let delivered = 0;
    for (const record of event.Records) {
      const item = unmarshall(record.dynamodb!.NewImage as Record<string, AttributeValue>);
      const { Items } = await ddb.send(
        new QueryCommand({
          TableName: o.subscriptionsTable,
          KeyConditionExpression: 'topic = :t',
          ExpressionAttributeValues: { ':t': item.topic },
        }),
      );
      const data = JSON.stringify({ type: 'event', topic: item.topic, seq: item.seq, data: item.data, ts: item.ts });
      for (const { connectionId } of Items ?? []) {
        try {
          await api.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: data }));
          delivered++;
        } catch (e) {
          if ((e as Error).name === 'GoneException') {
            await ddb.send(new DeleteCommand({ TableName: o.subscriptionsTable, Key: { topic: item.topic, connectionId } }));
          } else {
            throw e;
          }
        }
      }
    }
    return { delivered };
  };
  return Object.assign(handler, {
    destroy() {
      ddb.destroy();
      api.destroy();
    },
  });
}
