import {
  ApiGatewayManagementApiClient,
  DeleteConnectionCommand,
  PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';

/**
 * Posting one frame to one connection through the `@connections` management API. Fan-out and
 * the reply path both go through this interface, so the delivery strategy (SDK or the lean
 * signed-HTTP sender) can be swapped and benchmarked without touching the callers.
 *
 * Outcomes follow the wire contract: 2xx → ok; 410 GoneException → gone (the socket is closed;
 * prune its rows); 429 LimitExceededException / throttling → throttled (retry with backoff);
 * 413 PayloadTooLargeException → too_large (never retried); anything else (403, 5xx, network)
 * → error (retried: API Gateway's 5xx are transient).
 */
export type SendOutcome = 'ok' | 'gone' | 'throttled' | 'too_large' | 'error';

export interface Sender {
  send(connectionId: string, data: string): Promise<SendOutcome>;
  /**
   * DeleteConnection: closes the socket (API Gateway then runs `$disconnect`). Fan-out uses it to
   * force a subscriber it could not deliver to into a resync. Same outcomes as `send`.
   */
  disconnect(connectionId: string): Promise<SendOutcome>;
  /** Releases sockets the sender owns (not those of a shared SDK client). */
  close?(): void;
}

export function outcomeOfStatus(status: number): SendOutcome {
  if (status >= 200 && status < 300) return 'ok';
  if (status === 410) return 'gone';
  if (status === 429) return 'throttled';
  if (status === 413) return 'too_large';
  return 'error';
}

export function outcomeOfError(err: unknown): SendOutcome {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  if (e?.name === 'GoneException') return 'gone';
  if (e?.name === 'LimitExceededException' || e?.name === 'ThrottlingException' || e?.name === 'TooManyRequestsException') return 'throttled';
  if (e?.name === 'PayloadTooLargeException') return 'too_large';
  const status = e?.$metadata?.httpStatusCode;
  return status ? outcomeOfStatus(status) : 'error';
}

/** The reference sender: the AWS SDK's PostToConnection, errors mapped to outcomes. */
export class SdkSender implements Sender {
  constructor(private readonly client: ApiGatewayManagementApiClient) {}

  async send(connectionId: string, data: string): Promise<SendOutcome> {
    try {
      await this.client.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: data }));
      return 'ok';
    } catch (err) {
      return outcomeOfError(err);
    }
  }

  async disconnect(connectionId: string): Promise<SendOutcome> {
    try {
      await this.client.send(new DeleteConnectionCommand({ ConnectionId: connectionId }));
      return 'ok';
    } catch (err) {
      return outcomeOfError(err);
    }
  }
}

/**
 * A copy of a management client that makes exactly one attempt per call: fan-out does its own
 * backoff with jitter across many connections, and the SDK's built-in retries (3 attempts by
 * default) would multiply with it. Same credentials, region, endpoint and keep-alive handler.
 */
export function singleAttemptClient(base: ApiGatewayManagementApiClient, endpoint: string): ApiGatewayManagementApiClient {
  return new ApiGatewayManagementApiClient({
    region: base.config.region,
    endpoint,
    credentials: base.config.credentials,
    requestHandler: base.config.requestHandler,
    maxAttempts: 1,
  });
}
