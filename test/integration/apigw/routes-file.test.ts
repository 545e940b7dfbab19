import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { EmulatorOptionError } from '../../../local/apigw/errors';
import { loadRoutesFile } from '../../../local/apigw/routes-file';
import { Emulators } from './helpers';

/** routes.json: handlers from files (CJS/ESM, async/callback), an authorizer, and clear errors. */
describe('apigw emulator: routes.json', () => {
  const ems = new Emulators();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rtg-routes-'));
  afterEach(() => ems.closeAll());
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const write = (name: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  };
  const routes = (doc: unknown, name = 'routes.json') => (write(name, JSON.stringify(doc)), path.join(dir, name));

  it('mounts CJS and ESM handlers, async and callback style, with the authorizer and the route options', async () => {
    write(
      'auth/index.mjs',
      `export const authorize = async (e) => ({ principalId: e.queryStringParameters.token,
         policyDocument: { Statement: [{ Action: 'execute-api:Invoke', Effect: e.queryStringParameters.token === 'ok' ? 'Allow' : 'Deny', Resource: e.methodArn }] },
         context: { room: 'blue' } });\n`,
    );
    write('echo.cjs', `module.exports.handler = function (event, context, cb) { cb(null, { statusCode: 200, body: 'echo:' + event.requestContext.authorizer.room + ':' + JSON.parse(event.body).text }); };\n`);
    write('nested/who.cjs', `exports.whoAmI = async (event) => ({ body: event.requestContext.authorizer.principalId });\n`);
    const opts = await loadRoutesFile(
      routes({
        routeSelectionExpression: '$request.body.kind',
        routes: { echo: { handler: './echo.cjs', returnResponse: true }, who: { handler: './nested/who.cjs#whoAmI', returnResponse: true, timeoutMs: 2000 } },
        authorizer: { handler: './auth/index.mjs#authorize', identitySource: ['route.request.querystring.token'] },
      }),
    );
    const em = await ems.start(opts);
    expect(await ems.refused(em.websocketUrl)).to.include({ status: 401 });
    expect(await ems.refused(`${em.websocketUrl}?token=no`)).to.include({ status: 403 });
    const c = await ems.client(`${em.websocketUrl}?token=ok`);
    await c.send(JSON.stringify({ kind: 'echo', text: 'hi' }));
    expect(await c.text(0)).to.equal('echo:blue:hi');
    await c.send(JSON.stringify({ kind: 'who' }));
    expect(await c.text(1)).to.equal('ok');
  });

  it('names the file and the key that is wrong', async () => {
    write('ok.cjs', 'exports.handler = async () => ({});\n');
    const cases: Array<[unknown, RegExp]> = [
      [{ routes: { $default: './missing.js' } }, /routes\.\$default\.handler: handler file .*missing\.js does not exist/],
      [{ routes: { $default: './ok.cjs#nope' } }, /routes\.\$default\.handler: .*no exported function "nope"/],
      [{ routes: { $default: { handler: './ok.cjs', returnresponse: true } } }, /routes\.\$default\.returnresponse: unknown key/],
      [{ routes: {}, authorizer: { handler: './ok.cjs', identitySources: [] } }, /authorizer\.identitySources: unknown key/],
      [{ route: {} }, /route: unknown key/],
    ];
    for (const [doc, message] of cases) {
      const err = await loadRoutesFile(routes(doc, 'bad.json')).catch((e: unknown) => e);
      expect(err, JSON.stringify(doc)).to.be.instanceOf(EmulatorOptionError);
      expect((err as Error).message).to.match(message).and.include('bad.json');
    }
    write('broken.json', '{ "routes": ');
    expect(((await loadRoutesFile(path.join(dir, 'broken.json')).catch((e: unknown) => e)) as Error).message).to.match(/cannot read it as JSON/);
  });
});
