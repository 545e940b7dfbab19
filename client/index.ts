/**
 * realtime-gateway client SDK: browsers and Node (pass `ws`'s WebSocket on Node 20).
 * See docs/client.md.
 */
export { connect, RealtimeClient, API_GATEWAY_IDLE_TIMEOUT_MS, API_GATEWAY_MAX_CONNECTION_MS } from './client';
export { RealtimeError, RETRYABLE_CODES } from './errors';
export { backoffCeiling, backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from './backoff';
export { TopicTracker, type Delivery } from './topic-tracker';
export { parseServerMessage } from '../lib/protocol/parse';
export type {
  ClientFrame as ClientMessage,
  ServerMessage,
  SnapshotMessage,
  EventMessage,
  SubscribedMessage,
  UnsubscribedMessage,
  PongMessage,
  ErrorMessage,
  UserMessage,
} from '../lib/protocol/frames';
export type { Timers } from './timers';
export { buildConnectRequest, BEARER_PROTOCOL, type WebSocketConstructor, type WebSocketLike, type TokenTransport } from './transport';
export type * from './types';
