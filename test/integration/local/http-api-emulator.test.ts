import { expect } from 'chai';
import http from 'node:http';
import { HttpApiEmulator } from '../../../local/http/http-api-emulator';

describe('HTTP API emulator (payload format 2.0)', () => {
  let api: HttpApiEmulator;
  const seen: any[] = [];
  before(async () => {
    api = await HttpApiEmulator.start({
      routes: {
        'POST /publish': async (event: any) => {
          seen.push(event);
          return { statusCode: 202, headers: { 'Content-Type': 'application/json', 'X-Seq': 7 }, body: JSON.stringify({ ok: true }) };
        },
        'GET /items/{id}': async (event: any) => ({ id: event.pathParameters.id }),
        'ANY /files/{proxy+}': async (event: any) => ({ statusCode: 200, body: event.pathParameters.proxy }),
        'GET /boom': async () => {
          throw new Error('handler bug');
        },
        'GET /callback': (_e: any, _c: any, cb?: (err?: unknown, r?: unknown) => void) => cb!(null, { statusCode: 204 }),
        'POST /binary': async (event: any) => ({ statusCode: 200, body: JSON.stringify({ b64: event.isBase64Encoded, body: event.body }) }),
      },
    });
  });
  after(() => api.close());

  it('builds a version 2.0 event with lower-cased headers, joined duplicates, cookies and query', async () => {
    // Raw header list: fetch would merge the duplicates itself before they reach the wire.
    const res = await new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
      const req = http.request(`${api.url}/publish?a=1&a=2&b=x`, {
        method: 'POST',
        headers: ['Host', '127.0.0.1', 'Content-Type', 'application/json', 'X-Multi', 'one', 'X-Multi', 'two', 'Cookie', 'c1=v1; c2=v2'],
      });
      req.on('response', (r) => {
        let body = '';
        r.on('data', (c) => (body += c));
        r.on('end', () => resolve({ status: r.statusCode!, headers: r.headers, body }));
      });
      req.on('error', reject);
      req.end(JSON.stringify({ topic: 't', data: 1 }));
    });
    expect(res.status).to.equal(202);
    expect(res.headers['x-seq']).to.equal('7');
    expect(JSON.parse(res.body)).to.deep.equal({ ok: true });
    const e = seen.at(-1);
    expect(e.version).to.equal('2.0');
    expect(e.routeKey).to.equal('POST /publish');
    expect(e.rawPath).to.equal('/publish');
    expect(e.rawQueryString).to.equal('a=1&a=2&b=x');
    expect(e.queryStringParameters).to.deep.equal({ a: '1,2', b: 'x' });
    expect(e.headers['content-type']).to.equal('application/json');
    expect(e.headers['x-multi']).to.equal('one,two');
    expect(e.cookies).to.deep.equal(['c1=v1', 'c2=v2']);
    expect(e.headers.cookie).to.equal(undefined);
    expect(e.body).to.equal('{"topic":"t","data":1}');
    expect(e.isBase64Encoded).to.equal(false);
    expect(e.requestContext.http).to.include({ method: 'POST', path: '/publish', sourceIp: '127.0.0.1' });
    expect(e.requestContext.routeKey).to.equal('POST /publish');
    expect(e.requestContext.stage).to.equal('$default');
    expect(e.requestContext.time).to.match(/^\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} \+0000$/);
    expect(e.requestContext.timeEpoch).to.be.a('number');
  });

  it('matches path parameters and greedy paths, and infers a 200 JSON response without statusCode', async () => {
    const r1 = await fetch(`${api.url}/items/abc%3A1`);
    expect(r1.status).to.equal(200);
    expect(r1.headers.get('content-type')).to.equal('application/json');
    expect(await r1.json()).to.deep.equal({ id: 'abc:1' });
    const r2 = await fetch(`${api.url}/files/a/b/c.txt`, { method: 'DELETE' });
    expect(await r2.text()).to.equal('a/b/c.txt');
  });

  it('base64-encodes binary bodies', async () => {
    const r = await fetch(`${api.url}/binary`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array([0, 1, 2, 255]) });
    expect(await r.json()).to.deep.equal({ b64: true, body: Buffer.from([0, 1, 2, 255]).toString('base64') });
  });

  it('answers 404 for no route, 500 for a throwing handler, and supports callback handlers', async () => {
    const nf = await fetch(`${api.url}/nope`);
    expect(nf.status).to.equal(404);
    expect(await nf.json()).to.deep.equal({ message: 'Not Found' });
    const wrongMethod = await fetch(`${api.url}/publish`);
    expect(wrongMethod.status).to.equal(404);
    const boom = await fetch(`${api.url}/boom`);
    expect(boom.status).to.equal(500);
    expect(await boom.json()).to.deep.equal({ message: 'Internal Server Error' });
    const cb = await fetch(`${api.url}/callback`);
    expect(cb.status).to.equal(204);
  });

  it('refuses bodies over the 10 MB payload limit with 413 and keeps serving', async () => {
    const big = await fetch(`${api.url}/publish`, { method: 'POST', body: Buffer.alloc(10 * 1024 * 1024 + 1, 'a') });
    expect(big.status).to.equal(413);
    const ok = await fetch(`${api.url}/items/1`);
    expect(ok.status).to.equal(200);
  });
});
