import { createRemoteJWKSet, errors as joseErrors, importSPKI, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { AppConfig, JwtSettings } from '../config';
import { AuthError } from './errors';
import { hasLoneSurrogate } from '../topics';
import { echoProtocol, findToken, offeredProtocols, TokenOnlyProtocolError, type UpgradeRequest } from './token';

/**
 * Who a subscriber is and what they may do, decided once on $connect (API Gateway runs no code
 * between frames, so the result is stored on the connection row).
 *
 * Modes (config AUTH_MODE): `none` is for development: the user is `?userId=` (or, as in seed
 * 004, a single Sec-WebSocket-Protocol entry), every topic is allowed. loadConfig refuses it on
 * the prod stack. `jwt` verifies a token with jose: HS256 with a shared secret, or RS256 with a
 * PEM key or a JWKS URL. `exp` is required (jose checks it only when present, so a token
 * without one would never expire); `nbf` is checked when present, `iss`/`aud` when configured.
 */

export interface Principal {
  readonly userId: string;
  /** Patterns of topics the connection may subscribe to (`vehicle:*`). */
  readonly allowedTopics: readonly string[];
  /** Patterns of topics the principal may publish to (`user:<id>` for send-to-user). */
  readonly publishTopics: readonly string[];
  /** Subprotocol to echo in the $connect response. */
  readonly protocol?: string;
  /** The verified token's claims (jwt mode): the application receives them with each application action. */
  readonly claims?: Readonly<Record<string, unknown>>;
}

export interface Authenticator {
  /** Resolves the principal of a WebSocket upgrade or throws AuthError (401/403). */
  connect(req: UpgradeRequest, connectionId: string): Promise<Principal>;
  /** Verifies a bare token (used by tests and by the publish route when it carries one). */
  verify(token: string): Promise<Principal>;
}

const USER_ID = /^[^\u0000-\u001f\u007f]{1,128}$/;

/**
 * Why `v` cannot be a user id, or undefined: 1-128 characters, no control characters, no lone
 * UTF-16 surrogate (it has no UTF-8 form: DynamoDB and every JSON encoder would store or send a
 * replacement character, so two different ids could become one).
 */
export function userIdProblem(v: unknown): string | undefined {
  if (typeof v !== 'string' || !USER_ID.test(v)) return 'must be 1-128 characters without control characters';
  if (hasLoneSurrogate(v)) return 'must not contain a lone UTF-16 surrogate';
  return undefined;
}

/** The subprotocol to echo, or 401 with the fix when the client offered only a token. */
function echoOrRefuse(protocols: readonly string[]): string | undefined {
  try {
    return echoProtocol(protocols);
  } catch (err) {
    if (err instanceof TokenOnlyProtocolError) throw new AuthError('unauthorized', err.message);
    throw err;
  }
}

export function createAuthenticator(config: AppConfig): Authenticator {
  if (config.auth.mode === 'none') return noneAuthenticator();
  if (!config.auth.jwt) throw new Error('AUTH_MODE=jwt without jwt settings: loadConfig should have refused this');
  return jwtAuthenticator(config.auth.jwt);
}

function noneAuthenticator(): Authenticator {
  return {
    async connect(req, connectionId) {
      const protocols = offeredProtocols(req);
      const protocol = echoOrRefuse(protocols);
      // Seed 004: the client's unique id travels as its only subprotocol and is echoed back.
      const fromProtocol = protocols.length === 1 && protocols[0].toLowerCase() !== 'bearer' ? protocols[0] : undefined;
      const userId = req.query?.userId ?? fromProtocol ?? `anon:${connectionId}`;
      const p = userIdProblem(userId);
      if (p) throw new AuthError('unauthorized', `userId ${p}`);
      return { userId, allowedTopics: ['*'], publishTopics: ['*'], protocol };
    },
    async verify() {
      throw new AuthError('unauthorized', 'AUTH_MODE=none does not accept tokens');
    },
  };
}

function jwtAuthenticator(s: JwtSettings): Authenticator {
  let keyPromise: Promise<{ key: Parameters<typeof jwtVerify>[1]; algorithms: string[] }> | undefined;
  const key = () =>
    (keyPromise ??= (async () => {
      if (s.hs256Secret) return { key: new TextEncoder().encode(s.hs256Secret), algorithms: ['HS256'] };
      if (s.rs256PublicKey) return { key: await importSPKI(s.rs256PublicKey, 'RS256'), algorithms: ['RS256'] };
      // jose caches the key set and refetches on an unknown `kid` (rate-limited), so rotation works.
      const jwks: JWTVerifyGetKey = createRemoteJWKSet(new URL(s.jwksUrl!));
      return { key: jwks as unknown as Parameters<typeof jwtVerify>[1], algorithms: ['RS256'] };
    })());

  const verify = async (token: string, protocol?: string): Promise<Principal> => {
    const k = await key();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, k.key as Parameters<typeof jwtVerify>[1], {
        algorithms: k.algorithms,
        // A token without `exp` is valid forever: one leak would be a permanent credential.
        requiredClaims: ['exp'],
        ...(s.issuer ? { issuer: s.issuer } : {}),
        ...(s.audience ? { audience: s.audience } : {}),
      }));
    } catch (err) {
      throw new AuthError('unauthorized', describeJoseError(err));
    }
    const p = userIdProblem(payload.sub);
    if (p) throw new AuthError('unauthorized', typeof payload.sub === 'string' ? `the token's "sub" claim ${p}` : 'the token has no usable "sub" claim');
    return {
      userId: payload.sub as string,
      allowedTopics: patternsClaim(payload[s.topicsClaim]),
      publishTopics: patternsClaim(payload[s.publishClaim]),
      protocol,
      claims: { ...payload },
    };
  };

  return {
    async connect(req) {
      echoOrRefuse(offeredProtocols(req));
      const found = findToken(req);
      if (!found.token) {
        throw new AuthError('unauthorized', 'a token is required: Sec-WebSocket-Protocol "bearer, <jwt>", Authorization: Bearer <jwt>, or ?token=');
      }
      return verify(found.token, found.protocol);
    },
    verify: (token) => verify(token),
  };
}

/**
 * A patterns claim: an array of strings (each one pattern), or a string, which is ONE pattern:
 * a topic may contain spaces and commas, so splitting a string would turn a grant of
 * `"vehicle:1,2"` into two grants. The one exception is the form API Gateway's HTTP API JWT
 * authoriser gives array claims in `requestContext.authorizer.jwt.claims`: `"[a b]"` (or JSON
 * `'["a","b"]'`); inside brackets, whitespace separates patterns. Several patterns in a token are
 * therefore always given as an array claim.
 */
export function patternsClaim(v: unknown): string[] {
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string' && x.length > 0);
  if (typeof v !== 'string' || v.length === 0) return [];
  const s = v.trim();
  if (s.startsWith('[') && s.endsWith(']')) {
    try {
      const parsed = JSON.parse(s);
      if (Array.isArray(parsed)) return patternsClaim(parsed);
    } catch {
      /* the authoriser's "[a b]" form, not JSON */
    }
    return s
      .slice(1, -1)
      .split(/\s+/)
      .filter((x) => x.length > 0);
  }
  return [v];
}

function describeJoseError(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return 'the token has expired';
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'the token signature is invalid';
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    return err.reason === 'missing' ? `the token has no "${err.claim}" claim` : `the token claim "${err.claim}" is invalid`;
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return 'the token algorithm is not accepted';
  if (err instanceof joseErrors.JWKSNoMatchingKey) return 'no key matches the token';
  return 'the token is malformed';
}
