import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { ConnectionStore } from '../stores/connections';
import type { BucketRate } from './rate-limit';
import { admitDataFrame } from './socket-gate';

/**
 * An application action (`APP_ACTIONS`) from the socket: put on the inbound queue with the
 * identity verified on $connect, for the application to consume and answer through
 * `POST /publish {"connectionId"}`. The gateway does not interpret `data`.
 */
export interface InboundMessage {
  readonly action: string;
  readonly data: unknown;
  readonly id?: string;
  readonly connectionId: string;
  readonly userId: string;
  /** The token's claims in jwt mode; absent in none mode. */
  readonly claims?: Readonly<Record<string, unknown>>;
  /** When API Gateway received the frame (epoch ms). */
  readonly receivedAt: number;
}

export interface InboundQueue {
  put(message: InboundMessage): Promise<void>;
}

export function sqsInboundQueue(sqs: SQSClient, queueUrl: string): InboundQueue {
  return {
    async put(message) {
      await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: JSON.stringify(message) }));
    },
  };
}

export async function acceptAppAction(
  connectionId: string,
  frame: { readonly action: string; readonly data: unknown; readonly id?: string },
  receivedAt: number,
  deps: { readonly connections: ConnectionStore; readonly rate: BucketRate; readonly inbound: InboundQueue },
): Promise<void> {
  const row = await admitDataFrame(connectionId, deps);
  await deps.inbound.put({
    action: frame.action,
    data: frame.data,
    ...(frame.id !== undefined ? { id: frame.id } : {}),
    connectionId,
    userId: row.userId,
    ...(row.claims ? { claims: row.claims } : {}),
    receivedAt,
  });
}
