import { expect } from 'chai';
import net from 'node:net';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { createClients } from '../../../lib/aws/clients';
import { LOCAL_CREDENTIALS } from '../../support/env';

/**
 * A peer that accepts the connection and then never answers (a half-open keep-alive socket, a
 * stuck proxy): every call must fail by the request timeout instead of hanging — lease renewal
 * depends on it.
 */
describe('AWS client factory: request timeouts', () => {
  let server: net.Server;
  const sockets = new Set<net.Socket>();
  let endpoint: string;
  before(async () => {
    server = net.createServer((s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('data', () => {}); // read the request, never reply
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    endpoint = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('fails a call to a silent peer after requestTimeoutMs', async () => {
    const clients = createClients({ region: 'us-east-1', credentials: LOCAL_CREDENTIALS, endpoints: { dynamodb: endpoint }, requestTimeoutMs: 300 });
    const started = Date.now();
    let err: unknown;
    try {
      await clients.doc.send(new GetCommand({ TableName: 't', Key: { k: '1' } }), { abortSignal: AbortSignal.timeout(10_000) });
    } catch (e) {
      err = e;
    } finally {
      clients.destroy();
    }
    const elapsed = Date.now() - started;
    expect(err, 'the call must fail, not hang').to.be.instanceOf(Error);
    expect((err as Error).name).to.not.equal('AbortError');
    // The SDK retries (3 attempts by default), each bounded by the timeout.
    expect(elapsed).to.be.lessThan(5_000);
  });
});
