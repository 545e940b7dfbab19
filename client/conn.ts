import type { WebSocketLike } from './transport';

/** One socket of the client and the timers tied to it (ping, pong, rotation, connect). */
export interface Conn {
  readonly id: number;
  readonly ws: WebSocketLike;
  opened: boolean;
  gone: boolean;
  connectTimer?: unknown;
  pingTimer?: unknown;
  pongTimer?: unknown;
  pingSentAt?: number;
  rotateTimer?: unknown;
}
