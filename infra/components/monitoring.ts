import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { DELIVERY_METRICS, METRICS_SERVICE } from '../../lib/metrics';
import type { QueueName } from '../../lib/schema';
import { childName } from '../naming';

export interface MonitoringArgs {
  readonly prefix: string;
  readonly region: pulumi.Input<string>;
  readonly email?: string;
  /** An existing SNS topic to notify; without one the component creates `<prefix>-alarms`. */
  readonly topicArn?: pulumi.Input<string>;
  readonly iteratorAgeMs: number;
  /** Delivery latency p99 (ms) that pages when it holds for `LATENCY_ALARM_MINUTES`. */
  readonly deliveryLatencyP99Ms: number;
  /** Function name per lib/functions.ts name. */
  readonly functionNames: Readonly<Record<string, pulumi.Input<string>>>;
  readonly fanoutFunction: string;
  readonly deadLetterQueues: Readonly<Partial<Record<QueueName, pulumi.Input<string>>>>;
  readonly websocketApiId: pulumi.Input<string>;
  readonly websocketStage: string;
  /** The WebSocket stage's access log group (JSON lines, components/access-logs.ts). */
  readonly websocketAccessLogGroup: pulumi.Input<string>;
  readonly httpApiId: pulumi.Input<string>;
  readonly httpStage: string;
  /** Custom namespace the agent publishes its counters to, and the handlers their EMF delivery metrics. */
  readonly metricsNamespace: string;
  readonly tags?: Record<string, string>;
}

/**
 * The agent's counter of upstream sockets that gave up (status `failed`, ec2-agent/metrics.ts
 * `socketsFailed`), published to the stack's namespace.
 */
export const UPSTREAMS_FAILED_METRIC = 'socketsFailed';

/**
 * WebSocket requests API Gateway answered with a 5xx, counted from the stage's access log.
 * Not the IntegrationError metric: AWS counts "requests that return a 4XX/5XX response from the
 * integration" there, so every refused $connect (401/403) or bad client frame would page.
 */
export const WEBSOCKET_SERVER_ERRORS_METRIC = 'WebSocketServerErrors';

/**
 * Metric filter over the access log's `status` ($context.status, a JSON string): 5xx only.
 * CloudWatch Logs JSON filter patterns match string values with a trailing `*` wildcard.
 */
export const WEBSOCKET_SERVER_ERRORS_FILTER = '{ $.status = 5* }';

/** What each dead-letter queue's alarm tells the operator. */
const DLQ_ALARM_DESCRIPTIONS: Readonly<Partial<Record<QueueName, string>>> = {
  fanoutDlq:
    'fan-out gave up on items-stream records (retries or record age exhausted): subscribers of the topics in the shard range named by each message missed events; replay them (docs/deploy.md, "Alarms")',
  commandsDlq: 'upstream commands failed 5 receives: the agents did not act on them (docs/deploy.md, "Alarms")',
  fanoutPartitionsDlq:
    'a partition worker gave up on large-topic records (5 receives): that partition\'s subscribers missed those events and resume from history when they see the gap (docs/deploy.md, "Alarms")',
  inboundDlq: 'application actions failed 5 receives: the application consumer did not handle them; clients got "accepted" but no answer (docs/deploy.md, "Alarms")',
};

/** Consecutive one-minute periods the latency p99 must stay above its bound: one slow minute is a burst, five are a trend. */
export const LATENCY_ALARM_MINUTES = 5;

interface AlarmSpec {
  readonly id: string;
  readonly description: string;
  readonly namespace: string;
  readonly metricName: string;
  readonly dimensions: Record<string, pulumi.Input<string>>;
  /** A percentile (`p99`) goes out as the alarm's extendedStatistic. */
  readonly statistic: 'Sum' | 'Maximum' | 'p99';
  readonly threshold: number;
  /** Default GreaterThanOrEqualToThreshold. */
  readonly comparison?: 'GreaterThanThreshold' | 'GreaterThanOrEqualToThreshold';
  readonly periodSeconds?: number;
  readonly evaluationPeriods?: number;
}

