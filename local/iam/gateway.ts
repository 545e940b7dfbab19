import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import type { Logger } from '../../lib/log';
import type { LocalIamAuthorizer } from './authorizer';
import type { LocalSecretStore } from '../../lib/upstream/secrets-local';
import { serveSecrets } from './secrets-service';
import { accessKeyOf, checksFor, parseTarget, UnreadableRequestError, type DataPlaneService, type LocalArns } from './requests';

/**
 * The local "IAM edge": one loopback HTTP endpoint in front of DynamoDB Local (tables and
 * streams) and the SQS emulator, and the Secrets Manager calls (served over the sealed-file store). Each request is attributed to a principal by the access key id
 * in its SigV4 `Authorization` header, authorised per resource (local/iam/requests.ts), then
 * either forwarded unchanged or refused with the error AWS sends, so the real SDK (and any
 * hand-written client) sees exactly what it would see on AWS. Signatures are not verified:
 * the point is least privilege, not authentication, and every caller is on loopback.
 */

export interface IamGatewayOptions {
  readonly upstreams: Readonly<Record<'dynamodb' | 'sqs', string>>;
  readonly authorizer: LocalIamAuthorizer;
  readonly arns: LocalArns;
  /** `audit` forwards denied calls too (and logs them): for finding what a new handler needs. */
  readonly mode?: 'enforce' | 'audit';
  /** The store behind the Secrets Manager calls (local/iam/secrets-service.ts), once the stack has one. */
  readonly secrets?: () => LocalSecretStore | undefined;
  readonly log: Logger;
}

export interface RunningIamGateway {
  readonly endpoint: string;
  stop(): Promise<void>;
}

const JSON_CONTENT_TYPE: Record<DataPlaneService, string> = {
  dynamodb: 'application/x-amz-json-1.0',
  dynamodbstreams: 'application/x-amz-json-1.0',
  sqs: 'application/x-amz-json-1.0',
  secretsmanager: 'application/x-amz-json-1.1',
};

export async function startIamGateway(opts: IamGatewayOptions): Promise<RunningIamGateway> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const server = http.createServer((req, res) => {
    readAll(req).then(
      (body) => handle(opts, agent, req, res, body),
      (err: unknown) => {
        opts.log.warn('iam.gateway.read_failed', { err });
        res.destroy();
      },
    );
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        agent.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function handle(opts: IamGatewayOptions, agent: http.Agent, req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> {
  let service: DataPlaneService;
  let denial;
  try {
    const target = parseTarget(header(req, 'x-amz-target'));
    service = target.service;
    const parsed = body.length ? (JSON.parse(body.toString('utf8')) as Record<string, unknown>) : {};
    const checks = checksFor(opts.arns, service, target.operation, parsed);
    denial = await opts.authorizer.authorize(accessKeyOf(header(req, 'authorization')), checks);
  } catch (err) {
    if (err instanceof UnreadableRequestError || err instanceof SyntaxError) {
      return reply(res, 400, 'application/x-amz-json-1.0', {
        __type: 'com.amazon.coral.validate#ValidationException',
        message: `local IAM gateway: ${(err as Error).message}`,
      });
    }
    opts.log.error('iam.gateway.failed', { err });
    return reply(res, 500, 'application/x-amz-json-1.0', { __type: 'com.amazonaws.dynamodb.v20120810#InternalServerError', message: String(err) });
  }
  if (denial) {
    opts.log.warn('iam.denied', { action: denial.action, resource: denial.resource, mode: opts.mode ?? 'enforce' });
    if (opts.mode !== 'audit') {
      // DynamoDB and SQS (JSON protocol) both answer 400 with this type; SQS adds the query
      // error code its SDK maps for callers of the older XML API.
      return reply(
        res,
        400,
        JSON_CONTENT_TYPE[service],
        { __type: 'com.amazon.coral.service#AccessDeniedException', Message: denial.message, message: denial.message },
        service === 'sqs' ? { 'x-amzn-query-error': 'AccessDenied;Sender' } : {},
      );
    }
  }
  if (service === 'secretsmanager') {
    const store = opts.secrets?.();
    if (!store) return reply(res, 400, JSON_CONTENT_TYPE.secretsmanager, { __type: 'InvalidRequestException', message: 'local Secrets Manager: no secret store configured' });
    try {
      const out = await serveSecrets(store, opts.arns, parseTarget(header(req, 'x-amz-target')).operation, JSON.parse(body.toString('utf8') || '{}') as Record<string, unknown>);
      return reply(res, out.status, JSON_CONTENT_TYPE.secretsmanager, out.payload);
    } catch (err) {
      // Never the value: a wrong key or a tampered file is named by its class only.
      opts.log.error('iam.secrets.failed', { name: (err as Error)?.name });
      return reply(res, 500, JSON_CONTENT_TYPE.secretsmanager, { __type: 'InternalServiceError', message: 'local Secrets Manager could not read the secret' });
    }
  }
  forward(opts.upstreams[service === 'sqs' ? 'sqs' : 'dynamodb'], agent, req, res, body);
}

function forward(upstream: string, agent: http.Agent, req: IncomingMessage, res: ServerResponse, body: Buffer): void {
  const url = new URL(upstream);
  const headers = { ...req.headers, host: url.host, 'content-length': String(body.length) };
  const out = http.request(
    { host: url.hostname, port: url.port, method: req.method, path: req.url, headers, agent },
    (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    },
  );
  out.on('error', () => {
    if (!res.headersSent) reply(res, 503, 'application/x-amz-json-1.0', { __type: 'ServiceUnavailable', message: 'local IAM gateway: upstream unreachable' });
    else res.destroy();
  });
  // The SDK's request timeout aborts the client socket; drop the upstream call with it.
  res.on('close', () => {
    if (!res.writableFinished) out.destroy();
  });
  out.end(body);
}

function reply(res: ServerResponse, status: number, contentType: string, payload: unknown, extra: Record<string, string> = {}): void {
  const text = JSON.stringify(payload);
  res.writeHead(status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(text),
    'x-amzn-requestid': randomUUID(),
    ...extra,
  });
  res.end(text);
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function readAll(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
