/**
 * The socket the client drives, typed as the browser WebSocket API so the same code runs in
 * browsers (global WebSocket) and in Node (`ws`'s WebSocket, which implements that API). No
 * Node-only module is imported anywhere under client/.
 */

export interface WebSocketLike {
  readonly readyState: number;
  readonly protocol: string;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  // `any`: browser and `ws` event classes differ; the client only reads `data`, `code`, `reason`.
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: any) => void) | null;
  onclose: ((ev: any) => void) | null;
  onerror: ((ev: any) => void) | null;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** WebSocket.OPEN in every implementation. */
export const OPEN = 1;

/** Where the token travels on connect. */
export type TokenTransport = 'protocol' | 'query';

/** Default subprotocol naming the auth scheme; the token is offered as the second protocol. */
export const BEARER_PROTOCOL = 'bearer';

export interface ConnectRequestInput {
  userId?: string;
  token?: string;
  tokenIn: TokenTransport;
  protocol: string;
  params?: Readonly<Record<string, string>>;
}

/**
 * URL and subprotocol list for one connection attempt.
 *
 * Browsers cannot set an Authorization header on a WebSocket, so by default the token is
 * offered in `Sec-WebSocket-Protocol` as `[protocol, token]` (DESIGN §3, seed 004): the server
 * authenticates with the second entry and echoes the first — a browser fails the handshake if the
 * server echoes a protocol it did not offer, and API Gateway only echoes what `$connect` returns.
 * `tokenIn: 'query'` puts it in `?token=` instead (API Gateway access logs record query strings,
 * so prefer the subprotocol).
 */
export function buildConnectRequest(baseUrl: string, input: ConnectRequestInput): { url: string; protocols?: string[] } {
  const u = new URL(baseUrl);
  for (const [k, v] of Object.entries(input.params ?? {})) u.searchParams.set(k, v);
  if (input.userId !== undefined) u.searchParams.set('userId', input.userId);
  if (input.token === undefined) return { url: u.toString() };
  if (input.tokenIn === 'query') {
    u.searchParams.set('token', input.token);
    return { url: u.toString() };
  }
  return { url: u.toString(), protocols: [input.protocol, input.token] };
}

/**
 * RFC 6455 §4.1: each subprotocol must be an RFC 7230 token; browsers throw a SyntaxError on
 * anything else. JWTs (base64url + dots) qualify; opaque tokens with `=`, `/` or spaces do not.
 */
export function isProtocolToken(s: string): boolean {
  return /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(s);
}

const decoder = typeof TextDecoder !== 'undefined' ? new TextDecoder() : undefined;

/** Frame payload as text: a string in browsers and `ws`; bytes from other implementations. */
export function frameText(data: unknown): string | undefined {
  if (typeof data === 'string') return data;
  if (decoder && data instanceof ArrayBuffer) return decoder.decode(new Uint8Array(data));
  if (decoder && ArrayBuffer.isView(data)) return decoder.decode(data as Uint8Array);
  return undefined;
}
