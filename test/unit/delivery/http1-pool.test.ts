import { expect } from 'chai';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { Http1Pool, NO_RESPONSE } from '../../../lib/delivery/http1-pool';
import { ensureLocalCa, issueServerCert, type ServerCert } from '../../../local/apigw/tls';
import { waitFor } from '../../support/wait';

/**
 * The lean sender's HTTP/1.1 client against raw loopback servers that answer byte by byte what
 * each test scripts: framing (Content-Length, chunked, 204, until close), keep-alive reuse,
 * `Connection: close`, responses split across packets, resets, garbage and silence, and TLS
 * with session resumption.
 */

/** One scripted answer per request: what to write back, and how. */
type Script = (req: string, socket: net.Socket) => void;

interface RawServer {
  url: URL;
  /** Sockets accepted so far. */
  connections: () => number;
  /** TLS only: accepted sockets that resumed a session. */
  resumed: () => number;
  requests: string[];
  close: () => Promise<void>;
}

async function rawServer(script: Script, cert?: ServerCert): Promise<RawServer> {
  const requests: string[] = [];
  const sockets = new Set<net.Socket>();
  let connections = 0;
  let resumed = 0;
  const onSocket = (socket: net.Socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buf = '';
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      // Requests are complete when head and Content-Length body have arrived.
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const len = Number(/\r\ncontent-length: *(\d+)/i.exec(buf.slice(0, end))?.[1] ?? 0);
        if (buf.length < end + 4 + len) return;
        const req = buf.slice(0, end + 4 + len);
        buf = buf.slice(end + 4 + len);
        requests.push(req);
        script(req, socket);
      }
    });
  };
  const server = cert
    ? tls.createServer({ cert: cert.cert, key: cert.key }, onSocket).on('secureConnection', (s: tls.TLSSocket) => s.isSessionReused() && resumed++)
    : net.createServer(onSocket);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = new URL(`${cert ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}/`);
  return {
    url,
    connections: () => connections,
    resumed: () => resumed,
    requests,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

const req = (n: number, body = '{}') => `POST /s/@connections/c${n} HTTP/1.1\r\nhost: x\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
const ok = (body = '', extra = '') => `HTTP/1.1 200 OK\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;

describe('Http1Pool: minimal HTTP/1.1 keep-alive client (lib/delivery/http1-pool.ts)', () => {
  const cleanup: (() => unknown)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });
  const pool = (url: URL, o: { maxSockets?: number; timeoutMs?: number; ca?: string } = {}) => {
    const p = new Http1Pool({ origin: url, maxSockets: o.maxSockets ?? 4, timeoutMs: o.timeoutMs ?? 5_000, ca: o.ca });
    cleanup.push(() => p.close());
    return p;
  };
  const serve = async (script: Script, cert?: ServerCert) => {
    const s = await rawServer(script, cert);
    cleanup.push(() => s.close());
    return s;
  };

  it('reads the status of every way a body can be framed, on ONE reused socket', async () => {
    const answers = [
      ok(),
      'HTTP/1.1 410 Gone\r\nContent-Type: application/json\r\nContent-Length: 28\r\n\r\n{"message":"GoneException"}\n',
      'HTTP/1.1 429 Too Many Requests\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"mes\r\n19;ext=1\r\nsage":"LimitExceeded..."}\r\n0\r\nx-trailer: 1\r\n\r\n',
      'HTTP/1.1 204 No Content\r\nx-amzn-requestid: r\r\n\r\n',
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Service Unavailable\r\ncontent-length: 2\r\n\r\n{}',
      ok('{"ok":true}'),
    ];
    let i = 0;
    const s = await serve((_r, socket) => socket.write(answers[i++]));
    const p = pool(s.url, { maxSockets: 1 });
    const statuses: number[] = [];
    for (let n = 0; n < answers.length; n++) statuses.push(await p.request(req(n)));
    expect(statuses).to.deep.equal([200, 410, 429, 204, 503, 200]);
    expect(s.connections()).to.equal(1);
    expect(s.requests[1]).to.equal(req(1));
  });

  it('a response split into single bytes is parsed the same (head, chunk sizes and data across packets)', async () => {
    const answer = 'HTTP/1.1 410 Gone\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n';
    const s = await serve((_r, socket) => {
      socket.setNoDelay(true);
      let k = 0;
      const tick = () => {
        if (k < answer.length) socket.write(answer[k++], () => setImmediate(tick));
      };
      tick();
    });
    const p = pool(s.url, { maxSockets: 1 });
    expect(await p.request(req(1))).to.equal(410);
    expect(await p.request(req(2))).to.equal(410);
    expect(s.connections()).to.equal(1);
  });

  it('more requests than sockets: all answered, never more than maxSockets connections', async () => {
    const s = await serve((_r, socket) => setTimeout(() => socket.write(ok()), 2));
    const p = pool(s.url, { maxSockets: 3 });
    const out = await Promise.all(Array.from({ length: 50 }, (_, i) => p.request(req(i))));
    expect(out.every((x) => x === 200)).to.equal(true);
    expect(s.requests).to.have.length(50);
    expect(s.connections()).to.equal(3);
  });

  it('Connection: close and a body delimited by the close: answered, and the next request gets a new socket', async () => {
    let i = 0;
    const s = await serve((_r, socket) => {
      if (i++ === 0) socket.write(ok('', 'connection: close\r\n'));
      else socket.end('HTTP/1.1 500 Internal Server Error\r\n\r\nno length, ends with the stream');
    });
    const p = pool(s.url, { maxSockets: 1 });
    expect(await p.request(req(1))).to.equal(200);
    expect(await p.request(req(2))).to.equal(500);
    expect(await p.request(req(3))).to.equal(500);
    expect(s.connections()).to.equal(3);
  });

  it('an idle socket the server closed is not reused: the next request succeeds on a new one', async () => {
    const s = await serve((_r, socket) => {
      socket.write(ok());
      setTimeout(() => socket.end(), 10); // a keep-alive timeout on the server
    });
    const p = pool(s.url, { maxSockets: 1 });
    expect(await p.request(req(1))).to.equal(200);
    // Once the pool has seen the server's FIN: a fixed pause would not do, since a loop stalled
    // past both the server's timer and the pause runs them in one go, and the next request would
    // then be written before the FIN is read (a race the pool leaves to the caller's retry).
    await waitFor(() => p.sockets === 0, 10_000, 'the pool to drop the socket the server closed');
    expect(await p.request(req(2))).to.equal(200);
    expect(s.connections()).to.equal(2);
  });

  it('no complete response → NO_RESPONSE: reset mid-response, garbage, refused, silence (within the timeout)', async () => {
    const s = await serve((r, socket) => {
      if (r.includes('/c1 ')) socket.end('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc'); // short body, then FIN
      else if (r.includes('/c2 ')) socket.write('SMTP ready\r\n\r\n');
      else if (r.includes('/c3 ')) socket.destroy();
      // c4: never answered
    });
    const p = pool(s.url, { maxSockets: 2, timeoutMs: 150 });
    expect(await p.request(req(1))).to.equal(NO_RESPONSE);
    expect(await p.request(req(2))).to.equal(NO_RESPONSE);
    expect(await p.request(req(3))).to.equal(NO_RESPONSE);
    const t0 = Date.now();
    expect(await p.request(req(4))).to.equal(NO_RESPONSE);
    expect(Date.now() - t0).to.be.within(140, 1500);

    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    expect(await pool(new URL(`http://127.0.0.1:${port}/`)).request(req(5))).to.equal(NO_RESPONSE);
  });

  it('bytes after a complete response: answered, and that socket is dropped rather than misframing the next', async () => {
    const s = await serve((_r, socket) => socket.write(ok() + 'HTTP/1.1 410 Gone\r\ncontent-length: 0\r\n\r\n'));
    const p = pool(s.url, { maxSockets: 1 });
    expect(await p.request(req(1))).to.equal(200);
    expect(await p.request(req(2))).to.equal(200);
    expect(s.connections()).to.equal(2);
  });

  it('close(): requests in flight and queued resolve NO_RESPONSE', async () => {
    const s = await serve(() => {});
    const p = pool(s.url, { maxSockets: 1 });
    const pending = [p.request(req(1)), p.request(req(2))];
    await new Promise((r) => setTimeout(r, 50));
    p.close();
    expect(await Promise.all(pending)).to.deep.equal([NO_RESPONSE, NO_RESPONSE]);
    expect(await p.request(req(3))).to.equal(NO_RESPONSE);
  });

  it('header names in any case, blanks around values, HTTP/1.0 keep-alive: framed, and sockets kept or dropped as the head says', async () => {
    // [answer, whether the server may reuse the socket for the next request]
    const answers: [string, boolean][] = [
      ['HTTP/1.1 200 OK\r\nCONTENT-LENGTH: \t 3 \r\n\r\nabc', true],
      ['HTTP/1.1 410 Gone\r\nTransfer-Encoding: gzip, CHUNKED\r\n\r\n2\r\n{}\r\n0\r\n\r\n', true],
      ['HTTP/1.1 429\r\ncontent-length: 0\r\n\r\n', true], // no reason phrase
      ['HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: Keep-Alive\r\n\r\n', true],
      ['HTTP/1.1 413 Payload Too Large\r\nconnection: Close\r\ncontent-length: 2\r\n\r\n{}', false],
      ['HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n', false], // 1.0 without keep-alive
      ['HTTP/1.1 204 No Content\r\nX-Content-Length-Not: 9\r\n\r\n', true],
    ];
    let i = 0;
    const s = await serve((_r, socket) => socket.write(answers[i++][0]));
    const p = pool(s.url, { maxSockets: 1 });
    const statuses: number[] = [];
    const connections: number[] = [];
    for (let n = 0; n < answers.length; n++) {
      statuses.push(await p.request(req(n)));
      connections.push(s.connections());
    }
    expect(statuses).to.deep.equal([200, 410, 429, 200, 413, 503, 204]);
    // A new socket only after the answers that end the connection (the 5th and the 6th).
    expect(connections).to.deep.equal([1, 1, 1, 1, 1, 2, 3]);
  });

  it('a status line it cannot read → NO_RESPONSE (never a made-up status)', async () => {
    const bad = ['HTTP/1.1 2x0 OK', 'HTTP/2 200 OK', 'HTTP/1.1 099 Low', 'HTTP/1.1 600 High', 'HTTP/1.1 2000 OK', 'http/1.1 200 OK', 'HTTP/1.1  200 OK'];
    let i = 0;
    const s = await serve((_r, socket) => socket.write(`${bad[i++]}\r\ncontent-length: 0\r\n\r\n`));
    const p = pool(s.url, { maxSockets: 1 });
    const statuses: number[] = [];
    for (let n = 0; n < bad.length; n++) statuses.push(await p.request(req(n)));
    expect(statuses).to.deep.equal(bad.map(() => NO_RESPONSE));
  });

  it('heads arriving in pieces on several sockets at once: each socket keeps its own partial head (reads share one buffer)', async () => {
    const sockets: net.Socket[] = [];
    const s = await serve((_r, socket) => {
      socket.setNoDelay(true);
      sockets.push(socket);
      if (sockets.length < 2) return;
      // Both first halves before either second half: a partial head left in the pool's read
      // buffer instead of copied out would be overwritten by the other socket's bytes.
      const [a, b] = sockets;
      a.write('HTTP/1.1 41', () =>
        b.write('HTTP/1.1 42', () =>
          setTimeout(() => {
            b.write('9 Too Many Requests\r\ncontent-le');
            a.write('0 Gone\r\ncontent-length: 0\r\n\r\n');
            setTimeout(() => b.write('ngth: 0\r\n\r\n'), 20);
          }, 20),
        ),
      );
    });
    const p = pool(s.url, { maxSockets: 2 });
    expect(await Promise.all([p.request(req(1)), p.request(req(2))])).to.deep.equal([410, 429]);
    expect(s.connections()).to.equal(2);
  });

  describe('over TLS', () => {
    let dir: string;
    let cert: ServerCert;
    before(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'http1-pool-'));
      cert = issueServerCert(ensureLocalCa(path.join(dir, 'ca')));
    });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('verifies the certificate, and later sockets resume the first session instead of a full handshake', async () => {
      const s = await serve((_r, socket) => socket.write(ok()), cert);
      const p = pool(s.url, { maxSockets: 4, ca: cert.ca });
      // No pause needed for the TLS 1.3 session ticket: the server sends it right after the
      // handshake, so before its answer to the request, and the socket emits 'session' as it reads it,
      // so the pool holds the ticket before the response resolves this first request.
      expect(await p.request(req(0))).to.equal(200);
      const out = await Promise.all(Array.from({ length: 12 }, (_, i) => p.request(req(i + 1))));
      expect(out.every((x) => x === 200)).to.equal(true);
      expect(s.connections()).to.equal(4);
      expect(s.resumed()).to.equal(3);
    });

    it('an untrusted certificate → NO_RESPONSE, nothing sent', async () => {
      const s = await serve((_r, socket) => socket.write(ok()), cert);
      expect(await pool(s.url).request(req(1))).to.equal(NO_RESPONSE);
      expect(s.requests).to.have.length(0);
    });
  });
});
