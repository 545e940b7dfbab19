import { expect } from 'chai';
import { ConfigError } from '../../lib/errors';
import { FUNCTIONS } from '../../lib/functions';
import { lambdaSizing, parseStackConfig, projectValues } from '../../infra/config';
import { httpAuthorizationType } from '../../infra/components/http-api';
import { ROOT, stackFileValues } from './support/mocks';

const DEV = { authMode: 'none', httpAuth: 'iam' };
const PROD = { authMode: 'jwt', httpAuth: 'iam', jwt: JSON.stringify({ jwksUrl: 'https://idp.example.com/jwks.json' }) };

function fails(stack: string, values: Record<string, string>, key: string, message: RegExp) {
  let err: unknown;
  try {
    parseStackConfig(stack, values);
  } catch (e) {
    err = e;
  }
  expect(err, `expected a ConfigError for ${key}`).to.be.instanceOf(ConfigError);
  expect((err as ConfigError).key).to.equal(key);
  expect((err as ConfigError).code).to.equal('config_invalid');
  expect((err as Error).message).to.match(message);
  expect((err as Error).message.startsWith(`${key}: `)).to.equal(true);
}

describe('infra: stack configuration', () => {
  it('parses the checked-in dev and prod stack files', () => {
    const dev = parseStackConfig('dev', stackFileValues('dev', ROOT));
    const prod = parseStackConfig('prod', stackFileValues('prod', ROOT));
    expect([dev.authMode, dev.httpAuth, dev.dataProtection, dev.fleet.vpc]).to.deep.equal(['none', 'iam', false, 'default']);
    expect([prod.authMode, prod.httpAuth, prod.dataProtection, prod.fleet.vpc]).to.deep.equal(['jwt', 'jwt', true, 'dedicated']);
    // dev and prod differ where they should.
    expect(prod.logRetentionDays).to.be.greaterThan(dev.logRetentionDays);
    expect(prod.fleet.minSize).to.be.greaterThan(dev.fleet.minSize);
    expect(dev.itemKeys).to.deep.equal(['vehicleId']);
    expect(prod.websocket.routes.$connect).to.deep.equal({ burstLimit: 500, rateLimit: 1000 });
  });

  it('applies stack defaults', () => {
    const dev = parseStackConfig('dev', DEV);
    expect(dev).to.deep.include({ prefix: 'rtg-dev', logRetentionDays: 7, dataProtection: false, secretPrefix: 'realtime-gateway/dev/upstream/' });
    expect(dev.fanout).to.deep.equal({ batchSize: 100, batchWindowSeconds: 0, maxRetryAttempts: 5, maxRecordAgeSeconds: 3600, parallelizationFactor: 1, partitionThreshold: 5000, partitions: 8 });
    expect(dev.fleet).to.deep.include({ vpc: 'default', minSize: 1, maxSize: 1, desiredCapacity: 1, instanceType: 't4g.small' });
    const prod = parseStackConfig('prod', PROD);
    expect(prod).to.deep.include({ logRetentionDays: 90, dataProtection: true });
    expect(prod.fleet).to.deep.include({ vpc: 'dedicated', minSize: 2, maxSize: 4, desiredCapacity: 2 });
  });

  it('caps fleet.leaseReleaseSeconds so the lifecycle hook heartbeat (lease + 30 s) stays within 7200 s', () => {
    const fleet = (leaseReleaseSeconds: number) => ({ ...DEV, fleet: JSON.stringify({ leaseReleaseSeconds }) });
    expect(parseStackConfig('dev', fleet(7170)).fleet.leaseReleaseSeconds).to.equal(7170);
    for (const v of [7171, 7200, 7201]) {
      fails('dev', fleet(v), 'realtime-gateway:fleet.leaseReleaseSeconds', new RegExp(`is ${v}; expected an integer from 30 to 7170: the termination lifecycle hook waits leaseReleaseSeconds \\+ 30 s and AWS caps a hook's heartbeat timeout at 7200 s`));
    }
    fails('dev', fleet(29), 'realtime-gateway:fleet.leaseReleaseSeconds', /is 29; expected an integer from 30 to 7170/);
  });

  it('takes lists as YAML lists or comma-separated strings', () => {
    expect(parseStackConfig('dev', { ...DEV, itemKeys: '["vehicleId","batteryId"]' }).itemKeys).to.deep.equal(['vehicleId', 'batteryId']);
    expect(parseStackConfig('dev', { ...DEV, itemKeys: 'vehicleId, batteryId' }).itemKeys).to.deep.equal(['vehicleId', 'batteryId']);
  });

  it('sizes functions from the default or their override', () => {
    const c = parseStackConfig('dev', { ...DEV, lambda: JSON.stringify({ memoryMb: 512, overrides: { fanout: { timeoutSeconds: 120 } } }) });
    expect(lambdaSizing(c, 'connect')).to.deep.equal({ memoryMb: 512, timeoutSeconds: 10 });
    expect(lambdaSizing(c, 'fanout')).to.deep.equal({ memoryMb: 512, timeoutSeconds: 120 });
  });

  it('strips the project prefix and ignores other namespaces', () => {
    expect(projectValues({ 'aws:region': 'eu-west-1', 'realtime-gateway:authMode': 'none' })).to.deep.equal({ authMode: 'none' });
  });

  describe('prod refuses what would leave it open or unprotected', () => {
    const cases: [string, Record<string, string>, string, RegExp][] = [
      ['auth none', { ...PROD, authMode: 'none' }, 'realtime-gateway:authMode', /refused on the prod stack/],
      ['an open HTTP API', { ...PROD, httpAuth: 'none' }, 'realtime-gateway:httpAuth', /refused on the prod stack/],
      ['no data protection', { ...PROD, dataProtection: 'false' }, 'realtime-gateway:dataProtection', /refused on prod/],
    ];
    for (const [what, values, key, msg] of cases) it(`refuses ${what}`, () => fails('prod', values, key, msg));

    it('accepts none on dev (development only)', () => {
      expect(parseStackConfig('dev', { authMode: 'none', httpAuth: 'none' }).httpAuth).to.equal('none');
    });

    it('the HTTP API component refuses NONE on prod even if handed it directly', () => {
      expect(() => httpAuthorizationType('none', 'prod')).to.throw(/refused on prod/);
      expect(httpAuthorizationType('none', 'dev')).to.equal('NONE');
      expect(httpAuthorizationType('iam', 'prod')).to.equal('AWS_IAM');
      expect(httpAuthorizationType('jwt', 'prod')).to.equal('JWT');
    });
  });

  describe('invalid configuration fails with a message naming the key', () => {
    const k = (x: string) => `realtime-gateway:${x}`;
    const cases: [string, string, Record<string, string>, string, RegExp][] = [
      ['missing authMode', 'dev', { httpAuth: 'iam' }, k('authMode'), /is required; expected one of none, jwt/],
      ['missing httpAuth', 'dev', { authMode: 'none' }, k('httpAuth'), /is required; expected one of iam, jwt, none/],
      ['bad authMode', 'dev', { ...DEV, authMode: 'basic' }, k('authMode'), /is "basic"/],
      ['unknown top-level key', 'dev', { ...DEV, logRetention: '7' }, k('logRetention'), /not a known setting/],
      ['unknown nested key', 'dev', { ...DEV, fleet: '{"maxsize":3}' }, k('fleet.maxsize'), /not a known setting/],
      ['structured value not a map', 'dev', { ...DEV, fleet: '3' }, k('fleet'), /not a map/],
      ['jwt without key material', 'dev', { ...DEV, authMode: 'jwt' }, k('jwtHs256Secret'), /needs jwtHs256Secret/],
      ['HS256 secret with a JWKS URL', 'dev', { ...DEV, authMode: 'jwt', jwtHs256Secret: 'x'.repeat(32), jwt: '{"jwksUrl":"https://idp.example.com/jwks.json"}' }, k('jwtHs256Secret'), /together with jwt.jwksUrl; set exactly one/],
      ['short HS256 secret', 'dev', { ...DEV, authMode: 'jwt', jwtHs256Secret: 'short' }, k('jwtHs256Secret'), /shorter than 32 bytes/],
      ['http jwt without issuer', 'dev', { ...DEV, httpAuth: 'jwt' }, k('jwt.issuer'), /required when httpAuth is jwt/],
      ['http jwt without audience', 'dev', { ...DEV, httpAuth: 'jwt', jwt: '{"issuer":"https://idp.example.com/"}' }, k('jwt.audience'), /required/],
      ['issuer not https', 'dev', { ...DEV, jwt: '{"issuer":"http://idp.example.com/"}' }, k('jwt.issuer'), /https URL/],
      ['bad item key', 'dev', { ...DEV, itemKeys: 'vehicle id' }, k('itemKeys'), /contains "vehicle id"/],
      ['retention CloudWatch does not offer', 'dev', { ...DEV, logRetentionDays: '10' }, k('logRetentionDays'), /CloudWatch Logs accepts/],
      ['retention not an integer', 'dev', { ...DEV, logRetentionDays: 'week' }, k('logRetentionDays'), /expected an integer/],
      ['memory above Lambda max', 'dev', { ...DEV, lambda: '{"memoryMb":20000}' }, k('lambda.memoryMb'), /from 128 to 10240/],
      ['override for unknown function', 'dev', { ...DEV, lambda: '{"overrides":{"fanuot":{"memoryMb":256}}}' }, k('lambda.overrides.fanuot'), /names no function/],
      ['API function timeout over 29 s', 'dev', { ...DEV, lambda: '{"timeoutSeconds":60}' }, k('lambda.timeoutSeconds'), /29 s/],
      ['unbounded retries', 'dev', { ...DEV, fanout: '{"maxRetryAttempts":-1}' }, k('fanout.maxRetryAttempts'), /from 0 to 10000/],
      ['record age too short', 'dev', { ...DEV, fanout: '{"maxRecordAgeSeconds":10}' }, k('fanout.maxRecordAgeSeconds'), /from 60/],
      ['batch size too big', 'dev', { ...DEV, fanout: '{"batchSize":20000}' }, k('fanout.batchSize'), /10000/],
      ['too many partitions', 'dev', { ...DEV, fanout: '{"partitions":101}' }, k('fanout.partitions'), /from 1 to 100/],
      ['partition worker outliving its queue visibility', 'dev', { ...DEV, lambda: '{"overrides":{"fanout-partition":{"timeoutSeconds":120}}}' }, k('lambda.overrides.fanout-partition.timeoutSeconds'), /hides a message for 60 s/],
      ['unknown route throttle', 'dev', { ...DEV, websocket: '{"routes":{"broadcast":{"burstLimit":1}}}' }, k('websocket.routes.broadcast'), /not a known setting/],
      ['min above max', 'dev', { ...DEV, fleet: '{"minSize":3,"maxSize":2}' }, k('fleet.minSize'), /above fleet.maxSize/],
      ['desired outside min/max', 'dev', { ...DEV, fleet: '{"minSize":1,"maxSize":2,"desiredCapacity":5}' }, k('fleet.desiredCapacity'), /between/],
      ['x86 instance type', 'dev', { ...DEV, fleet: '{"instanceType":"t3.small"}' }, k('fleet.instanceType'), /arm64/],
      ['NAT setting on the default VPC', 'dev', { ...DEV, fleet: '{"natGateways":"single"}' }, k('fleet.natGateways'), /dedicated/],
      ['unsupported Node major', 'dev', { ...DEV, fleet: '{"nodeMajor":18}' }, k('fleet.nodeMajor'), /20, 22, 24/],
      ['bad alarm e-mail', 'dev', { ...DEV, alarms: '{"email":"ops"}' }, k('alarms.email'), /e-mail/],
      ['delivery latency bound below 100 ms', 'dev', { ...DEV, alarms: '{"deliveryLatencyP99Ms":50}' }, k('alarms.deliveryLatencyP99Ms'), /from 100/],
      ['delivery latency bound not an integer', 'dev', { ...DEV, alarms: '{"deliveryLatencyP99Ms":"fast"}' }, k('alarms.deliveryLatencyP99Ms'), /expected an integer/],
      ['sink credentials without URL', 'dev', { ...DEV, sinkCredentials: 'Bearer x' }, k('sinkCredentials'), /sink.url/],
      ['secret prefix without slash', 'dev', { ...DEV, secretPrefix: 'upstream' }, k('secretPrefix'), /ending in "\/"/],
    ];
    for (const [what, stack, values, key, msg] of cases) it(what, () => fails(stack, values, key, msg));

    it('refuses a stack this program does not define', () => {
      expect(() => parseStackConfig('staging', DEV)).to.throw(ConfigError, /dev and prod/);
    });
  });

  it('every function is covered by the 29 s rule only when API-triggered', () => {
    const c = parseStackConfig('dev', { ...DEV, lambda: JSON.stringify({ overrides: { fanout: { timeoutSeconds: 900 } } }) });
    expect(lambdaSizing(c, 'fanout').timeoutSeconds).to.equal(900);
    expect(FUNCTIONS.find((f) => f.name === 'fanout')!.trigger.kind).to.equal('stream');
  });
});

