import { expect } from 'chai';
import { accessKeyOf, checksFor, parseTarget, UnreadableRequestError } from '../../../local/iam/requests';

const A = { partition: 'aws', region: 'us-east-1', account: '000000000000' };
const T = (t: string) => `arn:aws:dynamodb:us-east-1:000000000000:table/${t}`;

describe('local IAM: what AWS authorises for a request', () => {
  it('a TransactWriteItems is authorised per item, by the item kind, on each item table', () => {
    const checks = checksFor(A, 'dynamodb', 'TransactWriteItems', {
      TransactItems: [{ Update: { TableName: 'items' } }, { Put: { TableName: 'history' } }, { ConditionCheck: { TableName: 'upstreams' } }, { Delete: { TableName: 'x' } }],
    });
    expect(checks).to.deep.equal([
      { action: 'dynamodb:UpdateItem', resource: T('items') },
      { action: 'dynamodb:PutItem', resource: T('history') },
      { action: 'dynamodb:ConditionCheckItem', resource: T('upstreams') },
      { action: 'dynamodb:DeleteItem', resource: T('x') },
    ]);
  });

  it('a BatchWriteItem needs BatchWriteItem on every table it names, whatever its requests are', () => {
    const checks = checksFor(A, 'dynamodb', 'BatchWriteItem', { RequestItems: { a: [{ DeleteRequest: {} }], b: [{ DeleteRequest: {} }] } });
    expect(checks).to.deep.equal([
      { action: 'dynamodb:BatchWriteItem', resource: T('a') },
      { action: 'dynamodb:BatchWriteItem', resource: T('b') },
    ]);
  });

  it('a Query on an index is authorised on the index ARN, without one on the table', () => {
    expect(checksFor(A, 'dynamodb', 'Query', { TableName: 'c', IndexName: 'byUser' })).to.deep.equal([{ action: 'dynamodb:Query', resource: `${T('c')}/index/byUser` }]);
    expect(checksFor(A, 'dynamodb', 'Query', { TableName: 'c' })).to.deep.equal([{ action: 'dynamodb:Query', resource: T('c') }]);
  });

  it('stream reads are authorised on the stream ARN, GetRecords through its shard iterator', () => {
    const stream = 'arn:aws:dynamodb:ddblocal:000000000000:table/i/stream/2026-01-01T00:00:00.000';
    expect(checksFor(A, 'dynamodbstreams', 'GetRecords', { ShardIterator: `${stream}|001|abc` })).to.deep.equal([{ action: 'dynamodb:GetRecords', resource: stream }]);
    expect(checksFor(A, 'dynamodbstreams', 'ListStreams', {})).to.deep.equal([{ action: 'dynamodb:ListStreams', resource: '*' }]);
  });

  it('SQS batch calls are authorised as their single action on the queue ARN', () => {
    expect(checksFor(A, 'sqs', 'DeleteMessageBatch', { QueueUrl: 'http://127.0.0.1:9/000000000000/p-commands' })).to.deep.equal([
      { action: 'sqs:DeleteMessage', resource: 'arn:aws:sqs:us-east-1:000000000000:p-commands' },
    ]);
  });

  it('Secrets Manager calls are authorised on the secret ARN with its random suffix, named or addressed by ARN', () => {
    const [byName] = checksFor(A, 'secretsmanager', 'GetSecretValue', { SecretId: 'rg/local/upstream/s1' });
    expect(byName!.action).to.equal('secretsmanager:GetSecretValue');
    expect(byName!.resource).to.match(/^arn:aws:secretsmanager:us-east-1:000000000000:secret:rg\/local\/upstream\/s1-[A-Za-z0-9]{6}$/);
    expect(checksFor(A, 'secretsmanager', 'PutSecretValue', { SecretId: byName!.resource })[0]!.resource).to.equal(byName!.resource);
    expect(checksFor(A, 'secretsmanager', 'CreateSecret', { Name: 'rg/local/upstream/s1' })[0]!.resource).to.equal(byName!.resource);
  });

  it('an unreadable request is named, not guessed', () => {
    expect(() => parseTarget('Nope.GetItem')).to.throw(UnreadableRequestError, /X-Amz-Target/);
    expect(() => checksFor(A, 'dynamodb', 'GetItem', {})).to.throw(UnreadableRequestError, /TableName/);
  });

  it('reads the access key id from a SigV4 Authorization header', () => {
    expect(accessKeyOf('AWS4-HMAC-SHA256 Credential=AKIDLOCALPING/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=x')).to.equal('AKIDLOCALPING');
    expect(accessKeyOf(undefined)).to.equal(undefined);
  });
});
