import http from 'node:http';
import https from 'node:https';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ApiGatewayManagementApiClient } from '@aws-sdk/client-apigatewaymanagementapi';
import { NodeHttpHandler } from '@smithy/node-http-handler';

/**
 * The one place that decides where AWS calls go. In AWS every endpoint is the SDK default; in
 * the local stack and in tests they come from `AWS_ENDPOINT_URL_*` (the SDK's own convention) or
 * from options. Handlers and the agent never construct clients themselves: they receive an
 * `AwsClients` (a default built from the environment on first use, or one a test passes in).
 */

export type Service = 'dynamodb' | 'dynamodbstreams' | 'sqs' | 'secretsmanager';

export interface ClientOptions {
  readonly region: string;
  readonly endpoints?: Partial<Record<Service, string>>;
  readonly credentials?: { accessKeyId: string; secretAccessKey: string };
  /** Sockets per host kept alive; fan-out sets it to its delivery concurrency. */
  readonly maxSockets?: number;
  /** Overrides the per-request timeout of every client (tests shorten it). */
  readonly requestTimeoutMs?: number;
}

const ENDPOINT_ENV: Record<Service, string> = {
  dynamodb: 'AWS_ENDPOINT_URL_DYNAMODB',
  dynamodbstreams: 'AWS_ENDPOINT_URL_DYNAMODB_STREAMS',
  sqs: 'AWS_ENDPOINT_URL_SQS',
  secretsmanager: 'AWS_ENDPOINT_URL_SECRETS_MANAGER',
};

export function clientOptionsFromEnv(env: Readonly<Record<string, string | undefined>> = process.env): ClientOptions {
  const endpoints: Partial<Record<Service, string>> = {};
  for (const [service, key] of Object.entries(ENDPOINT_ENV) as [Service, string][]) {
    const v = env[key] ?? env.AWS_ENDPOINT_URL;
    if (v) endpoints[service] = v;
  }
  // DynamoDB Local serves its streams API on the same port as the tables.
  if (!endpoints.dynamodbstreams && endpoints.dynamodb) endpoints.dynamodbstreams = endpoints.dynamodb;
  return { region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1', endpoints };
}

export interface AwsClients {
  readonly dynamodb: DynamoDBClient;
  /** Document client: plain JS values in and out; undefined attributes dropped. */
  readonly doc: DynamoDBDocumentClient;
  readonly streams: DynamoDBStreamsClient;
  readonly sqs: SQSClient;
  readonly secrets: SecretsManagerClient;
  /**
   * A DynamoDB document client with a keep-alive pool of its own (`maxSockets` connections; one
   * per name, same endpoint and credentials as `doc`): for the few calls that must not queue
   * behind bulk traffic in `doc`'s pool — the agent's heartbeat, which cuts every socket when it
   * is late.
   */
  dedicatedDoc(name: string, maxSockets: number): DynamoDBDocumentClient;
  /** Management API client for one WebSocket API stage endpoint (cached per endpoint). */
  management(endpoint: string): ApiGatewayManagementApiClient;
  destroy(): void;
}

/**
 * Keep-alive agents: without them every PostToConnection pays a TCP (and TLS) handshake.
 * Timeouts: the SDK's default is none at all, so a half-open keep-alive socket can hang a call
 * forever — fatal for lease renewal, which must fail (and let the lease lapse locally) rather
 * than wait. `throwOnRequestTimeout` makes requestTimeout an error instead of a warning.
 */
export function keepAliveHandler(maxSockets = 50, requestTimeoutMs = DEFAULT_REQUEST_TIMEOUT_MS): NodeHttpHandler {
  return new NodeHttpHandler({
    httpAgent: new http.Agent({ keepAlive: true, maxSockets }),
    httpsAgent: new https.Agent({ keepAlive: true, maxSockets }),
    connectionTimeout: CONNECTION_TIMEOUT_MS,
    requestTimeout: requestTimeoutMs,
    throwOnRequestTimeout: true,
  });
}

export const CONNECTION_TIMEOUT_MS = 3_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** SQS long polls wait up to 20 s (ReceiveMessageWaitTimeSeconds) before answering. */
export const SQS_REQUEST_TIMEOUT_MS = 30_000;

export function createClients(opts: ClientOptions = clientOptionsFromEnv()): AwsClients {
  const common = (service: Service, maxSockets = opts.maxSockets) => ({
    region: opts.region,
    ...(opts.endpoints?.[service] ? { endpoint: opts.endpoints[service] } : {}),
    ...(opts.credentials ? { credentials: opts.credentials } : {}),
    requestHandler: keepAliveHandler(
      maxSockets,
      opts.requestTimeoutMs ?? (service === 'sqs' ? SQS_REQUEST_TIMEOUT_MS : DEFAULT_REQUEST_TIMEOUT_MS),
    ),
  });
  const docOf = (client: DynamoDBClient) =>
    DynamoDBDocumentClient.from(client, {
      marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
    });
  const dynamodb = new DynamoDBClient(common('dynamodb'));
  const doc = docOf(dynamodb);
  const dedicated = new Map<string, { client: DynamoDBClient; doc: DynamoDBDocumentClient }>();
  const streams = new DynamoDBStreamsClient(common('dynamodbstreams'));
  const sqs = new SQSClient(common('sqs'));
  const secrets = new SecretsManagerClient(common('secretsmanager'));
  const managers = new Map<string, ApiGatewayManagementApiClient>();
  return {
    dynamodb,
    doc,
    streams,
    sqs,
    secrets,
    dedicatedDoc(name: string, maxSockets: number) {
      let d = dedicated.get(name);
      if (!d) {
        const client = new DynamoDBClient(common('dynamodb', maxSockets));
        d = { client, doc: docOf(client) };
        dedicated.set(name, d);
      }
      return d.doc;
    },
    management(endpoint: string) {
      let c = managers.get(endpoint);
      if (!c) {
        c = new ApiGatewayManagementApiClient({
          region: opts.region,
          endpoint,
          ...(opts.credentials ? { credentials: opts.credentials } : {}),
          requestHandler: keepAliveHandler(opts.maxSockets ?? 64, opts.requestTimeoutMs),
        });
        managers.set(endpoint, c);
      }
      return c;
    },
    destroy() {
      for (const c of [dynamodb, streams, sqs, secrets, ...managers.values(), ...[...dedicated.values()].map((d) => d.client)]) c.destroy();
      managers.clear();
      dedicated.clear();
    },
  };
}
