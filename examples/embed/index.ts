/**
 * A Pulumi program of a user's own: their orders table and their operations topic, then the
 * realtime-gateway platform as one component that notifies that topic, and a parameter of theirs
 * holding the gateway's WebSocket URL for their services to read.
 *
 * In a project of your own: `npm install <path or git URL of realtime-gateway>` and import
 * `realtime-gateway/infra` exactly as below.
 */
import * as aws from '@pulumi/aws';
import { RealtimeGateway } from 'realtime-gateway/infra';

const orders = new aws.dynamodb.Table('orders', {
  name: 'shop-orders',
  billingMode: 'PAY_PER_REQUEST',
  hashKey: 'orderId',
  attributes: [{ name: 'orderId', type: 'S' }],
});

const ops = new aws.sns.Topic('ops', { name: 'shop-ops' });

const gateway = new RealtimeGateway('push', {
  stack: 'dev',
  authMode: 'none',
  httpAuth: 'iam',
  itemKeys: ['orderId'],
  // The gateway's alarms go to the topic the team already watches, not to a new one.
  alarms: { topicArn: ops.arn },
});

new aws.ssm.Parameter('push-url', { name: '/shop/push/websocket-url', type: 'String', value: gateway.websocketUrl });

export const ordersTable = orders.name;
export const websocketUrl = gateway.websocketUrl;
export const httpApiUrl = gateway.httpApiUrl;
export const publishPolicyArn = gateway.httpPublishInvokePolicyArn;
