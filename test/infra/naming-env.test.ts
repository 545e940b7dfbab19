import { expect } from 'chai';
import { loadConfig } from '../../lib/config';
import { TABLE_NAMES } from '../../lib/schema';
import { parseStackConfig } from '../../infra/config';
import { agentEnvironment, handlerEnvironment } from '../../infra/env';
import { childName, functionName, httpRouteSourceArn, indexArn, logStreamsArn, manageConnectionsArn, secretPrefixArn, splitRouteKey, websocketRouteSourceArn } from '../../infra/naming';

describe('infra: naming', () => {
  const cases: [string, () => string, string][] = [
    ['child name', () => childName('fn-fanout', 'role'), 'fn-fanout-role'],
    ['function name', () => functionName('rtg-prod', 'fanout'), 'rtg-prod-fanout'],
    ['index ARN', () => indexArn('arn:aws:dynamodb:r:1:table/t', 'byUser'), 'arn:aws:dynamodb:r:1:table/t/index/byUser'],
    ['log streams of a group', () => logStreamsArn('arn:aws:logs:r:1:log-group:/aws/lambda/f'), 'arn:aws:logs:r:1:log-group:/aws/lambda/f:*'],
    ['log streams when the ARN already ends in :*', () => logStreamsArn('arn:aws:logs:r:1:log-group:g:*'), 'arn:aws:logs:r:1:log-group:g:*'],
    ['manage connections', () => manageConnectionsArn('arn:aws:execute-api:r:1:abc', 'dev', 'POST'), 'arn:aws:execute-api:r:1:abc/dev/POST/@connections/*'],
    ['delete connections', () => manageConnectionsArn('arn:aws:execute-api:r:1:abc', 'dev', 'DELETE'), 'arn:aws:execute-api:r:1:abc/dev/DELETE/@connections/*'],
    ['websocket route', () => websocketRouteSourceArn('arn:aws:execute-api:r:1:abc', 'dev', '$connect'), 'arn:aws:execute-api:r:1:abc/dev/$connect'],
    ['http route', () => httpRouteSourceArn('arn:aws:execute-api:r:1:abc', '*', 'DELETE /websocket'), 'arn:aws:execute-api:r:1:abc/*/DELETE/websocket'],
    ['secret prefix', () => secretPrefixArn('aws', 'r', '1', 'rg/dev/upstream/'), 'arn:aws:secretsmanager:r:1:secret:rg/dev/upstream/*'],
  ];
  for (const [what, f, want] of cases) it(what, () => expect(f()).to.equal(want));

  it('refuses names AWS would refuse', () => {
    expect(() => functionName('x'.repeat(60), 'fanout')).to.throw(/not a valid Lambda name/);
    expect(() => splitRouteKey('publish')).to.throw(/METHOD \/path/);
  });
});