/**
 * An SNS topic (e-mail subscription from config), the alarms an operator of this system needs,
 * and a dashboard with the same metrics. Missing data is "not breaching": most of these metrics
 * only exist while something happens.
 */
export class Monitoring extends pulumi.ComponentResource {
  /** The topic this component created; undefined when the caller brought its own (topicArn). */
  readonly topic?: aws.sns.Topic;
  readonly topicArn: pulumi.Output<string>;
  readonly alarms: Readonly<Record<string, aws.cloudwatch.MetricAlarm>>;
  readonly dashboard: aws.cloudwatch.Dashboard;
  readonly dashboardName: pulumi.Output<string>;

  constructor(name: string, args: MonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
    super('realtime-gateway:infra:Monitoring', name, {}, opts);
    // No SSE on the topic: CloudWatch alarms cannot publish to a topic encrypted with the AWS
    // managed aws/sns key, and a customer key costs $1/month per stack for alarm text.
    if (args.topicArn === undefined) {
      this.topic = new aws.sns.Topic(childName(name, 'alarms'), { name: `${args.prefix}-alarms`, tags: args.tags }, { parent: this });
    }
    this.topicArn = this.topic ? this.topic.arn : pulumi.output(args.topicArn!);
    if (args.email) {
      new aws.sns.TopicSubscription(childName(name, 'email'), { topic: this.topicArn, protocol: 'email', endpoint: args.email }, { parent: this });
    }
    const fanout = args.functionNames[args.fanoutFunction];
    if (!fanout) throw new Error(`monitoring: no function named ${args.fanoutFunction}`);

    const specs: AlarmSpec[] = [
      { id: 'fanout-errors', description: 'fanout Lambda invocations failed (batches are being retried, bisected or sent to the DLQ)', namespace: 'AWS/Lambda', metricName: 'Errors', dimensions: { FunctionName: fanout }, statistic: 'Sum', threshold: 1 },
      { id: 'fanout-iterator-age', description: `items stream is more than ${args.iteratorAgeMs} ms behind: subscribers get stale events`, namespace: 'AWS/Lambda', metricName: 'IteratorAge', dimensions: { FunctionName: fanout }, statistic: 'Maximum', threshold: args.iteratorAgeMs, periodSeconds: 60, evaluationPeriods: 3 },
      // Any message at all: ApproximateNumberOfMessagesVisible > 0. A queue holding messages
      // counts as active, so SQS keeps publishing the metric while the alarm matters; an empty,
      // idle queue publishes nothing, hence notBreaching (below) rather than INSUFFICIENT_DATA.
      ...Object.entries(args.deadLetterQueues).map(([q, queueName]) => ({
        id: `${q}-depth`,
        description: DLQ_ALARM_DESCRIPTIONS[q as QueueName] ?? `messages in the ${q} dead-letter queue need attention`,
        namespace: 'AWS/SQS',
        metricName: 'ApproximateNumberOfMessagesVisible',
        dimensions: { QueueName: queueName! },
        statistic: 'Maximum' as const,
        threshold: 0,
        comparison: 'GreaterThanThreshold' as const,
      })),
      ...Object.entries(args.functionNames).map(([fn, functionName]) => ({
        id: `${fn}-throttles`,
        description: `${fn} Lambda is being throttled (concurrency limit reached)`,
        namespace: 'AWS/Lambda',
        metricName: 'Throttles',
        dimensions: { FunctionName: functionName },
        statistic: 'Sum' as const,
        threshold: 1,
      })),
      { id: 'http-5xx', description: 'HTTP API answered 5xx (integration or Lambda failures)', namespace: 'AWS/ApiGateway', metricName: '5xx', dimensions: { ApiId: args.httpApiId, Stage: args.httpStage }, statistic: 'Sum', threshold: 5 },
      // WebSocket APIs publish no 5xx metric, and IntegrationError includes 4xx: count 5xx
      // answers from the access log instead (the metric filter below).
      { id: 'websocket-integration-errors', description: 'WebSocket routes answered 5xx (route Lambda failed, timed out or was throttled); client 4xx are not counted', namespace: args.metricsNamespace, metricName: WEBSOCKET_SERVER_ERRORS_METRIC, dimensions: {}, statistic: 'Sum', threshold: 5 },
      { id: 'websocket-execution-errors', description: 'WebSocket API execution errors', namespace: 'AWS/ApiGateway', metricName: 'ExecutionError', dimensions: { ApiId: args.websocketApiId, Stage: args.websocketStage }, statistic: 'Sum', threshold: 5 },
      {
        id: 'delivery-latency-p99',
        description: `p99 publish → delivery latency above ${args.deliveryLatencyP99Ms} ms for ${LATENCY_ALARM_MINUTES} minutes: the items stream is behind or deliveries are being retried (see the fan-out graphs)`,
        namespace: args.metricsNamespace,
        metricName: DELIVERY_METRICS.latency,
        dimensions: { service: METRICS_SERVICE },
        statistic: 'p99',
        threshold: args.deliveryLatencyP99Ms,
        comparison: 'GreaterThanThreshold',
        periodSeconds: 60,
        evaluationPeriods: LATENCY_ALARM_MINUTES,
      },
      { id: 'upstreams-failed', description: 'upstream sockets gave up after repeated health-check failures (status failed)', namespace: args.metricsNamespace, metricName: UPSTREAMS_FAILED_METRIC, dimensions: {}, statistic: 'Sum', threshold: 1 },
    ];

    new aws.cloudwatch.LogMetricFilter(
      childName(name, 'websocket-5xx'),
      {
        logGroupName: args.websocketAccessLogGroup,
        pattern: WEBSOCKET_SERVER_ERRORS_FILTER,
        metricTransformation: { namespace: args.metricsNamespace, name: WEBSOCKET_SERVER_ERRORS_METRIC, value: '1', unit: 'Count' },
      },
      { parent: this },
    );

    const alarms: Record<string, aws.cloudwatch.MetricAlarm> = {};
    for (const a of specs) {
      alarms[a.id] = new aws.cloudwatch.MetricAlarm(
        childName(name, a.id),
        {
          name: `${args.prefix}-${a.id}`,
          alarmDescription: a.description,
          namespace: a.namespace,
          metricName: a.metricName,
          dimensions: a.dimensions,
          ...(a.statistic === 'p99' ? { extendedStatistic: a.statistic } : { statistic: a.statistic }),
          period: a.periodSeconds ?? 300,
          evaluationPeriods: a.evaluationPeriods ?? 1,
          threshold: a.threshold,
          comparisonOperator: a.comparison ?? 'GreaterThanOrEqualToThreshold',
          treatMissingData: 'notBreaching',
          alarmActions: [this.topicArn],
          okActions: [this.topicArn],
          tags: args.tags,
        },
        { parent: this },
      );
    }
    this.alarms = alarms;

    const dashboardName = `${args.prefix}-realtime-gateway`;
    this.dashboard = new aws.cloudwatch.Dashboard(
      childName(name, 'dashboard'),
      {
        dashboardName,
        dashboardBody: pulumi
          .all([args.region, pulumi.output(args.functionNames), args.websocketApiId, args.httpApiId, pulumi.output(args.deadLetterQueues)])
          .apply(([region, fns, wsApi, httpApi, dlqs]) => JSON.stringify(dashboardBody({ region, fns: fns as Record<string, string>, fanout: (fns as Record<string, string>)[args.fanoutFunction]!, wsApi, wsStage: args.websocketStage, httpApi, httpStage: args.httpStage, dlqs: dlqs as Record<string, string>, namespace: args.metricsNamespace, latencyP99Ms: args.deliveryLatencyP99Ms }))),
      },
      { parent: this },
    );
    this.dashboardName = this.dashboard.dashboardName;
    this.registerOutputs({ dashboardName: this.dashboardName, topicArn: this.topicArn });
  }
}

