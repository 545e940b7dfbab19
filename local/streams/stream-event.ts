import type { _Record as StreamRecord, AttributeValue } from '@aws-sdk/client-dynamodb-streams';

/**
 * DynamoDB Streams records as Lambda delivers them: JSON, so binary attributes are base64 strings
 * and ApproximateCreationDateTime is epoch seconds (the SDK hands us a Date and Uint8Arrays).
 */
export function toLambdaStreamEvent(records: StreamRecord[], streamArn: string, region = 'us-east-1') {
  return {
    Records: records.map((r) => ({
      eventID: r.eventID,
      eventName: r.eventName,
      eventVersion: r.eventVersion ?? '1.1',
      eventSource: 'aws:dynamodb',
      awsRegion: r.awsRegion ?? region,
      dynamodb: {
        ...(r.dynamodb?.ApproximateCreationDateTime
          ? { ApproximateCreationDateTime: Math.floor(new Date(r.dynamodb.ApproximateCreationDateTime).getTime() / 1000) }
          : {}),
        Keys: toJsonImage(r.dynamodb?.Keys),
        ...(r.dynamodb?.NewImage ? { NewImage: toJsonImage(r.dynamodb.NewImage) } : {}),
        ...(r.dynamodb?.OldImage ? { OldImage: toJsonImage(r.dynamodb.OldImage) } : {}),
        SequenceNumber: r.dynamodb?.SequenceNumber,
        SizeBytes: r.dynamodb?.SizeBytes,
        StreamViewType: r.dynamodb?.StreamViewType,
      },
      ...(r.userIdentity ? { userIdentity: r.userIdentity } : {}),
      eventSourceARN: streamArn,
    })),
  };
}

type JsonAttr = Record<string, unknown>;

function toJsonImage(img: Record<string, AttributeValue> | undefined): Record<string, JsonAttr> | undefined {
  if (!img) return undefined;
  const out: Record<string, JsonAttr> = {};
  for (const [k, v] of Object.entries(img)) out[k] = toJsonAttr(v);
  return out;
}

function toJsonAttr(v: AttributeValue): JsonAttr {
  if (v.B !== undefined) return { B: Buffer.from(v.B).toString('base64') };
  if (v.BS !== undefined) return { BS: v.BS.map((b) => Buffer.from(b).toString('base64')) };
  if (v.M !== undefined) return { M: toJsonImage(v.M) };
  if (v.L !== undefined) return { L: v.L.map(toJsonAttr) };
  return { ...v } as JsonAttr;
}
