import { LOCAL_ACCOUNT, type LocalResources } from '../../local/iam/principals';

/**
 * The names of one local stack (prefix `p`, API `abc123`, stage `local`) for tests that build the
 * local principals' policies without starting a stack.
 */
export const TEST_LOCAL_RESOURCES: LocalResources = {
  arns: { partition: 'aws', region: 'us-east-1', account: LOCAL_ACCOUNT },
  tables: { connections: 'p-connections', subscriptions: 'p-subscriptions', items: 'p-items', history: 'p-history', upstreams: 'p-upstreams', idempotency: 'p-idempotency', users: 'p-users' },
  streamArns: { items: `arn:aws:dynamodb:ddblocal:${LOCAL_ACCOUNT}:table/p-items/stream/2026-01-01T00:00:00.000` },
  queueUrls: {
    commands: `http://q/${LOCAL_ACCOUNT}/p-commands`,
    commandsDlq: `http://q/${LOCAL_ACCOUNT}/p-commandsDlq`,
    fanoutDlq: `http://q/${LOCAL_ACCOUNT}/p-fanoutDlq`,
    inbound: `http://q/${LOCAL_ACCOUNT}/p-inbound`,
    inboundDlq: `http://q/${LOCAL_ACCOUNT}/p-inboundDlq`,
    fanoutPartitions: `http://q/${LOCAL_ACCOUNT}/p-fanoutPartitions.fifo`,
    fanoutPartitionsDlq: `http://q/${LOCAL_ACCOUNT}/p-fanoutPartitionsDlq.fifo`,
  },
  websocket: { apiId: 'abc123', stage: 'local' },
  secretPrefix: 'realtime-gateway/local/upstream/',
  prefix: 'p',
  metricsNamespace: 'RealtimeGateway/local',
};
