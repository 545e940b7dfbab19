import { expect } from 'chai';
import { ConfigError, ENV, loadConfig, tableEnvKey } from '../../../lib/config';
import { clientOptionsFromEnv } from '../../../lib/aws/clients';

const BASE = {
  STACK: 'dev',
  TABLE_PREFIX: 'rtg-dev',
  COMMAND_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/123456789012/rtg-dev-commands',
  WS_MANAGEMENT_ENDPOINT: 'https://abc123.execute-api.eu-west-1.amazonaws.com/dev',
  AUTH_MODE: 'none',
};

function fails(env: Record<string, string | undefined>, key: string, text: RegExp) {
  let err: unknown;
  try {
    loadConfig(env);
  } catch (e) {
    err = e;
  }
  expect(err, `expected a ConfigError for ${key}`).to.be.instanceOf(ConfigError);
  expect((err as ConfigError).key).to.equal(key);
  expect((err as ConfigError).message).to.match(text);
  expect((err as ConfigError).message.startsWith(`${key}:`), 'the message names the key first').to.equal(true);
}

describe('configuration (lib/config)', () => {
  it('reads a valid environment once into typed settings, with documented defaults', () => {
    const c = loadConfig({ ...BASE, ITEM_KEYS: 'vehicleId, batteryId', AWS_REGION: 'eu-west-1' });
    expect(c.stack).to.equal('dev');
    expect(c.region).to.equal('eu-west-1');
    expect(c.tables).to.deep.equal({
      connections: 'rtg-dev-connections',
      subscriptions: 'rtg-dev-subscriptions',
      items: 'rtg-dev-items',
      history: 'rtg-dev-history',
      upstreams: 'rtg-dev-upstreams',
      idempotency: 'rtg-dev-idempotency',
      users: 'rtg-dev-users',
    });
    expect(c.subscriber.itemKeys).to.deep.equal(['vehicleId', 'batteryId']);
    expect(c.subscriber.connectionTtlSeconds).to.equal(7200);
    expect(c.subscriber.maxMessageBytes).to.equal(128 * 1024);
    expect(c.upstream.secretsBackend).to.equal('secretsmanager');
  });

  it('lets explicit table names (as Pulumi passes them) override the prefix', () => {
    const c = loadConfig({ ...BASE, TABLE_PREFIX: undefined, ...Object.fromEntries(['connections', 'subscriptions', 'items', 'history', 'upstreams', 'idempotency', 'users'].map((t) => [tableEnvKey(t as 'items'), `${t}-abc123`])) });
    expect(c.tables.items).to.equal('items-abc123');
  });

  const cases: [string, Record<string, string | undefined>, string, RegExp][] = [
    ['missing stack', { STACK: undefined }, ENV.stack, /required; expected one of local, dev, prod/],
    ['unknown stack', { STACK: 'staging' }, ENV.stack, /"staging"; expected one of local, dev, prod/],
    ['no table names', { TABLE_PREFIX: undefined }, 'TABLE_CONNECTIONS', /required \(or set TABLE_PREFIX\)/],
    ['queue URL not a URL', { COMMAND_QUEUE_URL: 'commands' }, ENV.commandQueueUrl, /expected a https\/http URL/],
    ['management endpoint missing', { WS_MANAGEMENT_ENDPOINT: '' }, ENV.managementEndpoint, /required/],
    ['auth none on prod', { STACK: 'prod' }, ENV.authMode, /refused on the prod stack/],
    ['jwt without a key', { AUTH_MODE: 'jwt' }, ENV.jwtHs256Secret, /needs one of JWT_HS256_SECRET/],
    ['JWKS over plain http outside the local stack', { AUTH_MODE: 'jwt', JWT_JWKS_URL: 'http://idp.example.com/jwks.json' }, ENV.jwtJwksUrl, /expected a https URL/],
    ['an HS256 secret together with an RS256 key', { AUTH_MODE: 'jwt', JWT_HS256_SECRET: 'x'.repeat(32), JWT_RS256_PUBLIC_KEY: '-----BEGIN PUBLIC KEY-----' }, ENV.jwtHs256Secret, /together with JWT_RS256_PUBLIC_KEY; set exactly one/],
    ['an HS256 secret together with a JWKS URL', { AUTH_MODE: 'jwt', JWT_HS256_SECRET: 'x'.repeat(32), JWT_JWKS_URL: 'https://idp.example.com/jwks.json' }, ENV.jwtHs256Secret, /together with JWT_JWKS_URL; set exactly one/],
    ['short HS256 secret', { AUTH_MODE: 'jwt', JWT_HS256_SECRET: 'short' }, ENV.jwtHs256Secret, /shorter than 32 bytes/],
    ['connection TTL above API Gateway\'s 2 h', { CONNECTION_TTL_SECONDS: '7201' }, ENV.connectionTtlSeconds, /at most 7200/],
    ['non-integer', { FANOUT_CONCURRENCY: 'many' }, ENV.fanoutConcurrency, /"many"; expected an integer/],
    ['unknown fan-out sender', { FANOUT_SENDER: 'fast' }, ENV.fanoutSender, /"fast"; expected one of lean, sdk/],
    ['message limit above 128 KB', { MAX_MESSAGE_BYTES: '200000' }, ENV.maxMessageBytes, /at most 131072/],
    ['bad item key', { ITEM_KEYS: 'vehicle id' }, ENV.itemKeys, /"vehicle id"; expected comma-separated identifiers/],
    ['local secrets outside the local stack', { SECRETS_BACKEND: 'local' }, ENV.secretsBackend, /only the local stack/],
    ['local secrets without a key', { STACK: 'local', LOCAL_SECRETS_DIR: '/tmp/x' }, ENV.localSecretsKey, /64 hex characters/],
  ];
  for (const [name, patch, key, text] of cases) {
    it(`refuses ${name}, naming ${key}`, () => fails({ ...BASE, ...patch }, key, text));
  }

  it('takes service endpoints from AWS_ENDPOINT_URL_* and uses the DynamoDB one for streams', () => {
    const o = clientOptionsFromEnv({ AWS_REGION: 'eu-west-1', AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:8000', AWS_ENDPOINT_URL_SQS: 'http://127.0.0.1:9324' });
    expect(o.region).to.equal('eu-west-1');
    expect(o.endpoints).to.deep.equal({ dynamodb: 'http://127.0.0.1:8000', dynamodbstreams: 'http://127.0.0.1:8000', sqs: 'http://127.0.0.1:9324' });
    // In AWS nothing is set and every client keeps the SDK's default endpoint.
    expect(clientOptionsFromEnv({}).endpoints).to.deep.equal({});
  });
});

describe('configuration: the prod stack', () => {
  it('loads in jwt mode with a key (AUTH_MODE=none there is refused above)', () => {
    const c = loadConfig({ ...BASE, STACK: 'prod', AUTH_MODE: 'jwt', JWT_HS256_SECRET: 'a-prod-hs256-secret-of-32-bytes-or-more' });
    expect([c.stack, c.auth.mode]).to.deep.equal(['prod', 'jwt']);
  });
});

describe('configuration for the upstream agent (auth: false)', () => {
  it('does not ask for the JWT key the agent is never given', () => {
    const c = loadConfig({ ...BASE, STACK: 'prod', AUTH_MODE: 'jwt' }, { auth: false });
    expect(c.auth.jwt).to.equal(undefined);
    expect(c.tables.upstreams).to.equal('rtg-dev-upstreams');
    // Handlers still refuse the same environment.
    fails({ ...BASE, STACK: 'prod', AUTH_MODE: 'jwt' }, ENV.jwtHs256Secret, /needs one of/);
  });
});

describe('configuration: claim names', () => {
  it('are read whatever AUTH_MODE is (the HTTP API authoriser brings claims with AUTH_MODE=none too)', () => {
    const c = loadConfig({ ...BASE, AUTH_MODE: 'none', JWT_PUBLISH_CLAIM: 'rg:pub', JWT_SEND_TO_USER_CLAIM: 'rg:dm' });
    expect(c.auth.jwt).to.equal(undefined);
    expect(c.auth.claims).to.deep.equal({ topics: 'topics', publish: 'rg:pub', sendToUser: 'rg:dm', sendToConnection: 'sendToConnection' });
  });
});

describe('configuration: presence', () => {
  it('reads join/leave topic patterns and both caps, refusing a malformed pattern or a cap out of range by name', () => {
    const c = loadConfig({ ...BASE, PRESENCE_TOPICS: 'room:*, lobby', PRESENCE_EVENT_MAX_MEMBERS: '20', PRESENCE_LIST_LIMIT: '50' });
    expect(c.subscriber.presence).to.deep.equal({ topics: ['room:*', 'lobby'], eventMaxMembers: 20, listLimit: 50 });
    fails({ ...BASE, PRESENCE_TOPICS: 'room:*:x*' }, 'PRESENCE_TOPICS', /"room:\*:x\*"/);
    fails({ ...BASE, PRESENCE_EVENT_MAX_MEMBERS: '0' }, 'PRESENCE_EVENT_MAX_MEMBERS', /./);
    fails({ ...BASE, PRESENCE_LIST_LIMIT: 'many' }, 'PRESENCE_LIST_LIMIT', /./);
  });
});

describe('configuration: large topics in partitions', () => {
  it('is off without the partition queue; with it, reads the threshold and partition count with their defaults', () => {
    expect(loadConfig({ ...BASE }).subscriber.partitioning).to.equal(undefined);
    const url = 'https://sqs.eu-west-1.amazonaws.com/123456789012/rtg-dev-fanoutPartitions.fifo';
    expect(loadConfig({ ...BASE, FANOUT_PARTITION_QUEUE_URL: url }).subscriber.partitioning).to.deep.equal({ queueUrl: url, threshold: 5000, partitions: 8 });
    expect(loadConfig({ ...BASE, FANOUT_PARTITION_QUEUE_URL: url, FANOUT_PARTITION_THRESHOLD: '50', FANOUT_PARTITIONS: '4' }).subscriber.partitioning).to.deep.equal({
      queueUrl: url,
      threshold: 50,
      partitions: 4,
    });
  });

  it('refuses a queue that is not FIFO (partitions rely on its per-group order) and counts out of range, by name', () => {
    fails({ ...BASE, FANOUT_PARTITION_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/123456789012/rtg-dev-commands' }, 'FANOUT_PARTITION_QUEUE_URL', /expected a FIFO queue/);
    fails({ ...BASE, FANOUT_PARTITIONS: '101' }, 'FANOUT_PARTITIONS', /./);
    fails({ ...BASE, FANOUT_PARTITIONS: '0' }, 'FANOUT_PARTITIONS', /./);
    fails({ ...BASE, FANOUT_PARTITION_THRESHOLD: '1' }, 'FANOUT_PARTITION_THRESHOLD', /./);
  });
});
