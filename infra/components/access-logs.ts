/**
 * Access log formats (JSON, one object per request). API Gateway substitutes `$context`
 * variables; the keys are what log queries filter on.
 */
export const WEBSOCKET_ACCESS_LOG_FORMAT = JSON.stringify({
  requestId: '$context.requestId',
  routeKey: '$context.routeKey',
  eventType: '$context.eventType',
  status: '$context.status',
  connectionId: '$context.connectionId',
  error: '$context.error.message',
  integrationError: '$context.integrationErrorMessage',
  integrationLatencyMs: '$context.integrationLatency',
  requestTimeEpochMs: '$context.requestTimeEpoch',
  sourceIp: '$context.identity.sourceIp',
});

export const HTTP_ACCESS_LOG_FORMAT = JSON.stringify({
  requestId: '$context.requestId',
  routeKey: '$context.routeKey',
  status: '$context.status',
  error: '$context.error.message',
  integrationError: '$context.integrationErrorMessage',
  authorizerError: '$context.authorizer.error',
  responseLatencyMs: '$context.responseLatency',
  requestTimeEpochMs: '$context.requestTimeEpoch',
  sourceIp: '$context.identity.sourceIp',
  caller: '$context.identity.caller',
});
