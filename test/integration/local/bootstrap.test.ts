import { expect } from 'chai';
import { DescribeTableCommand, DescribeTimeToLiveCommand, DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { DescribeStreamCommand, DynamoDBStreamsClient, GetRecordsCommand, GetShardIteratorCommand, type _Record } from '@aws-sdk/client-dynamodb-streams';
import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { createQueues, createTables } from '../../../local/bootstrap';
import { startSqs, type RunningSqs } from '../../../local/sqs';
import { QUEUE_NAMES, QUEUES, TABLE_NAMES, TABLES, keyAttributes } from '../../../lib/schema';
import { testDynamoEndpoint, uniquePrefix, LOCAL_CREDENTIALS } from '../../support/env';
import { waitFor } from '../../support/wait';

describe('local bootstrap from lib/schema.ts', () => {
  let ddb: DynamoDBClient;
  let streams: DynamoDBStreamsClient;
  let sqsServer: RunningSqs;
  let sqs: SQSClient;
  before(async () => {
    ddb = new DynamoDBClient({ endpoint: testDynamoEndpoint(), region: 'us-east-1', credentials: LOCAL_CREDENTIALS });
    streams = new DynamoDBStreamsClient({ endpoint: testDynamoEndpoint(), region: 'us-east-1', credentials: LOCAL_CREDENTIALS });
    sqsServer = await startSqs();
    sqs = new SQSClient({ endpoint: sqsServer.endpoint, region: 'us-east-1', credentials: LOCAL_CREDENTIALS });
  });
  after(async () => {
    sqs.destroy();
    ddb.destroy();
    streams.destroy();
    await sqsServer.stop();
  });

  it('creates every table with the schema keys, indexes, TTL and stream', async () => {
    const prefix = uniquePrefix();
    const { names, streamArns } = await createTables(ddb, prefix);
    expect(Object.keys(names).sort()).to.deep.equal([...TABLE_NAMES].sort());
    for (const t of TABLE_NAMES) {
      const spec = TABLES[t];
      const d = (await ddb.send(new DescribeTableCommand({ TableName: names[t] }))).Table!;
      expect(d.KeySchema).to.deep.equal([
        { AttributeName: spec.hashKey.name, KeyType: 'HASH' },
        ...(spec.rangeKey ? [{ AttributeName: spec.rangeKey.name, KeyType: 'RANGE' }] : []),
      ]);
      expect((d.AttributeDefinitions ?? []).map((a) => a.AttributeName).sort()).to.deep.equal(
        keyAttributes(spec).map((a) => a.name).sort(),
      );
      expect((d.GlobalSecondaryIndexes ?? []).map((i) => i.IndexName).sort()).to.deep.equal(spec.indexes.map((i) => i.name).sort());
      const ttl = await ddb.send(new DescribeTimeToLiveCommand({ TableName: names[t] }));
      if (spec.ttlAttribute) {
        expect(ttl.TimeToLiveDescription?.TimeToLiveStatus).to.equal('ENABLED');
        expect(ttl.TimeToLiveDescription?.AttributeName).to.equal(spec.ttlAttribute);
      } else {
        expect(ttl.TimeToLiveDescription?.TimeToLiveStatus).to.not.equal('ENABLED');
      }
      expect(Boolean(d.StreamSpecification?.StreamEnabled)).to.equal(Boolean(spec.stream));
    }
    expect(streamArns.items).to.be.a('string');
  });

  it('creating the tables twice (data kept on disk) is not an error', async () => {
    const prefix = uniquePrefix();
    await createTables(ddb, prefix);
    const again = await createTables(ddb, prefix);
    expect(again.names.items).to.equal(`${prefix}-items`);
  });

  it('makes the items stream readable with the new image of a write', async () => {
    const prefix = uniquePrefix();
    const { names, streamArns } = await createTables(ddb, prefix);
    await ddb.send(new PutItemCommand({ TableName: names.items, Item: { topic: { S: 'vehicle:3' }, seq: { N: '1' } } }));
    const shards = (await streams.send(new DescribeStreamCommand({ StreamArn: streamArns.items }))).StreamDescription!.Shards!;
    expect(shards.length).to.be.greaterThan(0);
    const it0 = await streams.send(
      new GetShardIteratorCommand({ StreamArn: streamArns.items, ShardId: shards[0].ShardId, ShardIteratorType: 'TRIM_HORIZON' }),
    );
    // A stream promises the record, not that the first GetRecords already returns it: read on
    // along the shard (as the stream poller does) until it comes.
    let iterator = it0.ShardIterator;
    let first: _Record | undefined;
    await waitFor(async () => {
      const r = await streams.send(new GetRecordsCommand({ ShardIterator: iterator }));
      iterator = r.NextShardIterator;
      first = r.Records?.[0];
      return first !== undefined || iterator === undefined;
    }, 10_000, 'the write on the items stream');
    expect(first?.eventName).to.equal('INSERT');
    expect(first?.dynamodb?.NewImage?.topic).to.deep.equal({ S: 'vehicle:3' });
    expect(first?.dynamodb?.StreamViewType).to.equal('NEW_IMAGE');
  });

  it('creates every queue, with the dead-letter redrive the schema names', async () => {
    const urls = await createQueues(sqs, uniquePrefix());
    expect(Object.keys(urls).sort()).to.deep.equal([...QUEUE_NAMES].sort());
    const a = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: urls.commands, AttributeNames: ['All'] }));
    const redrive = JSON.parse(a.Attributes!.RedrivePolicy!);
    expect(redrive.maxReceiveCount).to.equal(QUEUES.commands.deadLetter!.maxReceiveCount);
    expect(redrive.deadLetterTargetArn).to.match(/commandsDlq$/);
    expect(a.Attributes!.VisibilityTimeout).to.equal(String(QUEUES.commands.visibilityTimeoutSeconds));
  });
});