describe('infra: Lambda and agent environment', () => {
  const tables = Object.fromEntries(TABLE_NAMES.map((t) => [t, `rtg-dev-${t}`])) as Record<(typeof TABLE_NAMES)[number], string>;
  const values = { tables, commandQueueUrl: 'https://sqs.eu-west-1.amazonaws.com/1/rtg-dev-commands', managementEndpoint: 'https://abc.execute-api.eu-west-1.amazonaws.com/dev' };

  it('round-trips through loadConfig (dev, auth none)', () => {
    const c = parseStackConfig('dev', { authMode: 'none', httpAuth: 'iam', itemKeys: 'vehicleId', upstreamAllowHosts: 'stream.example.com', historyTtlSeconds: '3600' });
    const env = handlerEnvironment(c, values) as Record<string, string>;
    expect(env).to.not.have.property('AWS_REGION');
    const app = loadConfig({ ...env, AWS_REGION: 'eu-west-1' });
    expect(app).to.deep.include({ stack: 'dev', tables, commandQueueUrl: values.commandQueueUrl, managementEndpoint: values.managementEndpoint });
    expect(app.subscriber.itemKeys).to.deep.equal(['vehicleId']);
    expect(app.subscriber.historyTtlSeconds).to.equal(3600);
    expect(app.upstream).to.deep.include({ secretsBackend: 'secretsmanager', secretPrefix: 'realtime-gateway/dev/upstream/', allowHosts: ['stream.example.com'] });
  });

  it('round-trips through loadConfig (prod, jwt with secret)', () => {
    const secret = 's'.repeat(40);
    const c = parseStackConfig('prod', { authMode: 'jwt', httpAuth: 'iam', jwtHs256Secret: secret, jwt: '{"issuer":"https://idp.example.com/","audience":"rg","topicsClaim":"t"}' });
    const app = loadConfig({ ...(handlerEnvironment(c, { ...values, jwtHs256Secret: secret }) as Record<string, string>), AWS_REGION: 'eu-west-1' });
    expect(app.auth).to.deep.equal({ mode: 'jwt', jwt: { hs256Secret: secret, rs256PublicKey: undefined, jwksUrl: undefined, issuer: 'https://idp.example.com/', audience: 'rg', topicsClaim: 't', publishClaim: 'publish', sendToUserClaim: 'sendToUser' }, claims: { topics: 't', publish: 'publish', sendToUser: 'sendToUser', sendToConnection: 'sendToConnection' } });
  });

  it('passes claim names when only the HTTP API uses JWT (authMode none), and no verification key', () => {
    const c = parseStackConfig('dev', { authMode: 'none', httpAuth: 'jwt', jwt: '{"issuer":"https://idp.example.com/","audience":"rg","publishClaim":"rg:pub","sendToUserClaim":"rg:dm","sendToConnectionClaim":"rg:reply"}' });
    const env = handlerEnvironment(c, values) as Record<string, string>;
    expect(env).to.deep.include({ JWT_PUBLISH_CLAIM: 'rg:pub', JWT_SEND_TO_USER_CLAIM: 'rg:dm', JWT_SEND_TO_CONNECTION_CLAIM: 'rg:reply' });
    expect(env).to.not.have.property('JWT_ISSUER');
    const app = loadConfig({ ...env, AWS_REGION: 'eu-west-1' });
    expect(app.auth).to.deep.include({ mode: 'none', claims: { topics: 'topics', publish: 'rg:pub', sendToUser: 'rg:dm', sendToConnection: 'rg:reply' } });
  });

  it('passes the socket rate limit to the handlers, and refuses one loadConfig would refuse', () => {
    const c = parseStackConfig('dev', { authMode: 'none', httpAuth: 'iam', socketRatePerSecond: '5', socketRateBurst: '8' });
    const app = loadConfig({ ...(handlerEnvironment(c, values) as Record<string, string>), AWS_REGION: 'eu-west-1' });
    expect(app.subscriber.socketRate).to.deep.equal({ perSecond: 5, burst: 8 });
    expect(() => parseStackConfig('dev', { authMode: 'none', httpAuth: 'iam', socketRateBurst: '0' })).to.throw(/socketRateBurst/);
  });

  it('passes presence topics and caps to the handlers, and refuses a pattern loadConfig would refuse', () => {
    const c = parseStackConfig('dev', { authMode: 'none', httpAuth: 'iam', presenceTopics: 'room:*,doc:1', presenceEventMaxMembers: '50', presenceListLimit: '200' });
    const app = loadConfig({ ...(handlerEnvironment(c, values) as Record<string, string>), AWS_REGION: 'eu-west-1' });
    expect(app.subscriber.presence).to.deep.equal({ topics: ['room:*', 'doc:1'], eventMaxMembers: 50, listLimit: 200 });
    const defaults = loadConfig({ ...(handlerEnvironment(parseStackConfig('dev', { authMode: 'none', httpAuth: 'iam' }), values) as Record<string, string>), AWS_REGION: 'eu-west-1' });
    expect(defaults.subscriber.presence).to.deep.equal({ topics: [], eventMaxMembers: 100, listLimit: 1000 });
    expect(() => parseStackConfig('dev', { authMode: 'none', httpAuth: 'iam', presenceTopics: 'room:*:x*' })).to.throw(/presenceTopics/);
    expect(() => parseStackConfig('dev', { authMode: 'none', httpAuth: 'iam', presenceEventMaxMembers: '0' })).to.throw(/presenceEventMaxMembers/);
  });

  it('passes the collection snapshot cap to the handlers, and refuses one loadConfig would refuse', () => {
    const c = parseStackConfig('dev', { authMode: 'none', httpAuth: 'iam', collectionMaxMembers: '250' });
    const app = loadConfig({ ...(handlerEnvironment(c, values) as Record<string, string>), AWS_REGION: 'eu-west-1' });
    expect(app.subscriber.collectionMaxMembers).to.equal(250);
    const defaults = loadConfig({ ...(handlerEnvironment(parseStackConfig('dev', { authMode: 'none', httpAuth: 'iam' }), values) as Record<string, string>), AWS_REGION: 'eu-west-1' });
    expect(defaults.subscriber.collectionMaxMembers).to.equal(1000);
    expect(() => parseStackConfig('dev', { authMode: 'none', httpAuth: 'iam', collectionMaxMembers: '10001' })).to.throw(/collectionMaxMembers/);
  });

  it('gives the agent its region and namespace but never the JWT secret', () => {
    const c = parseStackConfig('dev', { authMode: 'jwt', httpAuth: 'iam', jwtHs256Secret: 's'.repeat(40), sink: '{"url":"https://lake.example.com/in"}', sinkCredentials: 'Bearer x' });
    const env = agentEnvironment(c, { ...values, region: 'eu-west-1', metricsNamespace: 'RealtimeGateway/dev' }) as Record<string, string>;
    expect(env).to.deep.include({ AWS_REGION: 'eu-west-1', METRICS_NAMESPACE: 'RealtimeGateway/dev', SINK_URL: 'https://lake.example.com/in' });
    expect(env).to.not.have.property('JWT_HS256_SECRET');
    expect(env).to.not.have.property('SINK_AUTHORIZATION');
  });
});
