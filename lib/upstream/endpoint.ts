import { InputError } from '../errors';

/**
 * The `interWorkingInterface` header is the platform's WebSocket base URL, or its HTTP(S) base
 * URL. The agent always speaks WebSocket, so an http(s) URL is mapped to the same origin and
 * path over ws(s): `http://h/p?q` → `ws://h/p?q`, `https://h/p?q` → `wss://h/p?q`. That is the
 * RFC 6455 §3 correspondence (ws = http upgrade, wss = https upgrade); the URL path is kept as
 * given because platforms serve their socket on a path of their choosing.
 */

export const UPSTREAM_SCHEMES = ['ws:', 'wss:', 'http:', 'https:'] as const;

/** Parses and validates the header; throws InputError 400 `invalid_url`. */
export function parseUpstreamUrl(raw: string): URL {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new InputError('invalid_url', 'header interWorkingInterface is not a valid URL');
  }
  if (!(UPSTREAM_SCHEMES as readonly string[]).includes(u.protocol)) {
    throw new InputError('invalid_url', `header interWorkingInterface must be a ws, wss, http or https URL, not ${u.protocol.replace(/:$/, '')}`);
  }
  if (u.username || u.password) {
    // The URL is stored in the upstreams table and shown by GET: credentials in it would leak.
    throw new InputError('invalid_url', 'header interWorkingInterface must not contain credentials; send asapa_email and asapa_pass');
  }
  if (!u.hostname) throw new InputError('invalid_url', 'header interWorkingInterface has no host');
  return u;
}

/** The ws(s) URL the agent dials for a validated upstream URL. */
export function toWebSocketUrl(u: URL): URL {
  const out = new URL(u.href);
  out.hash = '';
  if (out.protocol === 'http:') out.protocol = 'ws:';
  else if (out.protocol === 'https:') out.protocol = 'wss:';
  return out;
}

/** URL.hostname keeps the brackets of an IPv6 literal; DNS and net want it bare. */
export function bareHostname(u: URL): string {
  return u.hostname.replace(/^\[(.*)\]$/, '$1');
}
