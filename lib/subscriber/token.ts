/**
 * Where a subscriber's JWT travels on the WebSocket upgrade, and which subprotocol to echo.
 *
 * Browsers cannot set headers on `new WebSocket(url, protocols)`; the only header they control is
 * `Sec-WebSocket-Protocol`. Convention: `new WebSocket(url, ['bearer', jwt])` sends
 * `Sec-WebSocket-Protocol: bearer, <jwt>`; we take the JWT-shaped entry and echo `bearer`, so the
 * token never comes back in a response header. A token is never echoed, whatever is offered: a
 * browser fails the handshake when it offered protocols and none is echoed (RFC 6455 §4.1), so an
 * offer made only of tokens is refused with a message saying to offer `['bearer', token]` rather
 * than answered with the token (response headers end up in proxy and CDN logs).
 * Otherwise: `Authorization: Bearer <jwt>` (server-side clients), then `?token=<jwt>`.
 */

export interface UpgradeRequest {
  readonly headers?: Readonly<Record<string, string | undefined>> | null;
  readonly query?: Readonly<Record<string, string | undefined>> | null;
}

export interface FoundToken {
  readonly token?: string;
  readonly source?: 'protocol' | 'authorization' | 'query';
  /** The subprotocol to echo in the $connect response, if the client offered any. */
  readonly protocol?: string;
}

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
export const BEARER_PROTOCOL = 'bearer';

/** Whether a subprotocol entry looks like a JWT (and so must never be echoed). */
export function isTokenShaped(protocol: string): boolean {
  return JWT_SHAPE.test(protocol);
}

/** Thrown when every offered subprotocol is a token: there is nothing we may echo. */
export class TokenOnlyProtocolError extends Error {
  constructor() {
    super(
      "Sec-WebSocket-Protocol offers only a token, which is never echoed; offer ['bearer', token] (new WebSocket(url, ['bearer', token]))",
    );
    this.name = 'TokenOnlyProtocolError';
  }
}

/**
 * The subprotocol to echo: `bearer` when offered, else the first offered entry that is not
 * token-shaped; undefined when nothing was offered. Throws TokenOnlyProtocolError when entries
 * were offered and all of them are tokens.
 */
export function echoProtocol(protocols: readonly string[]): string | undefined {
  if (protocols.length === 0) return undefined;
  const others = protocols.filter((p) => !isTokenShaped(p));
  if (others.length === 0) throw new TokenOnlyProtocolError();
  return others.find((p) => p.toLowerCase() === BEARER_PROTOCOL) ?? others[0];
}

export function header(req: UpgradeRequest, name: string): string | undefined {
  const h = req.headers;
  if (!h) return undefined;
  const lower = name.toLowerCase();
  for (const [k, v] of Object.entries(h)) if (k.toLowerCase() === lower && v !== undefined) return v;
  return undefined;
}

export function offeredProtocols(req: UpgradeRequest): string[] {
  const v = header(req, 'sec-websocket-protocol');
  if (!v) return [];
  return v
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** Finds the token; throws TokenOnlyProtocolError when the offered subprotocols are all tokens. */
export function findToken(req: UpgradeRequest): FoundToken {
  const protocols = offeredProtocols(req);
  const jwtEntry = protocols.find(isTokenShaped);
  const protocol = echoProtocol(protocols);
  if (jwtEntry) return { token: jwtEntry, source: 'protocol', protocol };
  const auth = header(req, 'authorization');
  const m = auth ? /^Bearer\s+(\S+)\s*$/i.exec(auth) : null;
  if (m) return { token: m[1], source: 'authorization', protocol };
  const q = req.query?.token;
  if (q) return { token: q, source: 'query', protocol };
  return { protocol };
}
