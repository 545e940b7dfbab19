import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSqsServer } from 'local-aws-sqs';

/**
 * SQS in process (npm `local-aws-sqs`). Known differences from AWS: a long poll for up to 10
 * messages waits the full wait time even when messages are there, `MessageSystemAttributeNames`
 * is ignored (pass `AttributeNames` too), FIFO groups are not enforced, PurgeQueue only clears
 * after 60 s.
 */
export interface RunningSqs {
  readonly endpoint: string;
  stop(): Promise<void>;
}

export async function startSqs(opts: { port?: number; host?: string } = {}): Promise<RunningSqs> {
  const host = opts.host ?? '127.0.0.1';
  const server: Server = await createSqsServer({
    port: opts.port ?? 0,
    hostname: host,
    emulateQueueCreationLifecycle: false,
  });
  const port = (server.address() as AddressInfo).port;
  return {
    endpoint: `http://${host}:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