/** The dashboard JSON (pure). */
export function dashboardBody(d: {
  region: string;
  fns: Record<string, string>;
  fanout: string;
  wsApi: string;
  wsStage: string;
  httpApi: string;
  httpStage: string;
  dlqs: Record<string, string>;
  namespace: string;
  /** The delivery latency alarm's bound, drawn on the latency graph. */
  latencyP99Ms: number;
}) {
  const widget = (title: string, metrics: unknown[][], x: number, y: number, stat = 'Sum', extra: Record<string, unknown> = {}) => ({
    type: 'metric',
    x,
    y,
    width: 12,
    height: 6,
    properties: { title, region: d.region, stat, period: 60, view: 'timeSeries', metrics, ...extra },
  });
  // The EMF metrics carry powertools' `service` dimension; a graph must name it to find them.
  const delivery = (metric: string): unknown[] => [d.namespace, metric, 'service', METRICS_SERVICE];
  const fnNames = Object.values(d.fns);
  return {
    widgets: [
      widget('WebSocket: connects, messages, errors', [
        ['AWS/ApiGateway', 'ConnectCount', 'ApiId', d.wsApi, 'Stage', d.wsStage],
        ['AWS/ApiGateway', 'MessageCount', 'ApiId', d.wsApi, 'Stage', d.wsStage],
        ['AWS/ApiGateway', 'IntegrationError', 'ApiId', d.wsApi, 'Stage', d.wsStage],
        ['AWS/ApiGateway', 'ExecutionError', 'ApiId', d.wsApi, 'Stage', d.wsStage],
        [d.namespace, WEBSOCKET_SERVER_ERRORS_METRIC],
      ], 0, 0),
      widget('HTTP API: requests, 4xx, 5xx', [
        ['AWS/ApiGateway', 'Count', 'ApiId', d.httpApi, 'Stage', d.httpStage],
        ['AWS/ApiGateway', '4xx', 'ApiId', d.httpApi, 'Stage', d.httpStage],
        ['AWS/ApiGateway', '5xx', 'ApiId', d.httpApi, 'Stage', d.httpStage],
      ], 12, 0),
      widget('Fan-out: iterator age (ms)', [['AWS/Lambda', 'IteratorAge', 'FunctionName', d.fanout]], 0, 6, 'Maximum'),
      widget('Lambda errors', fnNames.map((f) => ['AWS/Lambda', 'Errors', 'FunctionName', f]), 12, 6),
      widget('Lambda throttles', fnNames.map((f) => ['AWS/Lambda', 'Throttles', 'FunctionName', f]), 0, 12),
      widget('Lambda duration p99 (ms)', fnNames.map((f) => ['AWS/Lambda', 'Duration', 'FunctionName', f]), 12, 12, 'p99'),
      widget('Dead-letter queues: visible messages', Object.values(d.dlqs).map((q) => ['AWS/SQS', 'ApproximateNumberOfMessagesVisible', 'QueueName', q]), 0, 18, 'Maximum'),
      widget('Upstreams failed', [[d.namespace, UPSTREAMS_FAILED_METRIC]], 12, 18),
      widget('Fan-out: records, deliveries, published', [
        delivery(DELIVERY_METRICS.records),
        delivery(DELIVERY_METRICS.deliveries),
        delivery(DELIVERY_METRICS.published),
      ], 0, 24),
      widget('Fan-out: gone (pruned), failed, throttled, forced resyncs', [
        delivery(DELIVERY_METRICS.gone),
        delivery(DELIVERY_METRICS.failed),
        delivery(DELIVERY_METRICS.throttled),
        delivery(DELIVERY_METRICS.resyncs),
      ], 12, 24),
      // The alarm's bound as a line, so the graph shows how close p99 runs to paging.
      widget('Delivery latency, publish → delivery (ms)', [
        [...delivery(DELIVERY_METRICS.latency), { stat: 'p50', label: 'p50' }],
        [...delivery(DELIVERY_METRICS.latency), { stat: 'p99', label: 'p99' }],
        [...delivery(DELIVERY_METRICS.latency), { stat: 'Maximum', label: 'max' }],
      ], 0, 30, 'p99', { annotations: { horizontal: [{ label: 'p99 alarm', value: d.latencyP99Ms }] } }),
    ],
  };
}