describe('infra: stack configuration as typed settings (the RealtimeGateway args)', () => {
  it('reads typed values exactly as it reads the strings Pulumi hands over', () => {
    const typed = parseStackConfig('dev', {
      authMode: 'none',
      httpAuth: 'iam',
      itemKeys: ['vehicleId', 'batteryId'],
      dataProtection: true,
      logRetentionDays: 14,
      fleet: { maxSize: 3, ssm: false },
      websocket: { routes: { $connect: { burstLimit: 50 } } },
    });
    const strings = parseStackConfig('dev', {
      authMode: 'none',
      httpAuth: 'iam',
      itemKeys: 'vehicleId,batteryId',
      dataProtection: 'true',
      logRetentionDays: '14',
      fleet: '{"maxSize":"3","ssm":"false"}',
      websocket: '{"routes":{"$connect":{"burstLimit":50}}}',
    });
    expect(typed).to.deep.equal(strings);
    expect([typed.fleet.maxSize, typed.fleet.ssm, typed.dataProtection]).to.deep.equal([3, false, true]);
  });

  it('bounds delivery latency p99 at 5000 ms unless the stack says otherwise', () => {
    expect(parseStackConfig('dev', DEV).alarms.deliveryLatencyP99Ms).to.equal(5000);
    expect(parseStackConfig('dev', { ...DEV, alarms: '{"deliveryLatencyP99Ms":1500}' }).alarms.deliveryLatencyP99Ms).to.equal(1500);
  });

  it('takes an existing VPC and an alarm topic from the stack file too', () => {
    const c = parseStackConfig('dev', {
      ...DEV,
      fleet: JSON.stringify({ vpc: 'existing', vpcId: 'vpc-0abc123', subnetIds: ['subnet-0aaa111'] }),
      alarms: JSON.stringify({ topicArn: 'arn:aws:sns:eu-west-1:123456789012:ops' }),
    });
    expect([c.fleet.vpc, c.fleet.vpcId, c.fleet.subnetIds, c.alarms.topicArn]).to.deep.equal(['existing', 'vpc-0abc123', ['subnet-0aaa111'], 'arn:aws:sns:eu-west-1:123456789012:ops']);
    fails('dev', { ...DEV, fleet: JSON.stringify({ vpc: 'existing', vpcId: 'vpc-0abc123', subnetIds: ['sn-1'] }) }, 'realtime-gateway:fleet.subnetIds', /expected a non-empty list of subnet ids/);
    fails('dev', { ...DEV, fleet: JSON.stringify({ vpc: 'existing', vpcId: 'vpc-0abc123', subnetIds: ['subnet-0aaa111'], natGateways: 'single' }) }, 'realtime-gateway:fleet.natGateways', /existing VPC brings its own routes/);
  });

  it('refuses a boolean that is neither true nor false', () => {
    fails('dev', { ...DEV, fleet: '{"ssm":"yes"}' }, 'realtime-gateway:fleet.ssm', /is "yes"; expected true or false/);
    fails('dev', { ...DEV, dataProtection: 'maybe' }, 'realtime-gateway:dataProtection', /is "maybe"; expected true or false/);
  });
});
